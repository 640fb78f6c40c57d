// The plugin monitor with real plugin scripts feeding a real condition table: conditions set and
// cleared, events per run, one run for rules naming the same script, the concurrency limit, jittered
// starts, a plugin stuck in state D that blocks nothing, stop, diagnose and NPD's shipped configs.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../../src/sections';
import { ConditionTable } from '../../../src/engine/conditions';
import { runCheck } from '../../../src/engine/run-check';
import { PluginMonitor, type PluginMonitorOptions } from '../../../src/sources/plugins/monitor';
import type { EventReport } from '../../../src/types';
import { configDir } from '../../helpers/tmp';
import { wallClock } from '../../helpers/wall-clock';
import { alive, inGroup, npdModuleDir, pluginDir, recordingLogger, sleep, waitFor, type Teardown } from './support';

interface Rig {
  monitor: PluginMonitor;
  table: ConditionTable;
  events: EventReport[];
  reports: string[];
  log: string[];
}

function rig(t: Teardown, ini: string, options: PluginMonitorOptions = {}): Rig {
  const table = new ConditionTable();
  const events: EventReport[] = [];
  const reports: string[] = [];
  const log = recordingLogger();
  const monitor = PluginMonitor.create(loadAgentConfig(configDir({ 'a.ini': ini })), log, {
    condition: (r) => {
      reports.push(`${r.source} ${r.type}=${r.status}`);
      table.report(r);
    },
    event: (e) => events.push(e),
  }, options);
  for (const d of monitor.declarations()) table.declare(d);
  t.teardown(() => monitor.stop());
  return { monitor, table, events, reports, log: log.lines };
}

function npdFile(dir: string, name: string, doc: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(doc, null, 2), { mode: 0o644 });
  return file;
}

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter((l) => l !== '') : []);

t.test('an NPD config sets and clears its condition; its two rules on one script share each run', async (t) => {
  const dir = pluginDir(t);
  const state = join(dir, 'state');
  writeFileSync(state, '1\nntp is down\n');
  const file = npdFile(dir, 'ntp.json', {
    plugin: 'custom',
    pluginConfig: { invoke_interval: '300ms', timeout: '2s', max_output_length: 80, concurrency: 3 },
    source: 'ntp-custom-plugin-monitor',
    conditions: [{ type: 'NTPProblem', reason: 'NTPIsUp', message: 'ntp service is up' }],
    rules: [
      { type: 'temporary', reason: 'NTPIsDown', path: './from-file.sh', args: [state], timeout: '1s' },
      { type: 'permanent', condition: 'NTPProblem', reason: 'NTPIsDown', path: './from-file.sh', args: [state], timeout: '1s' },
    ],
  });
  const { monitor, table, events, reports } = rig(t, `[plugins]\nnpd_configs = ${file}\nnpd_root = ${dir}\n`, { maxFirstDelayMs: 50 });
  t.same(monitor.declarations(), [{ type: 'NTPProblem', owner: 'plugins', reason: 'NTPIsUp', message: 'ntp service is up' }]);

  monitor.start();
  t.same(reports, ['plugin/ntp/rules[1] NTPProblem=False'], 'the initial status is reported at once, as NPD does');
  await waitFor('the condition to be set', () => table.get('NTPProblem')?.status === 'True');
  t.match(table.get('NTPProblem'), { status: 'True', reason: 'NTPIsDown', message: 'ntp is down' });
  t.match(events[0], { source: 'plugin/ntp/rules[0]', severity: 'Warning', reason: 'NTPIsDown', message: 'ntp is down' });

  writeFileSync(state, '0\nall fine\n');
  await waitFor('the condition to clear', () => table.get('NTPProblem')?.status === 'False');
  t.match(table.get('NTPProblem'), { reason: 'NTPIsUp', message: 'ntp service is up' }, 'True→False restores the default reason and message');
  const problemEvents = events.length;
  await sleep(700);
  t.equal(events.length, problemEvents, 'no events while the plugin exits 0');
  await monitor.stop();

  const [status] = monitor.status();
  t.match(status, { plugin: 'ntp/from-file.sh', group: file, rules: ['rules[0] NTPIsDown', 'rules[1] NTPIsDown'], lastExit: 'exit 0', lastOutput: 'all fine', timeouts: 0, running: false });
  t.equal(lines(`${state}.runs`).length, status?.runs, `${status?.runs} runs of the script served both rules (not twice as many)`);
  t.ok((status?.runs ?? 0) >= 4);
});

