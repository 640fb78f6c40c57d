// One plan, applied whole: `config check`, `run` and reload judge a config the same way; a start that fails
// late stops all it started and exits 2; a reload is applied whole or not at all.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { bin, daemonConfig, startDaemon, waitFor } from '../helpers/daemon';

const quiet = '[metrics]\nenabled = false\n[kubernetes]\nenabled = false\n';

/** Runs `run` to its end (or kills it after `ms`): exit code, stderr, how long it took. */
function runToEnd(configDir: string, ms = 15_000, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [bin, 'run', '--config-dir', configDir], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, ms: Date.now() - started });
    }),
  );
}

t.test('a bad [remediate] section: config check refuses it and run exits 2 with the one-line reason', async (t) => {
  const { configDir } = daemonConfig(quiet);
  writeFileSync(join(configDir, '20-ladder.ini'), '[remediate "Kernel Deadlock"]\nsteps = cordon\n', { mode: 0o644 });
  const check = spawnSync(process.execPath, [bin, 'config', 'check', '--dir', configDir], { encoding: 'utf8' });
  t.equal(check.status, 2, 'config check fails');
  t.match(check.stderr, /^node-health-agent: \[remediate "Kernel Deadlock"\]: .*name the section after the condition type/);
  const run = await runToEnd(configDir);
  t.equal(run.code, 2, `run exits 2 (after ${run.ms} ms)`);
  const lines = run.stderr.trim().split('\n');
  t.match(lines[lines.length - 1], /^node-health-agent: \[remediate "Kernel Deadlock"\]: /);
});

/** A bus of its own (dbus-daemon), standing in for the system bus: a live connection keeps a process up. */
async function privateBus(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const bus = spawn('dbus-daemon', ['--session', '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => bus.kill());
  return new Promise((resolve, reject) => {
    bus.on('error', (err) => reject(new Error(`dbus-daemon: ${err.message}; scripts/setup.sh installs dbus`)));
    bus.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
  });
}

t.test('a start that fails late stops everything it started (D-Bus, journal, scheduler) and exits 2', async (t) => {
  // The ladder's ledger is opened last; a directory in its place cannot be read.
  const { configDir, dir } = daemonConfig(`${quiet}[journal]\nenabled = true\n[source "kernel"]\nmatches = _TRANSPORT=kernel\n`);
  mkdirSync(join(dir, 'state', 'ladder-ledger.jsonl'), { recursive: true });
  const run = await runToEnd(configDir, 15_000, { DBUS_SYSTEM_BUS_ADDRESS: await privateBus(t) });
  t.equal(run.code, 2, `exits 2 instead of staying up half-started (after ${run.ms} ms)`);
  t.ok(run.ms < 10_000, 'at once');
  const lines = run.stderr.trim().split('\n');
  t.match(lines[lines.length - 1], /^node-health-agent: \S*ladder-ledger\.jsonl: cannot read the ladder ledger \(EISDIR.*\); fix its permissions or remove it$/);
});

t.test('a reload that moves a condition type to another owner is applied whole; the sources keep running', async (t) => {
  const journal = '[journal]\nenabled = true\n[source "kernel"]\nmatches = _TRANSPORT=kernel\n[rule "Oops"]\nsource = kernel\nreason = Oops\npattern = oops\n';
  const owned = (owner: string): string =>
    owner === 'probe'
      ? `${quiet}${journal}[disk]\ncondition = DiskTrouble\n`
      : `${quiet}${journal}[condition "DiskTrouble"]\nreason = DiskIsFine\nmessage = fine\n[rule "DiskTrouble"]\nsource = kernel\nkind = permanent\ncondition = DiskTrouble\nreason = DiskBroke\npattern = disk broke\n`;
  const made = daemonConfig();
  writeFileSync(join(made.configDir, '20-test.ini'), owned('probe'), { mode: 0o644 });
  const d = await startDaemon(t, made);
  await waitFor('the journal source running', () => (d.status().journal as unknown[]).length === 1);
  const hasDiskTrouble = (conditions: unknown): boolean => (conditions as Array<{ type: string }>).some((c) => c.type === 'DiskTrouble');
  t.ok(hasDiskTrouble(d.status().conditions), 'the probe reports DiskTrouble');

  writeFileSync(join(made.configDir, '20-test.ini'), owned('journal'), { mode: 0o644 });
  d.child.kill('SIGHUP');
  const s = await waitFor('the reload', () => {
    const st = d.status();
    return st.config.lastReload !== null && st;
  });
  t.same(s.config.lastReload?.error, undefined, 'no error');
  t.equal(s.config.lastReload?.ok, true, 'applied');
  t.equal(s.config.generation, 2);
  t.match(s.journal, [{ source: 'kernel' }], 'the journal reads on');
  t.ok(hasDiskTrouble(s.conditions), 'the condition is still reported');
  await waitFor('the move in the log', () => /condition DiskTrouble is now reported by journal settings/.test(d.stderr()));

  // A reload that is refused changes nothing: the journal stays up, the generation stays.
  writeFileSync(join(made.configDir, '30-bad.ini'), '[remediate "Kernel Deadlock"]\nsteps = cordon\n', { mode: 0o644 });
  d.child.kill('SIGHUP');
  const bad = await waitFor('the rejection', () => {
    const st = d.status();
    return st.config.lastReload?.ok === false && st;
  });
  t.equal(bad.config.generation, 2);
  t.match(bad.config.lastReload?.error, /\[remediate "Kernel Deadlock"\]/, 'a bad [remediate] section is refused at reload too');
  t.match(bad.journal, [{ source: 'kernel' }]);
});

t.test('a start that fails before the saved conditions were restored leaves them as they were', async (t) => {
  const { configDir, dir } = daemonConfig(quiet);
  const state = join(dir, 'state');
  mkdirSync(join(state, 'repair-ledger.jsonl'), { recursive: true });
  const saved = JSON.stringify({ bootId: 'b', conditions: [{ type: 'KubeletUnhealthy', status: 'True', reason: 'KubeletUnreachable', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z' }], reports: [] });
  writeFileSync(join(state, 'conditions.json'), saved);
  const run = await runToEnd(configDir);
  t.equal(run.code, 2);
  t.match(run.stderr, /repair-ledger\.jsonl: cannot read the repair ledger/);
  t.equal(readFileSync(join(state, 'conditions.json'), 'utf8'), saved, 'not overwritten with defaults');
});
