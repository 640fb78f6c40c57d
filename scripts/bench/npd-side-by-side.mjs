// The journal monitor beside node-problem-detector (NPD), in one run, on the same real journal files:
//
//   node scripts/bench/npd-side-by-side.mjs [entries] [--unit-flags]        (default 1000000)
//
// --unit-flags runs the agent's side with the Node flags of the unit's ExecStart, as the daemon runs.
//
// entries kernel-style entries (test/helpers/journal-files.ts, cached under ~/.cache/node-health-agent/
// journal/) are hard-linked into one directory with a last "sentinel" entry, a line both rule sets
// turn into the XfsShutdown condition, so each side's end is seen exactly. Then, one after another:
//   journalctl --file … -o export > /dev/null     the floor the issue names (every field)
//   journalctl --file … -o cat > /dev/null        MESSAGE only
//   agent, shipped rules      JournalReader.drain() over the directory with the kernel source's matches
//                             (_TRANSPORT=kernel), each batch through LogMonitor with the shipped kernel
//                             rules (etc/) and events through the EventAggregator: the daemon's pipeline
//   agent, NPD's rules        the same, with the NPD config NPD gets below (but NPD's own lookback: the
//                             agent reads from the first entry anyway), loaded by our NPD loader
//                             (matches SYSLOG_IDENTIFIER=kernel, NPD's 14 kernel rules)
//   NPD                       k8s.io/node-problem-detector@NPD_VERSION built with -tags journald (cached
//                             under ~/.cache/node-health-agent/npd/), its shipped kernel-monitor.json
//                             changed only to read this directory: plugin "journald",
//                             pluginConfig.source "kernel", logPath, and a lookback reaching the first
//                             entry. NPD cuts its start point at boot time, and the entries are older
//                             than this boot, so it runs in a time namespace whose boot time lies
//                             before them (`unshare --time --boottime`; nothing else changes). Timed
//                             from its start until it logs the sentinel's status, then killed.
// journalctl and the agent are measured by their rusage (wall, CPU, peak RSS); the agent also reports
// its peak anonymous RSS. NPD is measured from /proc (CPU at the sentinel, VmHWM, RssAnon sampled every
// 200 ms). Total RSS counts the mmapped journal pages a process touched; anonymous RSS is its own memory.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NPD_VERSION, npdBinary } from './npd-binary.mjs';
import { unitNodeFlags } from './unit-flags.mjs';

const SENTINEL = 'XFS (sentinel0): Corruption of in-memory data detected. Shutting down filesystem';

const args = process.argv.slice(2);
const withUnitFlags = args.includes('--unit-flags');
const entriesText = args.filter((a) => a !== '--unit-flags')[0] ?? '1000000';
if (!/^\d+$/.test(entriesText) || Number(entriesText) < 1) {
  console.error(`npd-side-by-side.mjs: entries must be a whole number above 0, got "${entriesText}"`);
  process.exit(2);
}
const count = Number(entriesText);
const root = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'nha-bench-npd-'));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// Runs argv with stdout to /dev/null (or captured, for the agent's report) and returns its rusage.
const MEASURE = `
import json, resource, subprocess, sys, time
capture = sys.argv[1] == 'capture'
t = time.monotonic()
p = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE if capture else subprocess.DEVNULL)
wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": p.returncode, "wallS": wall, "cpuS": r.ru_utime + r.ru_stime, "maxRssKb": r.ru_maxrss,
                  "out": p.stdout.decode() if p.stdout else ""}))
`;
function measure(argv, capture = false) {
  const load = loadavg();
  const res = JSON.parse(execFileSync('python3', ['-c', MEASURE, capture ? 'capture' : 'null', ...argv], { encoding: 'utf8', maxBuffer: 1 << 20 }));
  if (res.code !== 0) throw new Error(`${argv.join(' ').slice(0, 200)} exited ${res.code}`);
  return { ...res, load };
}

