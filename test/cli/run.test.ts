// The daemon as systemd runs it, outside systemd: status socket, reload, single instance, clean stop.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { bin, daemonConfig, startDaemon, waitFor } from '../helpers/daemon';
import { configDir } from '../helpers/tmp';

t.test('status shows live checks, uptime and config generation', async (t) => {
  const d = await startDaemon(t);
  type Result = { component: string; check: string; status: string };
  const s = await waitFor('first disk check', () => {
    const st = d.status();
    return (st.checks as Result[]).some((c) => c.check === 'disk') && st;
  });
  t.equal(s.config.generation, 1);
  t.equal(s.pid, d.child.pid);
  const disk = (s.checks as Result[]).find((c) => c.check === 'disk');
  t.match(disk, { component: 'host', check: 'disk', status: /ok|warning|problem/ });

  const human = spawnSync(process.execPath, [bin, 'status', '--socket', d.socket], { encoding: 'utf8' });
  t.equal(human.status, 0);
  t.match(human.stdout, /node-health-agent \S+, pid \d+, up /);
  t.match(human.stdout, /config generation 1/);
  t.match(human.stdout, /host\/disk\s+\//);
});

t.test('SIGHUP applies a valid config and rejects an invalid one, keeping the old', async (t) => {
  const d = await startDaemon(t);
  writeFileSync(join(d.configDir, '20-more.ini'), '[disk]\ninterval = 5s\n', { mode: 0o644 });
  d.child.kill('SIGHUP');
  await waitFor('generation 2', () => d.status().config.generation === 2);

  writeFileSync(join(d.configDir, '30-bad.ini'), '[disk]\n\ninterval = fast\n', { mode: 0o644 });
  d.child.kill('SIGHUP');
  const s = await waitFor('rejected reload', () => {
    const st = d.status();
    return st.config.lastReload?.ok === false && st;
  });
  t.equal(s.config.generation, 2, 'the old config stays in force');
  t.match(s.config.lastReload?.error, `${join(d.configDir, '30-bad.ini')}:3: [disk] interval: "fast" is not a duration`);
  await waitFor('the rejection in the log', () => /reload rejected, keeping generation 2: .*30-bad\.ini:3: \[disk\] interval/.test(d.stderr()));
  t.equal(d.child.exitCode, null, 'still running');
  // `status` finds the socket through the same config directory, bad file and all, and shows the rejection.
  const human = spawnSync(process.execPath, [bin, 'status', '--config-dir', d.configDir], { encoding: 'utf8' });
  t.equal(human.status, 0, `status answers with the rejected file in place: ${human.stderr}`);
  t.match(human.stdout, /config generation 2 .*; last reload \S+ rejected: .*30-bad\.ini:3: \[disk\] interval/);
});

t.test('a second instance is refused while the first runs; SIGTERM stops cleanly', async (t) => {
  const d = await startDaemon(t);
  const second = spawnSync(process.execPath, [bin, 'run', '--config-dir', d.configDir], { encoding: 'utf8', timeout: 10_000 });
  t.equal(second.status, 2);
  t.match(second.stderr, /^node-health-agent: another node-health-agent is already running \(it answers on .*agent\.sock\); stop it first/);
  t.equal(second.stderr.trim().split('\n').length, 1, 'one line, no stack trace');

  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0);
  t.notOk(existsSync(d.socket), 'the socket is removed');
  const after = spawnSync(process.execPath, [bin, 'status', '--socket', d.socket], { encoding: 'utf8' });
  t.equal(after.status, 2);
  t.match(after.stderr, /cannot reach the node-health-agent daemon on .*: ENOENT \(is it running\?/);
});

t.test('a stale socket left by a crash is replaced', async (t) => {
  const first = await startDaemon(t);
  first.child.kill('SIGKILL');
  await first.exited;
  t.ok(existsSync(first.socket), 'a killed daemon leaves its socket behind');
  const second = await startDaemon(t, { configDir: first.configDir, dir: first.dir });
  t.equal(second.status().pid, second.child.pid);
});

t.test('bad input to run: one-line errors and exit 2', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['unwritable state dir', configDir({ 'a.ini': '[agent]\nstate_dir = /proc/node-health\n' }), /^node-health-agent: \/proc\/node-health: state directory is not writable \(.*\); fix it or set \[agent\] state_dir\n$/],
    ['unknown key', configDir({ 'a.ini': '[agent]\nloglevel = debug\n' }), /a\.ini:2: unknown key "loglevel" in \[agent\]; did you mean "log_level"\?\n$/],
  ];
  const insecure = daemonConfig();
  chmodSync(join(insecure.configDir, '10-paths.ini'), 0o664);
  cases.push(['group-writable file', insecure.configDir, /10-paths\.ini: mode 664 lets group or others write it; refusing it/]);
  cases.push(['missing directory', '/nonexistent/node-health', /^node-health-agent: \/nonexistent\/node-health: cannot open config directory: ENOENT/]);
  for (const [what, dir, expected] of cases) {
    const res = spawnSync(process.execPath, [bin, 'run', '--config-dir', dir], { encoding: 'utf8', timeout: 10_000 });
    t.equal(res.status, 2, `${what}: exit 2`);
    t.match(res.stderr, expected, what);
  }
});
