// The systemd unit: systemd's own exposure score, and the settings the agent's contract depends on.
// (systemd-analyze verify needs the installed files: image-bake.test.ts runs it in the chroot.)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

const unitFile = join(__dirname, '../../systemd/node-health-agent.service');
const unit = readFileSync(unitFile, 'utf8');

/** The value of every line `Key=value` of the unit, in order. */
const values = (key: string) =>
  unit
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

t.test('systemd-analyze security: exposure at most 2.5', async (t) => {
  const res = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unitFile], { encoding: 'utf8' });
  t.equal(res.status, 0, `systemd-analyze security ran${res.status ? `: ${res.stderr}` : ''}`);
  const m = /Overall exposure level for node-health-agent\.service: (\d+\.\d+)/.exec(res.stdout);
  t.ok(m, 'it printed an overall exposure level');
  const exposure = Number(m?.[1]);
  t.ok(exposure <= 2.5, `exposure ${exposure} <= 2.5`);
  // Each exception is argued in docs/packaging.md; a new one should be too.
  const failed = res.stdout
    .split('\n')
    .filter((l) => l.startsWith('✗'))
    .map((l) => l.slice(1).trim().split(/\s+/)[0]);
  t.same(failed.sort(), [
    'IPAddressDeny=',
    'MemoryDenyWriteExecute=',
    'PrivateNetwork=',
    'PrivateUsers=',
    'ProcSubset=',
    'ProtectClock=',
    'ProtectProc=',
    'RestrictAddressFamilies=~AF_(INET|INET6)',
    'RestrictAddressFamilies=~AF_NETLINK',
    'RestrictAddressFamilies=~AF_UNIX',
    'RootDirectory=/RootImage=',
    'SystemCallFilter=~@clock',
    'SystemCallFilter=~@privileged',
    'User=/DynamicUser=',
  ], 'exactly the documented exceptions');
});

t.test('the settings the agent relies on', async (t) => {
  t.same(values('Documentation'), ['man:node-health-agent(8) man:node-health.ini(5)'], 'the man pages the packages install');
  t.same(values('Type'), ['notify'], 'Type=notify: the agent says READY=1');
  t.same(values('NotifyAccess'), ['main'], 'only the main process may notify');
  t.same(values('ExecStart'), ['/usr/lib/node-health-agent/node --single-threaded --optimize-for-size /usr/lib/node-health-agent/node-health-agent.js run']);
  t.same(values('ExecReload'), ['/bin/kill -HUP $MAINPID'], 'reload is SIGHUP');
  t.same(values('WatchdogSec'), ['30s']);
  t.same(values('Restart'), ['always']);
  t.same(values('RestartSec'), ['10s']);
  t.same([...values('StartLimitIntervalSec'), ...values('StartLimitBurst')], ['10min', '10'], 'a crash loop gives up after ten starts');
  t.same(values('StateDirectory'), ['node-health']);
  t.same(values('StateDirectoryMode'), ['0700']);
  t.same(values('RuntimeDirectory'), ['node-health'], 'the status socket lives in /run/node-health');
  t.same(values('ConfigurationDirectory'), ['node-health']);
  t.same(values('ProtectSystem'), ['strict']);
  t.same(values('User'), [], 'runs as root: systemd D-Bus calls and the kubelet credentials need uid 0');
  t.same(values('MemoryDenyWriteExecute'), [], 'V8 needs writable executable memory for its JIT');
  t.same(values('ProtectProc'), [], 'the agent reads /proc/<pid> of the kubelet and containerd');
  t.notMatch(values('InaccessiblePaths').join(' '), /\/run\/dbus|\/var\/lib\/kubelet|\/etc\/kubernetes|journal/, 'D-Bus, kubelet credentials and the journal stay reachable');
  t.same(values('RestrictAddressFamilies'), ['AF_UNIX AF_INET AF_INET6 AF_NETLINK']);
  t.same(values('WantedBy'), ['multi-user.target']);
});
