// `node-health-agent rules test` as an operator runs it: the built CLI, the shipped rules or a config of
// the test's own, plain text or real `journalctl -o export` output on stdin or in a file.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exportEntry, writeJournal, type SourceEntry } from '../helpers/journal-files';
import { configDir } from '../helpers/tmp';

const bin = join(__dirname, '../../dist/node-health-agent.js');
const etc = join(__dirname, '../../etc');

interface Raised {
  source: string;
  rule: string;
  kind: string;
  reason: string;
  condition: string | null;
  message: string;
}
interface Result {
  line: number;
  text: string;
  cursor?: string;
  sources: string[];
  raised: Raised[];
  counted: Array<{ rule: string; matches: number; count: number; window: string }>;
  reverted: Array<{ rule: string; condition: string }>;
}

function run(args: string[], input?: string | Buffer, opts: { asNobody?: boolean } = {}) {
  let argv = [process.execPath, bin, 'rules', 'test', ...args];
  if (opts.asNobody && process.getuid?.() === 0) {
    // As an unprivileged operator: drop to nobody, running a copy of the bundle from a directory nobody
    // can reach (a checkout may sit under a private directory).
    const dir = mkdtempSync(join(tmpdir(), 'nha-bundle-'));
    chmodSync(dir, 0o755);
    copyFileSync(bin, join(dir, 'node-health-agent.js'));
    argv = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, join(dir, 'node-health-agent.js'), 'rules', 'test', ...args];
  }
  const res = spawnSync(argv[0] as string, argv.slice(1), { input: input ?? '', encoding: 'utf8' });
  if (res.error) throw new Error(`${argv[0]}: ${res.error.message}${argv[0] === 'setpriv' ? ' (util-linux)' : ''}`);
  return res;
}

function json(args: string[], input?: string | Buffer): Result[] {
  const res = run(['--json', ...args], input);
  if (res.status !== 0) throw new Error(`rules test exited ${res.status}: ${res.stderr}`);
  return res.stdout.trimEnd().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Result);
}

const rulesOf = (r: Result): string[] => r.raised.map((x) => x.rule);

const OOM = 'Out of memory: Killed process 4127 (stress) total-vm:1056836kB, anon-rss:1048620kB, file-rss:1024kB, shmem-rss:0kB, UID:0 pgtables:2104kB oom_score_adj:0';
const HUNG = 'INFO: task docker:20744 blocked for more than 120 seconds.';
const UNREG = 'unregister_netdevice: waiting for lo to become free. Usage count = 1';

t.test('plain text: each line and what it raised, with the shipped rules, exit 0', async (t) => {
  const res = run(['--config-dir', etc], `${OOM}\nEXT4-fs (sda1): mounted filesystem with ordered data mode\n${HUNG}\n`);
  t.equal(res.status, 0, res.stderr);
  t.equal(res.stderr, '');
  const lines = res.stdout.split('\n');
  t.equal(lines[0], `1 [kernel]: ${OOM}`);
  t.match(lines[1], /^\s+temporary\s+OOMKilling: event, reason OOMKilling$/);
  t.equal(lines[2], '2 [kernel]: EXT4-fs (sda1): mounted filesystem with ordered data mode');
  t.match(lines[3], /^\s+nothing$/);
  t.match(res.stdout, /\n\s+permanent\s+DockerHung: condition KernelDeadlock, reason DockerHung\n/);
  t.match(res.stdout, /\n3 entries: 2 raised something, 1 raised nothing\n$/);
});

t.test('--json: one object per input line with the documented fields', async (t) => {
  // A file as input this time; "\r\n" line ends are taken as "\n".
  const file = join(mkdtempSync(join(tmpdir(), 'nha-rules-')), 'lines.txt');
  writeFileSync(file, `${OOM}\r\nnothing to see\r\n${HUNG}\r\n${HUNG}`);
  const results = json(['--config-dir', etc, file]);
  t.equal(results.length, 4);
  for (const [i, r] of results.entries()) {
    t.same(Object.keys(r), ['line', 'text', 'sources', 'raised', 'counted', 'reverted']);
    t.equal(r.line, i + 1);
    t.same(r.sources, ['kernel']);
    for (const x of r.raised) t.same(Object.keys(x), ['source', 'rule', 'kind', 'reason', 'condition', 'message']);
  }
  t.equal(results[0]?.text, OOM);
  t.same(results[0]?.raised, [
    { source: 'kernel', rule: 'OOMKilling', kind: 'temporary', reason: 'OOMKilling', condition: null, message: OOM.slice('Out of memory: '.length) },
  ]);
  t.same(results[1]?.raised, []);
  // The daemon reports a repeated permanent match once; the tester shows every line that matches.
  for (const r of [results[2], results[3]]) {
    t.match(r?.raised.find((x) => x.rule === 'DockerHung'), { kind: 'permanent', reason: 'DockerHung', condition: 'KernelDeadlock', message: 'task docker:20744 blocked for more than 120 seconds.' });
    t.ok(r?.raised.some((x) => x.rule === 'TaskHung'), 'and the TaskHung event');
  }
});

