// Disk pressure as a node sees it: the installed .deb under a booted systemd (node in a box) watches a
// small tmpfs mounted at a watched path; filling its bytes, then its inodes, sets DiskFull and freeing
// them clears it, through the shipped unit's hardened mount namespace.
import t from 'tap';
import type { NodeCondition } from '../../src/types';
import { Box } from '../helpers/box';
import { ensurePackages } from '../helpers/packages';

const MOUNT = '/var/lib/nha-fill';

t.test('a filled filesystem at a watched path sets DiskFull on the node, freeing it clears it', async (t) => {
  const { deb } = ensurePackages();
  const box = await Box.up(t, 'nha-disk');
  await box.check(['install', '-d', '-m', '755', MOUNT]);
  await box.check(['mount', '-t', 'tmpfs', '-o', 'size=2m,nr_inodes=64,mode=755', 'nha-fill', MOUNT]);
  await box.check([
    'sh',
    '-c',
    `install -d -m 755 /etc/node-health && printf '[disk]\\ninterval = 1s\\npaths = ${MOUNT}\\nset_after = 2\\nclear_after = 2\\n[time_sync]\\ninterval = 1s\\n' > /etc/node-health/50-disk.ini && chmod 644 /etc/node-health/50-disk.ini`,
  ]);
  await box.copyIn(deb, '/var/tmp/agent.deb');
  const install = await box.exec(['dpkg', '-i', '--force-confold', '/var/tmp/agent.deb'], { timeoutMs: 120_000 });
  t.equal(install.code, 0, `dpkg -i: ${install.stderr}`);

  const diskFull = async (): Promise<NodeCondition | undefined> => {
    const res = await box.exec(['node-health-agent', 'status', '--json']);
    if (res.code !== 0) return undefined;
    return (JSON.parse(res.stdout) as { conditions: NodeCondition[] }).conditions.find((c) => c.type === 'DiskFull');
  };
  const until = async (what: string, ok: (c: NodeCondition) => boolean): Promise<NodeCondition> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const c = await diskFull();
      if (c && ok(c)) return c;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(c)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  t.match(await until('DiskFull declared', () => true), { status: 'False' }, 'healthy at start');

  // The shipped unit lets the time_sync probe read the clock state (adjtimex) and nothing more.
  let timeSync: { check: string; reason: string } | undefined;
  for (let i = 0; i < 40 && !timeSync; i++) {
    const status = JSON.parse(await box.check(['node-health-agent', 'status', '--json'])) as { checks: Array<{ check: string; reason: string }> };
    timeSync = status.checks.find((c) => c.check === 'time_sync');
    if (!timeSync) await new Promise((r) => setTimeout(r, 250));
  }
  t.ok(timeSync && timeSync.reason !== 'CheckFailed', `time_sync reads the clock under the unit: ${JSON.stringify(timeSync)}`);

  await box.check(['dd', 'if=/dev/zero', `of=${MOUNT}/blob`, 'bs=64k', 'count=31']);
  const bytes = await until('DiskFull True (space)', (c) => c.status === 'True');
  t.match(bytes, { reason: 'DiskSpaceCritical', message: new RegExp(`^${MOUNT}: `) });
  await box.check(['rm', `${MOUNT}/blob`]);
  t.match(await until('DiskFull False after freeing space', (c) => c.status === 'False'), { reason: 'DiskSpaceOK' });

  // More files than the filesystem has inodes: the last ones fail with ENOSPC.
  await box.exec(['sh', '-c', `for i in $(seq 1 70); do touch ${MOUNT}/f$i; done`]);
  const inodes = await until('DiskFull True (inodes)', (c) => c.status === 'True');
  t.match(inodes, { reason: 'InodesCritical', message: new RegExp(`^${MOUNT}: `) });
  await box.check(['sh', '-c', `rm -f ${MOUNT}/f*`]);
  t.match(await until('DiskFull False after freeing inodes', (c) => c.status === 'False'), { reason: 'DiskSpaceOK' });

  const log = await box.check(['journalctl', '-u', 'node-health-agent', '-o', 'cat', '--no-pager']);
  t.match(log, /condition DiskFull is now True: InodesCritical/, 'each transition is logged');
});
