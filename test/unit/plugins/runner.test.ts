// One plugin run against real scripts: the exit-code protocol, output capping, timeouts that kill the
// whole process group and leave no zombie, leftovers, escaped descendants, and a plugin stuck in
// uninterruptible sleep (a frozen cgroup v1 freezer group: state D, SIGKILL pending until thawed).
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cut, runPlugin, type RunSpec } from '../../../src/sources/plugins/runner';
import { alive, inGroup, pluginDir, waitFor } from './support';

const spec = (dir: string, script: string, args: string[], extra: Partial<RunSpec> = {}): RunSpec => ({
  path: join(dir, script),
  args,
  cwd: '/',
  timeoutMs: 5000,
  killGraceMs: 1000,
  maxOutputLength: 80,
  ...extra,
});

t.test('exit 0 is ok, 1 a problem, anything else unknown; stdout is trimmed and cut to max_output_length bytes', async (t) => {
  const dir = pluginDir(t);
  const ok = await runPlugin(spec(dir, 'say.sh', ['0', '  all good  ']));
  t.match(ok, { status: 'ok', output: 'all good', exit: 'exit 0', timedOut: false });
  t.ok(ok.durationMs > 0 && ok.pid !== undefined);
  t.match(await runPlugin(spec(dir, 'say.sh', ['1', 'ntp is down'])), { status: 'problem', output: 'ntp is down', exit: 'exit 1' });
  t.match(await runPlugin(spec(dir, 'say.sh', ['3', 'weird'])), { status: 'unknown', output: 'weird', exit: 'exit 3' });
  const long = await runPlugin(spec(dir, 'say.sh', ['1', `${'a'.repeat(100)}`], { maxOutputLength: 80 }));
  t.equal(long.output, 'a'.repeat(80), 'cut to 80 bytes');
  const wide = await runPlugin(spec(dir, 'say.sh', ['1', 'ééé'], { maxOutputLength: 5 }));
  t.equal(wide.output, 'éé', 'a character split by the limit is left out');
  t.equal(cut('abc', 0), '');
});

t.test('output beyond 4 KiB is read and dropped: a plugin writing 1 MiB to stdout and stderr finishes', async (t) => {
  const dir = pluginDir(t);
  const loud = await runPlugin(spec(dir, 'loud.sh', ['1024'], { maxOutputLength: 10_000 }));
  t.equal(loud.status, 'problem');
  t.equal(loud.output, 'x'.repeat(4096), 'stdout capped at 4 KiB before trimming and cutting');
  t.equal(loud.stderr, 'e'.repeat(4096), 'stderr capped at 4 KiB');
  t.ok(loud.durationMs < 5000, `done in ${loud.durationMs} ms`);
});

t.test('a timeout kills the whole process group: leader and child gone, no zombie left', async (t) => {
  const dir = pluginDir(t);
  const pids = join(dir, 'hang.pids');
  const started = Date.now();
  const out = await runPlugin(spec(dir, 'hang.sh', [pids], { timeoutMs: 500 }));
  const took = Date.now() - started;
  t.match(out, { status: 'unknown', timedOut: true, exit: 'signal SIGKILL' });
  t.equal(out.output, 'timed out after 500ms, killed; output: hanging', 'NPD-style: timeout is Unknown and keeps the output');
  t.ok(took >= 500 && took < 1500, `killed on time (${took} ms for a 500 ms timeout)`);
  const [leader, child] = readFileSync(pids, 'utf8').trim().split(' ').map(Number) as [number, number];
  t.equal(leader, out.pid, 'the leader is the plugin itself');
  t.equal(alive(leader), undefined, 'the plugin was reaped (no zombie)');
  // The child is reparented to PID 1 (or a subreaper) when its group dies; that one reaps it.
  await waitFor('the child to be gone', () => alive(child) === undefined);
  t.same(inGroup(leader), [], 'nothing is left in the process group, zombies included');
});

t.test('what a plugin leaves in its group after exiting is killed too', async (t) => {
  const dir = pluginDir(t);
  const pidFile = join(dir, 'leftover.pid');
  const out = await runPlugin(spec(dir, 'leftover.sh', [pidFile]));
  t.match(out, { status: 'ok', output: 'left a child' });
  const child = Number(readFileSync(pidFile, 'utf8'));
  await waitFor('the leftover child to be gone', () => alive(child) === undefined);
  t.same(inGroup(out.pid as number), []);
});

