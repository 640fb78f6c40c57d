// What the Node flags of the unit cost the journal pipeline in a burst: the daemon's reader and the
// shipped kernel rules (LogMonitor) over N cached kernel-style entries, in the bundled Node runtime,
// once per flag set. The idle side of the same flags is scripts/bench/idle.sh.
//
//   node scripts/bench/journal-flags.mjs [entries] [--runs N]      (default 1000000, 3 runs)
//
// Prints per flag set the median run (by CPU): entries/s of the drain, its CPU time and the peak
// anonymous RSS (the journal files are mmapped, so total RSS would count their pages).
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unitNodeFlags } from './unit-flags.mjs';

const args = process.argv.slice(2);
const flag = args.indexOf('--runs');
const runsText = flag >= 0 ? args.splice(flag, 2)[1] : '3';
const entriesText = args[0] ?? '1000000';
if (!/^\d+$/.test(entriesText) || Number(entriesText) < 1 || !/^\d+$/.test(runsText ?? '') || Number(runsText) < 1) {
  console.error(`usage: node scripts/bench/journal-flags.mjs [entries] [--runs N] (whole numbers above 0; got "${entriesText}", "${runsText ?? ''}")`);
  process.exit(2);
}
const count = Number(entriesText);
const runs = Number(runsText);
const root = fileURLToPath(new URL('../..', import.meta.url));

const unitFlags = unitNodeFlags(root);
const flagSets = [[], unitFlags, ['--single-threaded'], ['--optimize-for-size'], ['--lite-mode']];

const PIPELINE = `
import { readFileSync } from 'node:fs';
import { loadAgentConfig } from './src/sections';
import { LogMonitor } from './src/sources/rules/log-monitor';
import { buildRuleSet } from './src/sources/rules/rule-set';
import { JournalReader } from './src/sources/journal/reader';
import { loadNative } from './src/system/native';
import { matchGroups } from './src/sources/journal/monitor';
import { TEST_BOOT_ID } from './test/helpers/journal-files';

const [etc, filesJson] = process.argv.slice(2) as [string, string];
const anon = (): number => Number(/^RssAnon:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
const loaded = loadAgentConfig(etc, { required: true });
const ruleSet = buildRuleSet(loaded);
const source = ruleSet.sources.find((s) => s.name === 'kernel')!;
let matched = 0;
const monitor = new LogMonitor(source, ruleSet.conditions, { event: () => matched++, condition: () => undefined }, TEST_BOOT_ID);
let anonPeak = 0;
let batches = 0;
const reader = new JournalReader(
  { native: loadNative(), files: JSON.parse(filesJson), matches: matchGroups(source.matches), sinceUs: 0, maxMessageBytes: loaded.config.journal.max_message_bytes, batchSize: 1000 },
  (entries) => {
    for (const e of entries) monitor.process(e);
    if (++batches % 50 === 0) anonPeak = Math.max(anonPeak, anon());
  },
);
const c0 = process.cpuUsage();
const t0 = performance.now();
const entries = reader.drain();
const ms = performance.now() - t0;
const cpu = process.cpuUsage(c0);
anonPeak = Math.max(anonPeak, anon());
reader.stop();
console.log(JSON.stringify({ entries, matched, ms, cpuS: (cpu.user + cpu.system) / 1e6, anonPeakKb: anonPeak }));
`;

const work = mkdtempSync(join(tmpdir(), 'nha-bench-flags-'));
try {
  const genOut = join(work, 'gen.js');
  await build({
    stdin: { contents: "export { cachedKernelJournal } from './test/helpers/journal-files';", resolveDir: root, loader: 'ts' },
    outfile: genOut, bundle: true, platform: 'node', format: 'cjs', logLevel: 'warning',
  });
  const pipelineOut = join(work, 'pipeline.js');
  await build({
    stdin: { contents: PIPELINE, resolveDir: root, loader: 'ts' },
    outfile: pipelineOut, bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['*.node'], logLevel: 'warning',
  });
  copyFileSync(join(root, 'dist/node_health_native.node'), join(work, 'node_health_native.node'));
  const runtime = execFileSync('bash', [join(root, 'scripts/fetch-node.sh'), 'x64'], { encoding: 'utf8' }).trim();
  const node = join(runtime, 'bin/node');
  const files = await createRequire(import.meta.url)(genOut).cachedKernelJournal(count);
  console.log(`${count} kernel-style entries, the shipped kernel rules; Node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}; ${runs} run(s) per flag set, median by CPU`);

  const rows = [['flags', 'entries/s', 'CPU', 'peak anon RSS']];
  let matchedBefore;
  for (const flags of flagSets) {
    const results = [];
    for (let r = 0; r < runs; r++) {
      const out = JSON.parse(execFileSync(node, [...flags, pipelineOut, join(root, 'etc'), JSON.stringify(files)], { encoding: 'utf8' }));
      if (out.entries !== count) throw new Error(`with ${flags.join(' ') || 'no flags'}: read ${out.entries} entries, not ${count}`);
      // The flags change speed and memory, never what is found.
      if (matchedBefore !== undefined && out.matched !== matchedBefore) throw new Error(`with ${flags.join(' ')}: ${out.matched} matches, not ${matchedBefore}`);
      matchedBefore = out.matched;
      results.push(out);
    }
    const m = [...results].sort((a, b) => a.cpuS - b.cpuS)[Math.floor(results.length / 2)];
    rows.push([
      flags.join(' ') || '(none)',
      `${Math.round(count / (m.ms / 1000) / 1000)} k/s`,
      `${m.cpuS.toFixed(2)} s`,
      `${Math.round(m.anonPeakKb / 1024)} MB`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
} finally {
  rmSync(work, { recursive: true, force: true });
}