t.test('skip_initial_status: nothing is reported before the first run', async (t) => {
  const dir = pluginDir(t);
  const { monitor, reports } = rig(
    t,
    `[plugins]\nskip_initial_status = true\n\n[plugin "p"]\npath = ${dir}/say.sh\nargs = ["1", "bad"]\ncondition = C\nreason = Bad\nok_reason = Good\nok_message = fine\n`,
    { maxFirstDelayMs: 200, random: () => 1 },
  );
  monitor.start();
  t.same(reports, []);
  await waitFor('the first run', () => reports.length > 0);
  t.same(reports[0], 'plugin/p C=True');
});

t.test('message_change_updates: a True condition takes the new output', async (t) => {
  const dir = pluginDir(t);
  const state = join(dir, 'state');
  writeFileSync(state, '1\noffset 2s\n');
  const { monitor, table } = rig(
    t,
    `[plugins]\nmessage_change_updates = true\n\n[plugin "p"]\npath = ${dir}/from-file.sh\nargs = ["${state}"]\ninterval = 1s\n` +
      'condition = TimeSkew\nreason = ClockOff\nok_reason = ClockOK\nok_message = in sync\n',
    { maxFirstDelayMs: 10 },
  );
  monitor.start();
  await waitFor('set', () => table.get('TimeSkew')?.message === 'offset 2s');
  writeFileSync(state, '1\noffset 5s\n');
  await waitFor('the new message', () => table.get('TimeSkew')?.message === 'offset 5s');
  t.match(table.get('TimeSkew'), { status: 'True', reason: 'ClockOff' });
});

t.test('a wall clock stepped back an hour: the plugin\'s rule still takes every run', async (t) => {
  const clock = wallClock(t);
  const dir = pluginDir(t);
  const state = join(dir, 'state');
  writeFileSync(state, '1\nbroken\n');
  const { monitor, table } = rig(
    t,
    `[plugin "p"]\npath = ${dir}/from-file.sh\nargs = ["${state}"]\ninterval = 1s\n` + 'condition = Broken\nreason = IsBroken\nok_reason = Fine\nok_message = fine\n',
    { maxFirstDelayMs: 10 },
  );
  monitor.start();
  await waitFor('set', () => table.get('Broken')?.status === 'True');
  clock.step(-3_600_000);
  writeFileSync(state, '0\nfine\n');
  const stepped = performance.now();
  await waitFor('cleared by the next runs', () => table.get('Broken')?.status === 'False');
  t.ok(performance.now() - stepped < 5000, 'cleared within a few runs, not an hour later');
});

t.test('at most `concurrency` plugins of a group run at once', async (t) => {
  const dir = pluginDir(t);
  const log = join(dir, 'slow.log');
  const plugins = [1, 2, 3, 4, 5]
    .map((n) => `[plugin "slow${n}"]\npath = ${dir}/slow.sh\nargs = ["${log}", "0.3", "${n}"]\nkind = temporary\nreason = Slow\n`)
    .join('\n');
  const { monitor } = rig(t, `[plugins]\nconcurrency = 2\n\n${plugins}`);
  const results = (await Promise.all(monitor.checks().map((c) => runCheck(c)))).flat();
  t.same(results.map((r) => r.status), ['ok', 'ok', 'ok', 'ok', 'ok']);
  let running = 0;
  let most = 0;
  const marks = lines(log).map((l) => l.split(' ')).map(([what, , at]) => ({ what, at: Number(at) }));
  // Ends before starts at the same millisecond: a slot handed over is not an overlap.
  marks.sort((a, b) => a.at - b.at || (a.what === 'end' ? -1 : 1));
  for (const m of marks) {
    running += m.what === 'start' ? 1 : -1;
    most = Math.max(most, running);
  }
  t.equal(marks.length, 10);
  t.equal(most, 2, 'never more than 2 at once');
});

t.test('first runs are spread by jitter, not fired together', async (t) => {
  const dir = pluginDir(t);
  const plugins = ['a', 'b', 'c']
    .map((n) => `[plugin "${n}"]\npath = ${dir}/from-file.sh\nargs = ["${dir}/${n}"]\ninterval = 10s\nkind = temporary\nreason = R\n`)
    .join('\n');
  for (const n of ['a', 'b', 'c']) writeFileSync(join(dir, n), '0\n');
  const randoms = [0, 0.5, 0.9];
  const { monitor } = rig(t, plugins, { random: () => randoms.shift() ?? 0.5, maxFirstDelayMs: 1000 });
  const started = Date.now();
  monitor.start();
  await waitFor('all three to run', () => ['a', 'b', 'c'].every((n) => lines(join(dir, `${n}.runs`)).length === 1));
  const at = ['a', 'b', 'c'].map((n) => Number((lines(join(dir, `${n}.runs`))[0] as string).split(' ')[1]) - started);
  t.ok((at[0] as number) < 400, `a at ${at[0]} ms`);
  t.ok((at[1] as number) >= 450 && (at[1] as number) < 900, `b at ${at[1]} ms (delay 500 ms)`);
  t.ok((at[2] as number) >= 850 && (at[2] as number) < 1600, `c at ${at[2]} ms (delay 900 ms)`);
});

