// The installed package on a node in a box: `node-health-agent diagnose` reads the clock state of the
// kernel the box shares with this host and judges it as the probe does here.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { judgeTimeSync, timeSyncSection } from '../../src/sources/probes/time-sync';
import { loadNative } from '../../src/system/native';
import type { CheckResult } from '../../src/types';
import { Box } from '../helpers/box';
import { ensurePackages } from '../helpers/packages';
import { defaultsOf } from '../unit/sources/fake-fs';

t.test('diagnose in a node in a box shows the time_sync finding of the shared kernel clock', async (t) => {
  const { deb } = ensurePackages();
  const box = await Box.up(t, 'nha-timesync');
  await box.copyIn(deb, '/var/tmp/agent.deb');
  const install = await box.exec(['dpkg', '-i', '--force-confold', '/var/tmp/agent.deb'], { timeoutMs: 120_000 });
  t.equal(install.code, 0, `dpkg -i: ${install.stderr}`);

  const res = await box.exec(['node-health-agent', 'diagnose', '--json']);
  t.ok(res.code === 0 || res.code === 1, `diagnose ran (exit ${res.code}): ${res.stderr}`);
  const findings = res.stdout.trim().split('\n').map((line) => JSON.parse(line) as CheckResult);
  const timeSync = findings.filter((f) => f.check === 'time_sync');
  t.equal(timeSync.length, 1, 'one time_sync finding');
  const [inBox] = timeSync;

  // The same kernel read from this host, judged with the same defaults: the same verdict.
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const here = judgeTimeSync(loadNative().adjtimex(), uptime, defaultsOf(timeSyncSection));
  t.match(inBox, { component: 'host', subject: '', status: here.status, reason: here.reason });
  t.not(inBox?.status, 'unknown', inBox?.message);
  if (here.status !== 'ok') t.match(inBox?.message, /chronyd, ntpd or systemd-timesyncd/, 'says what to check');
});