t.test('a descendant that left the group and holds stdout open does not hold the result', async (t) => {
  const dir = pluginDir(t);
  const pidFile = join(dir, 'escape.pid');
  const out = await runPlugin(spec(dir, 'escape.sh', [pidFile]));
  const escaped = Number(readFileSync(pidFile, 'utf8'));
  t.teardown(() => {
    if (alive(escaped)) process.kill(escaped, 'SIGKILL');
  });
  t.match(out, { status: 'ok', output: 'escaped' });
  t.ok(out.durationMs < 1000, `result after ${out.durationMs} ms though the pipe stays open`);
  t.ok(alive(escaped), 'the escaped process is outside the group, so it was not killed');
});

t.test('missing, non-executable and insecure plugins are not started and say why', async (t) => {
  const dir = pluginDir(t);
  t.match(await runPlugin(spec(dir, 'nope.sh', [])), {
    status: 'unknown',
    exit: 'not started',
    output: `plugin ${join(dir, 'nope.sh')} not found; install it or fix the path`,
  });
  const plain = join(dir, 'plain.sh');
  writeFileSync(plain, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
  t.match(await runPlugin(spec(dir, 'plain.sh', [], { maxOutputLength: 200 })), {
    status: 'unknown',
    output: `plugin ${plain} is not executable (mode 644; chmod 755 ${plain})`,
  });
  const writable = join(dir, 'writable.sh');
  writeFileSync(writable, '#!/bin/sh\nexit 0\n');
  chmodSync(writable, 0o777);
  t.match(await runPlugin(spec(dir, 'writable.sh', [], { maxOutputLength: 200 })), {
    status: 'unknown',
    output: `plugin ${writable}: mode 777 lets group or others write it; refusing it (chmod go-w ${writable})`,
  });
  t.match(await runPlugin(spec(dir, 'say.sh', ['0', 'nul\u0000byte'], { maxOutputLength: 200 })), {
    status: 'unknown',
    exit: 'not started',
    output: new RegExp(`^cannot start plugin ${dir}/say\\.sh: .*null bytes`),
  });
  const foreign = join(dir, 'foreign.sh');
  writeFileSync(foreign, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  chownSync(foreign, 1234, 0);
  t.match(await runPlugin(spec(dir, 'foreign.sh', [], { maxOutputLength: 200 })), {
    status: 'unknown',
    output: `plugin ${foreign}: owned by uid 1234, not root; refusing it (chown root ${foreign})`,
  });
});

t.test('aborting kills the group at once', async (t) => {
  const dir = pluginDir(t);
  const ac = new AbortController();
  const run = runPlugin(spec(dir, 'hang.sh', [join(dir, 'pids')], { signal: ac.signal }));
  await waitFor('the plugin to start', () => existsSync(join(dir, 'pids')));
  ac.abort();
  const out = await run;
  t.match(out, { status: 'unknown', timedOut: false, exit: 'signal SIGKILL', output: 'stopped by the agent, killed; output: hanging' });
  t.equal(alive(out.pid as number), undefined, 'the plugin was reaped');
  // Its orphaned child is reaped by PID 1.
  await waitFor('the process group to be empty', () => inGroup(out.pid as number).length === 0);
});

t.test('a plugin stuck in uninterruptible sleep is given up on after the grace and reaped once it can die', async (t) => {
  const freezer = '/sys/fs/cgroup/freezer';
  t.ok(existsSync(`${freezer}/cgroup.procs`), `${freezer} (cgroup v1 freezer) is needed to put a plugin in state D`);
  const dir = pluginDir(t);
  const cg = join(freezer, `nha-plugin-test-${process.pid}`);
  mkdirSync(cg);
  t.teardown(() => {
    writeFileSync(join(cg, 'freezer.state'), 'THAWED');
    rmdirSync(cg);
  });
  const started = Date.now();
  const out = await runPlugin(spec(dir, 'freeze.sh', [cg, join(dir, 'never')], { timeoutMs: 300, killGraceMs: 300 }));
  const took = Date.now() - started;
  t.match(out, { status: 'unknown', exit: 'still running', timedOut: true });
  t.match(out.output, /^timed out after 300ms and still alive 300ms after SIGKILL/);
  t.ok(took < 1000, `the run ended after ${took} ms, not waiting for the stuck process`);
  const pid = out.pid as number;
  t.equal(alive(pid)?.state, 'D', 'the plugin is in uninterruptible sleep');
  t.ok(out.lingering, 'a promise for its end');

  writeFileSync(join(cg, 'freezer.state'), 'THAWED');
  await out.lingering;
  t.equal(alive(pid), undefined, 'thawed, the pending SIGKILL ended it and it was reaped');
});