t.test('a timed-out plugin is Unknown, counted, and leaves nothing behind', async (t) => {
  const dir = pluginDir(t);
  const { monitor, table } = rig(
    t,
    `[plugin "hang"]\npath = ${dir}/hang.sh\nargs = ["${dir}/pids"]\ntimeout = 300ms\ncondition = Hung\nreason = PluginHung\nok_reason = NotHung\nok_message = fine\n`,
    { maxFirstDelayMs: 10 },
  );
  monitor.start();
  await waitFor('Unknown', () => table.get('Hung')?.status === 'Unknown');
  t.match(table.get('Hung'), { reason: 'NotHung', message: 'timed out after 300ms, killed; output: hanging' });
  t.match(monitor.status()[0], { timeouts: 1, lastExit: 'signal SIGKILL', lastStatus: 'unknown', running: false });
  const [leader] = readFileSync(join(dir, 'pids'), 'utf8').split(' ').map(Number) as [number];
  await waitFor('the group to be gone', () => inGroup(leader).length === 0);
});

t.test('a plugin stuck in state D holds no slot: the others of its group keep running; it is not started twice', async (t) => {
  const freezer = '/sys/fs/cgroup/freezer';
  t.ok(existsSync(`${freezer}/cgroup.procs`), `${freezer} (cgroup v1 freezer) is needed to put a plugin in state D`);
  const dir = pluginDir(t);
  const cg = join(freezer, `nha-monitor-test-${process.pid}`);
  mkdirSync(cg);
  const marker = join(dir, 'thawed');
  t.teardown(() => {
    writeFileSync(marker, '');
    writeFileSync(join(cg, 'freezer.state'), 'THAWED');
    rmdirSync(cg);
  });
  const okState = join(dir, 'ok');
  writeFileSync(okState, '0\nfine\n');
  const file = npdFile(dir, 'stuck.json', {
    plugin: 'custom',
    pluginConfig: { invoke_interval: '200ms', timeout: '300ms', concurrency: 1 },
    conditions: [{ type: 'Frozen', reason: 'NotFrozen', message: 'fine' }],
    rules: [
      { type: 'permanent', condition: 'Frozen', reason: 'PluginFrozen', path: `${dir}/freeze.sh`, args: [cg, marker] },
      { type: 'temporary', reason: 'Other', path: `${dir}/from-file.sh`, args: [okState] },
    ],
  });
  const { monitor, table, log } = rig(t, `[plugins]\nnpd_configs = ${file}\nkill_grace = 200ms\n`, { maxFirstDelayMs: 10 });
  monitor.start();
  await waitFor('the frozen plugin to be given up on', () => monitor.status()[0]?.lastExit === 'still running');
  const stuckPid = monitor.status()[0]?.pid as number;
  t.equal(alive(stuckPid)?.state, 'D');
  const before = lines(`${okState}.runs`).length;
  await sleep(1500);
  const after = lines(`${okState}.runs`).length;
  t.ok(after - before >= 4, `the other plugin ran ${after - before} times in 1.5 s with concurrency 1`);
  t.same(readFileSync(join(cg, 'cgroup.procs'), 'utf8').trim(), String(stuckPid), 'the stuck plugin was not started again');
  t.match(monitor.status()[0], { running: true, pid: stuckPid, lastStatus: 'unknown' });
  t.match(table.get('Frozen'), { status: 'Unknown', message: /still alive 200ms after SIGKILL|not started again until/ });
  t.ok(log.some((l) => l.startsWith(`warning: plugin stuck/freeze.sh: still running:`)), 'logged once it turned bad');

  writeFileSync(marker, '');
  writeFileSync(join(cg, 'freezer.state'), 'THAWED');
  await waitFor('the stuck process to be reaped', () => alive(stuckPid) === undefined);
  await waitFor('the plugin to run again', () => table.get('Frozen')?.status === 'False');
  t.ok(log.includes(`info: plugin stuck/freeze.sh: pid ${stuckPid} has exited at last and was reaped`));
});

