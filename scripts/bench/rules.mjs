// Cost of matching: the shipped kernel rules (etc/*.ini) over N kernel-style lines in
// memory, through the same LogMonitor the daemon runs, against running every RE2 pattern on every line.
// Reading the journal is measured separately (scripts/bench/journal-read.*).
//
//   node scripts/bench/rules.mjs [lines] [config-dir]        (default 1000000 lines, etc/)
//
// A config dir other than etc/ compares rule sets, e.g. an earlier commit's etc/ (git show REV:etc/…).
//
// esbuild (a build dependency) bundles a small entry from the TypeScript sources into a temp file.
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const lines = Number(process.argv[2] ?? '1000000');
const root = fileURLToPath(new URL('../..', import.meta.url));
const configDir = process.argv[3] ?? join(root, 'etc');
const dir = mkdtempSync(join(tmpdir(), 'nha-bench-rules-'));
try {
  await build({
    stdin: {
      contents: `
        export { loadAgentConfig } from './src/sections';
        export { buildRuleSet } from './src/sources/rules/rule-set';
        export { LogMonitor } from './src/sources/rules/log-monitor';`,
      resolveDir: root,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile: join(dir, 'entry.js'),
    logLevel: 'warning',
  });
  const { loadAgentConfig, buildRuleSet, LogMonitor } = createRequire(import.meta.url)(join(dir, 'entry.js'));
  const ruleSet = buildRuleSet(loadAgentConfig(configDir, { required: true }));
  const kernel = ruleSet.sources.find((s) => s.name === 'kernel');

  // Mostly chatter, with one OOM kill and one hung task per thousand lines. Strings are flattened
  // (Buffer round trip) as they are when they come from the journal.
  const chatter = [
    'IPv6: ADDRCONF(NETDEV_CHANGE): cali%d: link becomes ready',
    'eth0: renamed from tmp%d',
    'cni0: port %d(veth%d) entered forwarding state',
    'audit: type=1400 audit(1700000000.%d:1): apparmor="STATUS" operation="profile_load"',
  ];
  const text = [];
  for (let i = 0; i < lines; i++) {
    const r = i % 1000;
    const line =
      r === 0 ? `Out of memory: Killed process ${i} (java) total-vm:4372012kB, anon-rss:2094712kB, file-rss:24480kB, shmem-rss:0kB`
      : r === 1 ? `INFO: task kworker/u16:${i % 7}:${i} blocked for more than 120 seconds.`
      : chatter[i % chatter.length].replaceAll('%d', String(i));
    text.push(Buffer.from(line).toString());
  }

  let events = 0;
  const monitor = new LogMonitor(kernel, ruleSet.conditions, { event: () => events++, condition: () => {} }, '');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < text.length; i++) monitor.process({ message: text[i], realtimeUs: i, bootId: '' });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${kernel.rules.length} kernel rules, ${lines} lines, ${events} events`);
  console.log(`LogMonitor (literal gate + RE2 on candidates): ${ms.toFixed(0)} ms, ${Math.round(lines / (ms / 1000)).toLocaleString('en')} lines/s, CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`);

  const sample = text.slice(0, Math.min(lines, 100_000));
  const t1 = performance.now();
  for (const line of sample) for (const rule of kernel.rules) rule.pattern.matchEnd(line);
  const naive = performance.now() - t1;
  console.log(`RE2 on every line without the gate (first ${sample.length} lines): ${naive.toFixed(0)} ms, ${Math.round(sample.length / (naive / 1000)).toLocaleString('en')} lines/s`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
