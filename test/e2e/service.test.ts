// The agent as it runs on a node: the real .deb installed into a booted systemd (node in a box).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Box } from '../helpers/box';
import { until } from '../helpers/node';
import { ensurePackages } from '../helpers/packages';

const UNIT = 'node-health-agent.service';

async function show(box: Box, ...props: string[]): Promise<Record<string, string>> {
  const out = await box.check(['systemctl', 'show', UNIT, ...props.map((p) => `--property=${p}`)]);
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** The same package with a higher version, as an upgrade would bring (repacked with dpkg-deb). */
function newerDeb(deb: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-upgrade-'));
  execFileSync('dpkg-deb', ['-R', deb, join(dir, 'pkg')]);
  const control = join(dir, 'pkg/DEBIAN/control');
  const text = readFileSync(control, 'utf8');
  const version = /^Version: (.+)$/m.exec(text)?.[1] as string;
  writeFileSync(control, text.replace(/^Version: .+$/m, `Version: ${version}+upgrade1`));
  const out = join(dir, 'newer.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '-b', join(dir, 'pkg'), out], { stdio: 'ignore' });
  return out;
}

t.test('install, run, reload, watchdog, upgrade and purge on a real systemd', async (t) => {
  const { deb } = ensurePackages();
  const box = await Box.up(t, 'nha-svc');
  await box.copyIn(deb, '/var/tmp/agent.deb');

  // Install: enabled, started, READY within a bound.
  const installStarted = Date.now();
  const install = await box.exec(['dpkg', '-i', '/var/tmp/agent.deb'], { timeoutMs: 120_000 });
  t.equal(install.code, 0, `dpkg -i: ${install.stderr}`);
  const active = await until('active (running)', async () => {
    const s = await show(box, 'ActiveState', 'SubState', 'MainPID', 'UnitFileState');
    return s.ActiveState === 'active' && s.SubState === 'running' && s;
  }, 15_000);
  t.comment(`dpkg -i to READY: ${Date.now() - installStarted} ms`);
  t.equal(active.UnitFileState, 'enabled');

  // Live state over the status socket, from inside the node.
  const status = JSON.parse(await box.check(['node-health-agent', 'status', '--json'])) as {
    pid: number;
    config: { generation: number; files: string[] };
    checks: Array<{ check: string }>;
  };
  t.equal(String(status.pid), active.MainPID, 'status answers from the running daemon');
  // Every shipped ini file, as the package installs them, read in lexical order.
  const shipped = readdirSync(join(__dirname, '../../etc')).filter((f) => f.endsWith('.ini')).sort();
  t.same(status.config.files, shipped.map((f) => `/etc/node-health/${f}`));
  await until('first checks in status', async () => {
    const s = JSON.parse(await box.check(['node-health-agent', 'status', '--json'])) as { checks: unknown[] };
    return s.checks.length > 0;
  }, 10_000);

  // An invalid config on reload is rejected with file:line in the journal; the daemon keeps running.
  await box.exec(['sh', '-c', 'printf "[disk]\\n\\ninterval = soon\\n" > /etc/node-health/50-bad.ini && chmod 0644 /etc/node-health/50-bad.ini']);
  t.equal((await box.exec(['systemctl', 'reload', UNIT])).code, 0, 'systemctl reload returns once the agent is READY again');
  const rejected = await until('rejection in the journal', async () => {
    const j = await box.check(['journalctl', '-u', UNIT, '-o', 'cat', 'NODE_HEALTH_FILE=/etc/node-health/50-bad.ini']);
    return j.includes('50-bad.ini:3: [disk] interval') && j;
  }, 10_000);
  t.match(rejected, /reload rejected, keeping generation 1/);
  const after = await show(box, 'ActiveState', 'MainPID');
  t.same(after, { ActiveState: 'active', MainPID: active.MainPID }, 'same process, still active');
  await box.check(['rm', '/etc/node-health/50-bad.ini']);

  // The watchdog: a stopped agent is restarted by systemd (short timers via a drop-in for the test).
  await box.check(['mkdir', '-p', '/run/systemd/system/node-health-agent.service.d']);
  await box.check(['sh', '-c', 'printf "[Service]\\nWatchdogSec=2s\\nTimeoutAbortSec=2s\\nRestartSec=1s\\n" > /run/systemd/system/node-health-agent.service.d/watchdog.conf']);
  await box.check(['systemctl', 'daemon-reload']);
  await box.check(['systemctl', 'restart', UNIT]);
  const before = await show(box, 'MainPID', 'NRestarts');
  await box.check(['kill', '-STOP', before.MainPID as string]);
  const restarted = await until('restart by the watchdog', async () => {
    const s = await show(box, 'MainPID', 'NRestarts', 'ActiveState');
    return s.ActiveState === 'active' && s.MainPID !== before.MainPID && s.MainPID !== '0' && s;
  }, 30_000);
  t.equal(Number(restarted.NRestarts), Number(before.NRestarts) + 1);
  t.match(await box.check(['journalctl', '-u', UNIT, '-o', 'cat']), /Watchdog timeout/);
  await box.check(['rm', '-r', '/run/systemd/system/node-health-agent.service.d']);
  await box.check(['systemctl', 'daemon-reload']);

  // Upgrade over an edited conffile: the edit stays, the service restarts on the new version.
  // The first commented `interval = 30s` is the [disk] one.
  await box.check(['sh', '-c', 'sed -i "0,/^;interval = 30s$/s//interval = 45s/" /etc/node-health/node-health.ini']);
  const pidBeforeUpgrade = (await show(box, 'MainPID')).MainPID;
  await box.copyIn(newerDeb(deb), '/var/tmp/agent-newer.deb');
  const upgrade = await box.exec(['dpkg', '-i', '/var/tmp/agent-newer.deb'], { timeoutMs: 120_000 });
  t.equal(upgrade.code, 0, `upgrade: ${upgrade.stderr}`);
  t.match(await box.check(['dpkg-query', '-W', '-f=${Version}', 'node-health-agent']), /\+upgrade1$/);
  t.match(await box.check(['cat', '/etc/node-health/node-health.ini']), /^interval = 45s$/m, 'the edit is kept');
  const upgraded = await until('restart after upgrade', async () => {
    const s = await show(box, 'ActiveState', 'MainPID');
    return s.ActiveState === 'active' && s.MainPID !== pidBeforeUpgrade && s;
  }, 15_000);
  t.ok(upgraded, 'restarted on the new version');
  t.match(await box.check(['node-health-agent', 'config', 'check']), /interval = 45s {2}; \/etc\/node-health\/node-health\.ini:\d+/);

  // Purge: the unit, config and state are gone.
  t.equal((await box.exec(['dpkg', '--purge', 'node-health-agent'], { timeoutMs: 60_000 })).code, 0);
  t.equal((await show(box, 'LoadState')).LoadState, 'not-found');
  t.equal((await box.exec(['test', '-e', '/var/lib/node-health'])).code, 1, 'state dir removed');
  t.equal((await box.exec(['test', '-e', '/etc/node-health'])).code, 1, 'config dir removed');
  t.equal((await box.exec(['test', '-e', '/usr/lib/node-health-agent'])).code, 1, 'files removed');
});