t.test('count rule: raises on the line that reaches the threshold; plain-text lines share one instant', async (t) => {
  const results = json(['--config-dir', etc], `${UNREG}\n${UNREG}\n${UNREG}\n${UNREG}\n`);
  const counted = results.map((r) => r.counted.find((c) => c.rule === 'FrequentUnregisterNetDevice'));
  t.match(counted, [{ matches: 1, count: 3, window: '20m' }, { matches: 2, count: 3 }, undefined, undefined]);
  for (const r of results.slice(0, 2)) t.notOk(rulesOf(r).includes('FrequentUnregisterNetDevice'));
  for (const r of results.slice(2)) {
    t.match(r.raised.find((x) => x.rule === 'FrequentUnregisterNetDevice'), { kind: 'count', condition: 'FrequentUnregisterNetDevice', reason: 'UnregisterNetDevice' });
  }
  t.match(results[2]?.raised.find((x) => x.rule === 'FrequentUnregisterNetDevice')?.message, /^3 times within 20m \(threshold 3\); latest: unregister_netdevice/);
  // The event rule on the same line fires every time.
  for (const r of results) t.ok(rulesOf(r).includes('UnregisterNetDevice'));
});

t.test('multi-line rule: sees the source buffer as the daemon does; revert patterns are shown', async (t) => {
  const dir = configDir({
    '10.ini': [
      '[source "kernel"]',
      'matches = _TRANSPORT=kernel',
      'buffer_size = 3',
      '[condition "Stuck"]',
      'reason = NotStuck',
      'message = not stuck',
      '[rule "TwoStep"]',
      'source = kernel',
      'kind = permanent',
      'condition = Stuck',
      'reason = StuckInTwoSteps',
      'pattern = step one\\nstep two',
      'revert_pattern = all clear',
      '',
    ].join('\n'),
  });
  const results = json(['--config-dir', dir], 'step one\nstep two\nstep two\nstep one\nnoise\nstep two\nall clear\n');
  t.same(results.map(rulesOf), [[], ['TwoStep'], [], [], [], [], []], 'only where "step two" directly follows "step one"');
  t.equal(results[1]?.raised[0]?.message, 'step one\nstep two', 'the match spans both lines');
  t.same(results[6]?.reverted, [{ source: 'kernel', rule: 'TwoStep', kind: 'permanent', condition: 'Stuck' }]);
  const text = run(['--config-dir', dir], 'step one\nstep two\nall clear\n').stdout;
  t.match(text, /\n\s+revert\s+TwoStep: clears condition Stuck\n/);
});

// Real export output: entries written into a journal file by systemd-journal-remote, read back with
// `journalctl --file … -o export`.
async function journalExport(entries: SourceEntry[]): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'nha-rules-journal-'));
  const files = await writeJournal(dir, 'test', entries);
  const res = spawnSync('journalctl', [...files.map((f) => `--file=${f}`), '-o', 'export'], { maxBuffer: 64 << 20 });
  if (res.error || res.status !== 0) throw new Error(`journalctl -o export failed (install systemd with scripts/setup.sh): ${res.error?.message ?? res.stderr.toString()}`);
  return res.stdout;
}