t.test('stop kills running plugins and waits for them; nothing is reported afterwards', async (t) => {
  const dir = pluginDir(t);
  const { monitor, reports, events } = rig(t, `[plugin "hang"]\npath = ${dir}/hang.sh\nargs = ["${dir}/pids"]\ntimeout = 30s\nkind = temporary\nreason = R\n`, {
    maxFirstDelayMs: 10,
  });
  monitor.start();
  await waitFor('the plugin to start', () => existsSync(join(dir, 'pids')) && monitor.status()[0]?.running === true);
  const [leader] = readFileSync(join(dir, 'pids'), 'utf8').split(' ').map(Number) as [number];
  const started = Date.now();
  await monitor.stop();
  t.ok(Date.now() - started < 1000, `stopped in ${Date.now() - started} ms`);
  t.equal(alive(leader), undefined, 'reaped');
  await waitFor('the group to be gone', () => inGroup(leader).length === 0);
  t.same([reports, events], [[], []]);
  t.same(await monitor.checks()[0]?.run(), [{ status: 'unknown', reason: 'PluginStopped', message: 'the agent is stopping', subject: 'hang' }]);
});

t.test('diagnose: each plugin once, each rule judged; per-rule timeouts read a shared run', async (t) => {
  const dir = pluginDir(t);
  const file = npdFile(dir, 'mixed.json', {
    plugin: 'custom',
    pluginConfig: { timeout: '2s' },
    conditions: [{ type: 'Slow', reason: 'NotSlow', message: 'fast enough' }],
    rules: [
      { type: 'permanent', condition: 'Slow', reason: 'TooSlow', path: './slow.sh', args: [`${dir}/log`, '0.5'], timeout: '200ms' },
      { type: 'temporary', reason: 'SlowEvent', path: './slow.sh', args: [`${dir}/log`, '0.5'], timeout: '2s' },
      { type: 'temporary', reason: 'Broken', path: './say.sh', args: ['1', 'broken'] },
      { type: 'temporary', reason: 'Odd', path: './say.sh', args: ['7', ''] },
    ],
  });
  const { monitor, reports } = rig(t, `[plugins]\nnpd_configs = ${file}\nnpd_root = ${dir}\n`);
  const checks = monitor.checks();
  t.same(checks.map((c) => `${c.component}/${c.name}`), ['plugins/mixed/slow.sh', 'plugins/mixed/say.sh', 'plugins/mixed/say.sh#2']);
  const results = (await Promise.all(checks.map((c) => runCheck(c)))).flat();
  t.match(
    results.map((r) => [r.check, r.subject, r.status, r.reason, r.message]),
    [
      ['mixed/slow.sh', 'rules[0] TooSlow', 'unknown', 'PluginUnknown', "timed out after 200ms (this rule's timeout)"],
      ['mixed/slow.sh', 'rules[1] SlowEvent', 'ok', 'PluginOK', 'slept 0.5'],
      ['mixed/say.sh', 'rules[2] Broken', 'warning', 'Broken', 'broken'],
      ['mixed/say.sh#2', 'rules[3] Odd', 'unknown', 'PluginUnknown', 'exit 7: neither 0 (OK) nor 1 (problem)'],
    ],
  );
  t.equal(lines(join(dir, 'log')).length, 2, 'slow.sh ran once for both of its rules');
  t.same(reports, [], 'diagnose reports nothing to the engine');
});

t.test("NPD's shipped configs run as they are: a missing or non-executable plugin is reported clearly", async (t) => {
  const root = npdModuleDir();
  const configs = ['custom-plugin-monitor.json', 'health-checker-kubelet.json', 'systemd-monitor-counter.json'].map((f) => join(root, 'config', f));
  const { monitor } = rig(t, `[plugins]\nnpd_configs = ${configs.join(', ')}\nnpd_root = ${root}\n`);
  t.same(
    monitor.declarations().map((d) => d.type),
    ['NTPProblem', 'KubeletUnhealthy', 'FrequentKubeletRestart', 'FrequentDockerRestart', 'FrequentContainerdRestart'],
  );
  t.same(
    monitor.checks().map((c) => c.name),
    [
      'custom-plugin-monitor/check_ntp.sh',
      'health-checker-kubelet/health-checker',
      'systemd-monitor-counter/log-counter',
      'systemd-monitor-counter/log-counter#2',
      'systemd-monitor-counter/log-counter#3',
    ],
    'the two rules on check_ntp.sh share a run; log-counter with three sets of arguments runs three times',
  );
  const results = (await Promise.all(monitor.checks().map((c) => runCheck(c)))).flat();
  const ntp = join(root, 'config/plugin/check_ntp.sh');
  t.match(results[0], { status: 'unknown', reason: 'PluginUnknown', message: `plugin ${ntp} is not executable (mode 444; chmod 755 ${ntp})`.slice(0, 80) });
  t.match(results[2], { status: 'unknown', message: 'plugin /home/kubernetes/bin/health-checker not found; install it or fix the path' });
});