// The agent's side: the daemon's journal pipeline (src/sources/journal/monitor.ts) run to the end of
// the files with drain() instead of event-driven wake-ups.
const AGENT = `
import { readFileSync } from 'node:fs';
import { loadAgentConfig } from './src/sections';
import { EventAggregator } from './src/sources/rules/event-aggregator';
import { LogMonitor, type JournalSourceSpec, type LogConditionSpec } from './src/sources/rules/log-monitor';
import { loadNpdConfig } from './src/sources/rules/npd-config';
import { buildRuleSet } from './src/sources/rules/rule-set';
import { JournalReader } from './src/sources/journal/reader';
import { loadNative } from './src/system/native';
import { matchGroups } from './src/sources/journal/monitor';
import { TEST_BOOT_ID } from './test/helpers/journal-files';

const [directory, etc, npdConfig] = process.argv.slice(2) as [string, string, string];
const status = (key: string): number => Number(new RegExp('^' + key + ':\\\\s+(\\\\d+) kB', 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]);
const loaded = loadAgentConfig(etc, { required: true });
let source: JournalSourceSpec;
let conditions: Map<string, LogConditionSpec>;
if (npdConfig !== '') {
  const npd = loadNpdConfig(npdConfig);
  source = npd.source;
  conditions = new Map(npd.conditions.map((c) => [c.type, c]));
} else {
  const ruleSet = buildRuleSet(loaded);
  source = ruleSet.sources.find((s) => s.name === 'kernel')!;
  conditions = ruleSet.conditions;
}
let matched = 0;
let emitted = 0;
let lastTrue = '';
let becameTrue = 0;
const byReason: Record<string, number> = {};
const trueByType: Record<string, number> = {};
const aggregator = new EventAggregator(loaded.config.journal.event_window, () => emitted++);
// The entries are this (simulated) boot's, as NPD in its time namespace takes them to be.
const monitor = new LogMonitor(source, conditions, {
  event: (e) => {
    matched++;
    byReason[e.reason] = (byReason[e.reason] ?? 0) + 1;
    aggregator.report(e);
  },
  condition: (c) => {
    if (c.status !== 'True') return;
    becameTrue++;
    trueByType[c.type] = (trueByType[c.type] ?? 0) + 1;
    lastTrue = c.type + '/' + c.reason + ': ' + c.message;
  },
}, TEST_BOOT_ID);
let anonPeak = 0;
let batches = 0;
let read = 0;
// Anonymous RSS after each tenth of the entries: flat means memory does not grow with the backlog.
const total = Number(process.argv[5]);
const tenths: number[] = [];
const reader = new JournalReader(
  { native: loadNative(), directory, matches: matchGroups(source.matches), sinceUs: 0, maxMessageBytes: loaded.config.journal.max_message_bytes, batchSize: 1000 },
  (entries) => {
    for (const e of entries) monitor.process(e);
    read += entries.length;
    if (++batches % 50 === 0) anonPeak = Math.max(anonPeak, status('RssAnon'));
    if (read >= ((tenths.length + 1) * total) / 10) tenths.push(status('RssAnon'));
  },
);
const entries = reader.drain();
aggregator.flush();
anonPeak = Math.max(anonPeak, status('RssAnon'));
reader.stop();
console.log(JSON.stringify({ entries, rules: source.rules.length, matched, byReason, emitted, becameTrue, trueByType, lastTrue, anonPeakKb: anonPeak, tenths }));
`;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const childPid = (pid) => Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0] || 0);
const procStatusKb = (pid, key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
// utime + stime of all its threads, from /proc/PID/stat (fields 14 and 15, after the parenthesised name).
const procCpuS = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
};