t.test('journalctl -o export: each entry goes to every source whose matches accept its fields', async (t) => {
  const base = 1_780_000_000_000_000;
  const MIN = 60_000_000;
  const entries: SourceEntry[] = [
    { realtimeUs: base, fields: { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', MESSAGE: OOM } },
    // The same words from a program's own output: no source reads it.
    { realtimeUs: base + 1, fields: { _TRANSPORT: 'stdout', _SYSTEMD_UNIT: 'stress.service', SYSLOG_IDENTIFIER: 'stress', MESSAGE: OOM } },
    { realtimeUs: base + 2, fields: { _TRANSPORT: 'journal', _PID: '1', SYSLOG_IDENTIFIER: 'systemd', MESSAGE: 'Started kubelet.service - kubelet: The Kubernetes Node Agent.' } },
    { realtimeUs: base + 3, fields: { _TRANSPORT: 'stdout', _SYSTEMD_UNIT: 'kubelet.service', SYSLOG_IDENTIFIER: 'kubelet', MESSAGE: 'E1125 04:00:00.123456    1234 kubelet.go:2359] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s"' } },
    // A message with a newline is stored and exported in the binary form (64-bit length).
    { realtimeUs: base + 4, fields: { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', MESSAGE: `watchdog: hello\n${HUNG}` } },
    // Count windows are judged by __REALTIME_TIMESTAMP: 3 in 20 minutes.
    { realtimeUs: base + 10 * MIN, fields: { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', MESSAGE: UNREG } },
    { realtimeUs: base + 25 * MIN, fields: { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', MESSAGE: UNREG } },
    { realtimeUs: base + 40 * MIN, fields: { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', MESSAGE: UNREG } },
    { realtimeUs: base + 41 * MIN, fields: { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', MESSAGE: UNREG } },
  ];
  const input = await journalExport(entries);
  t.ok(input.includes(Buffer.concat([Buffer.from('\nMESSAGE\n'), Buffer.from([`watchdog: hello\n${HUNG}`.length, 0, 0, 0, 0, 0, 0, 0])])), 'the input holds a binary field');
  t.match(input.toString('latin1'), /^__CURSOR=/, 'real journalctl output');

  const results = json(['--config-dir', etc], input);
  t.equal(results.length, entries.length);
  t.same(results.map((r) => r.sources), [['kernel'], [], ['systemd'], ['kubelet'], ['kernel'], ['kernel'], ['kernel'], ['kernel'], ['kernel']]);
  t.same(rulesOf(results[0]!), ['OOMKilling']);
  t.same(results[1]?.raised, []);
  t.same(rulesOf(results[2]!), ['KubeletStart']);
  t.match(results[2]?.counted, [{ rule: 'FrequentKubeletRestart', matches: 1, count: 5 }]);
  t.same(rulesOf(results[3]!), ['PLEGNotHealthy']);
  t.equal(results[4]?.text, `watchdog: hello\n${HUNG}`);
  t.same(rulesOf(results[4]!).sort(), ['DockerHung', 'TaskHung']);
  const frequent = (r: Result | undefined) => rulesOf(r!).includes('FrequentUnregisterNetDevice');
  t.same([5, 6, 7, 8].map((i) => frequent(results[i])), [false, false, false, true], 'the first of the four is out of the window of the third');
  t.match(results[7]?.counted, [{ rule: 'FrequentUnregisterNetDevice', matches: 2 }]);
  for (const r of results) t.match(r.cursor, /^s=[0-9a-f]{32};i=/, 'each result names its entry by cursor');

  // --source keeps one source: the kernel entries are read by nothing else.
  const only = json(['--config-dir', etc, '--source', 'systemd', '-'], input);
  t.same(only.map((r) => r.sources), [[], [], ['systemd'], [], [], [], [], [], []]);

  const text = run(['--config-dir', etc], input);
  t.equal(text.status, 0, text.stderr);
  t.match(text.stdout, '2 [read by no source]: Out of memory');
  t.match(text.stdout, `5 [kernel]: watchdog: hello\\n${HUNG}\n`);
});

t.test('NPD JSON configs named in [journal] npd_configs take part as in the daemon', async (t) => {
  const npd = join(mkdtempSync(join(tmpdir(), 'nha-npd-')), 'kernel-monitor.json');
  writeFileSync(
    npd,
    JSON.stringify({
      plugin: 'kmsg',
      source: 'kernel-monitor',
      conditions: [{ type: 'KernelDeadlock', reason: 'KernelHasNoDeadlock', message: 'kernel has no deadlock' }],
      rules: [
        { type: 'temporary', reason: 'OOMKilling', pattern: 'Killed process \\d+ (.+) total-vm:\\d+kB, anon-rss:\\d+kB, file-rss:\\d+kB.*' },
        { type: 'permanent', condition: 'KernelDeadlock', reason: 'DockerHung', pattern: 'task docker:\\w+ blocked for more than \\w+ seconds\\.' },
      ],
    }),
  );
  const dir = configDir({ '10.ini': `[journal]\nnpd_configs = ${npd}\n` });
  const input = exportEntry({ realtimeUs: 1_780_000_000_000_000, fields: { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', MESSAGE: HUNG } });
  const [r] = json(['--config-dir', dir], input);
  t.same(r?.sources, ['npd:kernel-monitor']);
  t.match(r?.raised, [{ source: 'npd:kernel-monitor', rule: '1-DockerHung', kind: 'permanent', condition: 'KernelDeadlock' }]);
  const plain = json(['--config-dir', dir, '--source', 'npd:kernel-monitor'], `${OOM}\n`);
  t.match(plain[0]?.raised, [{ rule: '0-OOMKilling', kind: 'temporary', condition: null }]);
});

t.test('needs no root, no state directory and no journal', async (t) => {
  const dir = configDir({ '10.ini': '[agent]\nstate_dir = /nonexistent/state\nruntime_dir = /nonexistent/run\n[source "kernel"]\nmatches = _TRANSPORT=kernel\n[rule "OOM"]\nsource = kernel\nreason = OOMKilling\npattern = Killed process \\d+ .*\n' });
  const res = run(['--config-dir', dir, '--json'], `${OOM}\n`, { asNobody: true });
  t.equal(res.status, 0, res.stderr);
  t.match(JSON.parse(res.stdout) as Result, { raised: [{ rule: 'OOM' }] });
});

t.test('bad config: exit 2 with one line naming file:line and the key', async (t) => {
  const dir = configDir({ '10.ini': '[source "kernel"]\nmatches = _TRANSPORT=kernel\n\n[rule "Broken"]\nsource = kernel\nreason = Broken\npattern = task (docker\n' });
  const res = run(['--config-dir', dir], `${HUNG}\n`);
  t.equal(res.status, 2);
  t.equal(res.stdout, '');
  t.match(res.stderr, new RegExp(`^node-health-agent: ${dir}/10\\.ini:7: \\[rule "Broken"\\] pattern: invalid RE2 pattern "task \\(docker": .*\\n$`));

  const none = run(['--config-dir', etc, '--source', 'dmesg'], `${HUNG}\n`);
  t.equal(none.status, 2);
  t.match(none.stderr, /^node-health-agent: --source dmesg: no enabled source with enabled rules of that name in .*\(sources with rules: kernel, systemd, kubelet, containerd\)\n$/);

  const empty = configDir({});
  const noRules = run(['--config-dir', empty], `${HUNG}\n`);
  t.equal(noRules.status, 2);
  t.equal(
    noRules.stderr,
    `node-health-agent: source kernel (plain text goes there unless --source names another): no enabled source with enabled rules of that name in ${empty} (no *.ini files) (sources with rules: none)\n`,
  );
});

t.test('bad input: exit 2 with one line naming the input and its line', async (t) => {
  const missing = run(['--config-dir', etc, '/nonexistent/kern.log']);
  t.equal(missing.status, 2);
  t.equal(missing.stderr, "node-health-agent: /nonexistent/kern.log: cannot read the input: ENOENT: no such file or directory, open '/nonexistent/kern.log'\n");

  const entry = exportEntry({ realtimeUs: 1_780_000_000_000_000, fields: { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', MESSAGE: Buffer.from(`a\n${HUNG}`) } });
  const cut = Buffer.from(entry).subarray(0, entry.length - 10);
  const file = join(mkdtempSync(join(tmpdir(), 'nha-rules-')), 'cut.export');
  writeFileSync(file, cut);
  const res = run(['--config-dir', etc, file]);
  t.equal(res.status, 2);
  // The stream lost its last 10 bytes: 8 of the data, the newline after it and the empty line.
  t.equal(res.stderr, `node-health-agent: ${file}:6: binary field MESSAGE: declares ${HUNG.length + 2} bytes of data, but only ${HUNG.length + 2 - 8} follow\n`);

  const garbage = run(['--config-dir', etc], `__REALTIME_TIMESTAMP=1780000000000000\n_TRANSPORT=kernel\nSYSLOG_FACILITY=0\nMESSAGE=${HUNG}\n\nthis is not a field\n`);
  t.equal(garbage.status, 2);
  t.match(garbage.stderr, /^node-health-agent: stdin:6: expected a journal field \(NAME=value, or NAME and a binary value\) but got "this is not a field"/);
  t.match(garbage.stdout, /^1 \[kernel\]: INFO: task docker/, 'the entries before the mistake were reported');

  const stamp = run(['--config-dir', etc], `__REALTIME_TIMESTAMP=yesterday\nMESSAGE=${HUNG}\n\n`);
  t.equal(stamp.status, 2);
  t.equal(stamp.stderr, 'node-health-agent: stdin:1: __REALTIME_TIMESTAMP "yesterday" is not a time in microseconds since the epoch\n');

  // A log whose first line looks like a journal field: the message says why it was read as export input.
  const looksLike = run(['--config-dir', etc], `ENV=prod starting\n${HUNG}\n`);
  t.equal(looksLike.status, 2);
  t.match(looksLike.stderr, /^node-health-agent: stdin:2: expected a journal field .* \(input whose first line is NAME=value is read as journalctl -o export output\)\n$/);
});

t.test('a reader that stops early (rules test … | head) ends the output quietly, exit 0', async (t) => {
  // Many lines, so the output outlives the pipe's buffer and the writes after head exits fail with EPIPE.
  const res = spawnSync('bash', ['-c', 'node "$0" rules test --config-dir "$1" - | head -n 1 >/dev/null; exit "${PIPESTATUS[0]}"', bin, etc], {
    input: `${OOM}\n${HUNG}\n`.repeat(20_000),
    encoding: 'utf8',
    env: { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env.PATH ?? ''}` },
  });
  t.equal(res.stderr, '', 'no error');
  t.equal(res.status, 0, 'exit 0');
});
