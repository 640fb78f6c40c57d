// Reading speed of the journal reader beside journalctl's floor, on the same real journal files.
//
//   node scripts/bench/journal-read.mjs [entries] [--runs N]
//
// entries (default 1000000) kernel-style entries are generated once with systemd-journal-remote and
// cached under ~/.cache/node-health-agent/journal/ (keyed by a hash of their content). Each run, in turn:
//   journalctl --file … -o cat > /dev/null      the floor the reader is held to (MESSAGE only)
//   journalctl --file … -o export > /dev/null   every field, for context
//   reader                                      JournalReader.drain() with no rules, batches of 1000, in the
//                                               Node runtime the packages bundle
// Each is a child process measured by its rusage (wall, CPU, peak RSS); the reader also reports the
// time of drain() alone and its peak anonymous RSS (journal files are mmapped, so total RSS counts the
// pages of the files it read). Prints the median of the runs (by CPU time) for each.
//
// The sources are TypeScript; esbuild (a build dependency) bundles them into a temporary directory.
import { execFileSync, spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = args.indexOf('--runs');
const runsText = flag >= 0 ? args.splice(flag, 2)[1] : '3';
const entriesText = args[0] ?? '1000000';
if (!/^\d+$/.test(entriesText) || Number(entriesText) < 1) {
  console.error(`journal-read.mjs: entries must be a whole number above 0, got "${entriesText}"`);
  process.exit(2);
}
if (!/^\d+$/.test(runsText ?? '') || Number(runsText) < 1) {
  console.error(`journal-read.mjs: --runs needs a whole number above 0, got "${runsText ?? ''}"`);
  process.exit(2);
}
const count = Number(entriesText);
const runs = Number(runsText);

const root = fileURLToPath(new URL('../..', import.meta.url));
const addon = join(root, 'dist/node_health_native.node');
const work = mkdtempSync(join(tmpdir(), 'nha-bench-journal-'));

// Runs argv with stdout to /dev/null and returns its rusage: python's RUSAGE_CHILDREN has what Node
// does not give for a child (CPU time and peak RSS).
const MEASURE = `
import json, resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE if sys.argv[1].endswith('node') else subprocess.DEVNULL)
wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": p.returncode, "wallS": wall, "cpuS": r.ru_utime + r.ru_stime, "maxRssKb": r.ru_maxrss,
                  "out": p.stdout.decode() if p.stdout else ""}))
`;
function measure(argv) {
  const res = JSON.parse(execFileSync('python3', ['-c', MEASURE, ...argv], { encoding: 'utf8', maxBuffer: 1 << 20 }));
  if (res.code !== 0) throw new Error(`${argv.join(' ').slice(0, 200)} exited ${res.code}`);
  return res;
}

// The reader's side: drain with no rules, timing drain() alone and sampling anonymous RSS.
const READER = `
import { readFileSync } from 'node:fs';
import { JournalReader } from './src/sources/journal/reader';
import { loadNative } from './src/system/native';
const files: string[] = JSON.parse(process.argv[2]!);
const status = (key: string): number => Number(new RegExp('^' + key + ':\\\\s+(\\\\d+) kB', 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]);
let anonPeak = 0;
let batches = 0;
const reader = new JournalReader({ native: loadNative(), files, matches: [], sinceUs: 0, maxMessageBytes: 16384, batchSize: 1000 }, () => {
  if (++batches % 50 === 0) anonPeak = Math.max(anonPeak, status('RssAnon'));
});
const c0 = process.cpuUsage();
const t0 = performance.now();
const entries = reader.drain();
const drainMs = performance.now() - t0;
const cpu = process.cpuUsage(c0);
anonPeak = Math.max(anonPeak, status('RssAnon'));
reader.stop();
console.log(JSON.stringify({ entries, drainMs, drainCpuMs: (cpu.user + cpu.system) / 1000, anonPeakKb: anonPeak, hwmKb: status('VmHWM') }));
`;

try {
  const genOut = join(work, 'gen.js');
  await build({
    stdin: { contents: "export { cachedKernelJournal } from './test/helpers/journal-files';", resolveDir: root, loader: 'ts' },
    outfile: genOut,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    logLevel: 'warning',
  });
  const readerOut = join(work, 'reader.js');
  await build({
    stdin: { contents: READER, resolveDir: root, loader: 'ts' },
    outfile: readerOut,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['*.node'],
    logLevel: 'warning',
  });
  // loadNative() looks beside the bundle.
  copyFileSync(addon, join(work, 'node_health_native.node'));
  const runtime = execFileSync('bash', [join(root, 'scripts/fetch-node.sh'), 'x64'], { encoding: 'utf8' }).trim();
  const node = join(runtime, 'bin/node');

  const t0 = Date.now();
  const files = await createRequire(import.meta.url)(genOut).cachedKernelJournal(count);
  console.log(`${count} kernel-style entries in ${files.length} journal files (${((Date.now() - t0) / 1000).toFixed(1)} s to find or write)`);
  const version = spawnSync('journalctl', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  console.log(`${version}; reader in ${node} (${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}); ${runs} run(s), median by CPU`);

  const fileArgs = files.map((f) => `--file=${f}`);
  const commands = {
    'journalctl -o cat': ['journalctl', ...fileArgs, '-o', 'cat'],
    'journalctl -o export': ['journalctl', ...fileArgs, '-o', 'export'],
    reader: [node, readerOut, JSON.stringify(files)],
  };
  measure(commands['journalctl -o cat']); // page cache warm-up
  const results = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  for (let r = 0; r < runs; r++) {
    for (const [name, argv] of Object.entries(commands)) results[name].push(measure(argv));
  }
  const median = (xs) => [...xs].sort((a, b) => a.cpuS - b.cpuS)[Math.floor(xs.length / 2)];

  const rows = [];
  const floor = median(results['journalctl -o cat']);
  for (const name of Object.keys(commands)) {
    const m = median(results[name]);
    const inner = name === 'reader' ? JSON.parse(m.out) : undefined;
    if (inner && inner.entries !== count) throw new Error(`the reader read ${inner.entries} entries, not ${count}`);
    rows.push([
      name,
      `${Math.round(count / m.wallS / 1000)} k/s`,
      `${m.wallS.toFixed(2)} s`,
      `${m.cpuS.toFixed(2)} s`,
      `${Math.round(m.maxRssKb / 1024)} MB`,
      inner ? `${Math.round(inner.anonPeakKb / 1024)} MB` : '',
      inner ? `${Math.round(count / (inner.drainMs / 1000) / 1000)} k/s, ${(inner.drainCpuMs / 1000).toFixed(2)} s CPU` : '',
      `${Math.round((floor.cpuS / m.cpuS) * 100)} %`,
    ]);
  }
  const head = ['', 'entries/s', 'wall', 'CPU', 'peak RSS', 'peak anon RSS', 'drain() alone', 'floor CPU / CPU'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
} finally {
  rmSync(work, { recursive: true, force: true });
}