/** Runs NPD until it logs the sentinel's status; returns its figures and stops it. */
async function runNpd(bin, config, bootOffsetS, timeoutMs) {
  const port = await freePort();
  const load = loadavg();
  const t0 = performance.now();
  const child = spawn(
    'unshare',
    ['--time', `--boottime=${bootOffsetS}`, '--fork', '--kill-child', bin,
      `--config.system-log-monitor=${config}`, '--enable-k8s-exporter=false', '--port=0',
      `--prometheus-port=${port}`, '--hostname-override=bench-node'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let npdPid = 0;
  let anonPeakKb = 0;
  const samples = [];
  let statuses = 0;
  let tail = '';
  let log = '';
  const sample = () => {
    try {
      npdPid ||= childPid(child.pid);
      if (!npdPid) return;
      const kb = procStatusKb(npdPid, 'RssAnon');
      anonPeakKb = Math.max(anonPeakKb, kb);
      samples.push([performance.now() - t0, kb]);
    } catch {
      // it exited; the close handler says so
    }
  };
  const sampler = setInterval(sample, 200);
  try {
    const result = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`NPD did not reach the sentinel within ${timeoutMs / 1000} s (${statuses} statuses); log:\n${log.slice(-2000)}`)), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`NPD exited ${code} before reaching the sentinel; log:\n${log.slice(-2000)}`));
      });
      child.stderr.on('data', (chunk) => {
        const text = tail + chunk.toString();
        const lines = text.split('\n');
        tail = lines.pop();
        for (const line of lines) {
          if (log.length < 1 << 16) log += `${line}\n`;
          if (!line.includes('New status generated')) continue;
          statuses++;
          if (!line.includes('sentinel0')) continue;
          const wallS = (performance.now() - t0) / 1000;
          sample();
          clearTimeout(timer);
          resolve({ wallS, cpuS: procCpuS(npdPid), maxRssKb: procStatusKb(npdPid, 'VmHWM') });
        }
      });
    });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // problem_counter counts every event NPD makes: temporary matches and permanent rules' condition changes.
    const byReason = Object.fromEntries([...metrics.matchAll(/^problem_counter\{reason="([^"]+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]));
    const tenths = Array.from({ length: 10 }, (_, i) => {
      const at = samples.findLast(([ms]) => ms <= ((i + 1) * result.wallS * 1000) / 10);
      return at ? at[1] : 0;
    });
    return { ...result, anonPeakKb, statuses, byReason, tenths, load };
  } finally {
    clearInterval(sampler);
    child.removeAllListeners('close');
    const exited = new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    if (npdPid) {
      try {
        process.kill(npdPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    child.kill('SIGTERM');
    await exited;
  }
}

try {
  const { bin: npd, moduleDir } = npdBinary();

  const genOut = join(work, 'gen.js');
  await build({
    stdin: { contents: "export { cachedKernelJournal, writeJournal, TEST_BOOT_ID } from './test/helpers/journal-files';", resolveDir: root, loader: 'ts' },
    outfile: genOut, bundle: true, platform: 'node', format: 'cjs', logLevel: 'warning',
  });
  const agentOut = join(work, 'agent.js');
  await build({
    stdin: { contents: AGENT, resolveDir: root, loader: 'ts' },
    outfile: agentOut, bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['*.node'], logLevel: 'warning',
  });
  copyFileSync(join(root, 'dist/node_health_native.node'), join(work, 'node_health_native.node'));
  const runtime = execFileSync('bash', [join(root, 'scripts/fetch-node.sh'), 'x64'], { encoding: 'utf8' }).trim();
  const node = join(runtime, 'bin/node');
  const agentFlags = withUnitFlags ? unitNodeFlags(root) : [];

  // The journal directory both read: the cached files (hard links, so nothing is copied) and the sentinel.
  const gen = createRequire(import.meta.url)(genOut);
  const cached = await gen.cachedKernelJournal(count);
  const dir = join(work, 'journal');
  mkdirSync(dir);
  for (const f of cached) {
    try {
      linkSync(f, join(dir, basename(f)));
    } catch {
      symlinkSync(f, join(dir, basename(f)));
    }
  }
  const firstUs = 1_750_000_000_000_000; // kernelEntries' default start
  const sentinelUs = firstUs + (count + 1) * 1000;
  await gen.writeJournal(dir, 'sentinel', [{
    realtimeUs: sentinelUs,
    fields: { _TRANSPORT: 'kernel', SYSLOG_IDENTIFIER: 'kernel', SYSLOG_FACILITY: '0', PRIORITY: '1', _HOSTNAME: 'node-1', MESSAGE: SENTINEL },
  }]);
  const files = [...cached.map((f) => join(dir, basename(f))), join(dir, 'sentinel.journal')];
  const total = count + 1;

  // NPD's shipped kernel monitor, pointed at the directory.
  const ageS = Math.ceil(Date.now() / 1000 - firstUs / 1e6);
  const shipped = JSON.parse(readFileSync(join(moduleDir, 'config/kernel-monitor.json'), 'utf8'));
  const adapted = { ...shipped, plugin: 'journald', pluginConfig: { source: 'kernel' }, logPath: dir, lookback: `${Math.ceil(ageS / 3600) + 24}h` };
  const npdConfig = join(work, 'kernel-monitor.json');
  writeFileSync(npdConfig, JSON.stringify(adapted, null, 2));
  // The agent reads the directory from its first entry whatever the lookback, and refuses a duration past
  // the timer limit (24.8 days), which reaching these entries takes: its copy keeps NPD's own lookback.
  const agentNpdConfig = join(work, 'kernel-monitor.agent.json');
  writeFileSync(agentNpdConfig, JSON.stringify({ ...adapted, lookback: shipped.lookback }, null, 2));
  const changed = Object.keys(adapted).filter((k) => JSON.stringify(adapted[k]) !== JSON.stringify(shipped[k]));

  const cpus = execFileSync('nproc', { encoding: 'utf8' }).trim();
  console.log(`${count} kernel-style entries + 1 sentinel in ${files.length} journal files; ${cpus} cores`);
  console.log(`${spawnSync('journalctl', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]}; agent in Node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()} (flags: ${agentFlags.join(' ') || 'none'}); NPD ${NPD_VERSION}`);
  console.log(`NPD config: kernel-monitor.json with ${changed.map((k) => `${k}=${JSON.stringify(adapted[k])}`).join(', ')}`);

  const fileArgs = files.map((f) => `--file=${f}`);
  measure(['journalctl', ...fileArgs, '-o', 'cat']); // page cache warm-up
  const rows = [];
  const row = (name, m, extra) => rows.push({ name, ...m, ...extra });
  row('journalctl -o export > /dev/null', measure(['journalctl', ...fileArgs, '-o', 'export']));
  row('journalctl -o cat > /dev/null', measure(['journalctl', ...fileArgs, '-o', 'cat']));
  let agentByReason = {};
  const growth = [];
  const detail = [];
  for (const [name, config] of [['agent, shipped kernel rules', ''], ["agent, NPD's kernel-monitor.json", agentNpdConfig]]) {
    const m = measure([node, ...agentFlags, agentOut, dir, join(root, 'etc'), config, String(total)], true);
    const inner = JSON.parse(m.out);
    if (inner.entries !== total) throw new Error(`${name}: read ${inner.entries} entries, not ${total}`);
    if (!inner.lastTrue.includes('sentinel0')) throw new Error(`${name}: the sentinel did not set its condition (last: ${inner.lastTrue})`);
    row(name, m, { anonPeakKb: inner.anonPeakKb, note: `${inner.rules} rules; ${inner.matched} temporary matches (${inner.emitted} events after aggregation), ${inner.becameTrue} condition True reports` });
    agentByReason = inner.byReason;
    const list = (o) => Object.entries(o).sort().map(([k, v]) => `${k} ${v}`).join(', ');
    detail.push(`${name}: temporary matches ${list(inner.byReason)}; condition True reports ${list(inner.trueByType)}`);
    growth.push(`${name}: ${inner.tenths.map((kb) => Math.round(kb / 1024)).join(' ')}`);
  }
  const timeoutMs = Math.max(600_000, (total / 500) * 1000);
  const n = await runNpd(npd, npdConfig, ageS + 86_400, timeoutMs);
  const permanentReasons = new Set(adapted.rules.filter((r) => r.type === 'permanent').map((r) => r.reason));
  const npdTemporary = Object.fromEntries(Object.entries(n.byReason).filter(([r, c]) => !permanentReasons.has(r) && c > 0));
  const npdMatched = Object.values(npdTemporary).reduce((a, b) => a + b, 0);
  const npdChanges = Object.entries(n.byReason).filter(([r]) => permanentReasons.has(r)).reduce((a, [, c]) => a + c, 0);
  row(`NPD ${NPD_VERSION}, kernel-monitor.json`, n, { note: `${adapted.rules.length} rules; ${npdMatched} temporary matches (problem_counter), ${npdChanges} permanent-rule events; ${n.statuses} statuses logged` });

  growth.push(`NPD (by tenths of its run time): ${n.tenths.map((kb) => Math.round(kb / 1024)).join(' ')}`);
  const npdRate = total / n.wallS;
  const table = rows.map((r) => [
    r.name,
    `${Math.round(total / r.wallS / 1000).toLocaleString('en')} k/s`,
    `${r.wallS.toFixed(2)} s`,
    `${r.cpuS.toFixed(2)} s`,
    `${Math.round(r.maxRssKb / 1024)} MB`,
    r.anonPeakKb ? `${Math.round(r.anonPeakKb / 1024)} MB` : '',
    `${(total / r.wallS / npdRate).toFixed(1)}×`,
    r.load,
    r.note ?? '',
  ]);
  const head = ['', 'entries/s', 'wall', 'CPU', 'peak RSS', 'peak anon RSS', 'vs NPD', 'load before', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  for (const r of [head, ...table]) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  console.log(detail.join('\n'));
  console.log(`anonymous RSS (MB) after each tenth of the entries:\n  ${growth.join('\n  ')}`);
  // The agent with NPD's rules against NPD, reason by reason: equal counts mean both saw the same lines.
  const reasons = [...new Set([...Object.keys(agentByReason), ...Object.keys(npdTemporary)])].sort();
  const differ = reasons.filter((r) => (agentByReason[r] ?? 0) !== (npdTemporary[r] ?? 0));
  console.log(differ.length === 0
    ? `temporary matches per reason, agent with NPD's rules = NPD: ${reasons.map((r) => `${r} ${npdTemporary[r]}`).join(', ')}`
    : `temporary matches per reason differ (agent / NPD): ${differ.map((r) => `${r} ${agentByReason[r] ?? 0} / ${npdTemporary[r] ?? 0}`).join(', ')}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
