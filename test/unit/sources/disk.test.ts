import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultsOf } from './fake-fs';
import { runCheck } from '../../../src/engine/run-check';
import { diskCheck, diskSection, isServed, selectFilesystems, type ApartOutcome, type StatfsResult } from '../../../src/sources/probes/disk';
import { parseMountinfo } from '../../../src/sources/probes/mountinfo';

const fixture = (name: string): string => readFileSync(join(__dirname, '../../fixtures/proc', name), 'utf8');
const defaults = defaultsOf(diskSection);

t.test('mountinfo: real filesystems once per device, escaped paths decoded', async (t) => {
  const mounts = parseMountinfo(fixture('mountinfo-kubeadm-node.txt'));
  const picked = selectFilesystems(mounts, []).map((m) => m.mountPoint);
  t.same(picked, ['/', '/boot/efi', '/var/lib/kubelet/pods/with space']);
  t.notOk(picked.includes('/proc'), 'pseudo filesystems are skipped');
  t.notOk(picked.includes('/var/lib/containerd/bind'), 'a bind mount of a device already seen is not checked twice');
});

t.test('configured paths pull in filesystems of otherwise skipped types', async (t) => {
  const mounts = parseMountinfo(fixture('mountinfo-kubeadm-node.txt'));
  const picked = selectFilesystems(mounts, ['/run/containerd/x']).map((m) => m.mountPoint);
  t.ok(picked.includes('/run'));
});

t.test('a malformed mountinfo line is an error that shows the line', async (t) => {
  t.throws(() => parseMountinfo('22 1 8:1 / / rw\n'), /malformed mountinfo line: 22 1 8:1/);
});

function check(stats: StatfsResult, overrides: Partial<typeof defaults> = {}) {
  return diskCheck(
    { ...defaults, ...overrides },
    {
      mounts: () => parseMountinfo('29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n'),
      statfs: async () => stats,
      statfsApart: () => Promise.reject(new Error('a local filesystem is asked in-process')),
    },
  );
}

t.test('space is judged after reserved blocks, as df does', async (t) => {
  // 1000 blocks, 100 free of which 50 are reserved for root: df says 900/(900+50) = 94.7% used.
  const findings = await check({ blocks: 1000, bfree: 100, bavail: 50, bsize: 4096, files: 100, ffree: 90 }).run();
  const space = findings.find((f) => f.reason.startsWith('DiskSpace'));
  t.equal(space?.status, 'warning');
  t.equal(space?.reason, 'DiskSpaceLow');
  t.match(space?.message, '/ (/dev/sda1, ext4): 94.7% used, only 200.0 KiB free for unprivileged writers');
});

t.test('critical space and inodes are problems with actionable messages', async (t) => {
  const findings = await check({ blocks: 1000, bfree: 10, bavail: 10, bsize: 4096, files: 1000, ffree: 10 }).run();
  t.same(findings.map((f) => [f.status, f.reason]), [['problem', 'DiskSpaceCritical'], ['problem', 'InodesCritical']]);
  t.match(findings[1]?.message, /99\.0% of inodes used, 10 free; new files and containers will fail/);
});

t.test('filesystems without inode counts are judged on space only', async (t) => {
  const findings = await check({ blocks: 1000, bfree: 900, bavail: 900, bsize: 4096, files: 0, ffree: 0 }).run();
  t.same(findings.map((f) => f.reason), ['DiskSpaceOK']);
});

t.test('the live host: every finding has a subject and a known status', async (t) => {
  const findings = await diskCheck(defaults).run();
  t.ok(findings.length >= 1, 'at least the root filesystem is checked');
  for (const f of findings) {
    t.ok(['ok', 'warning', 'problem'].includes(f.status));
    t.ok(f.subject?.startsWith('/'));
  }
});

t.test('a captured mountinfo parses completely', async (t) => {
  const text = fixture('mountinfo-debian12-vm.txt');
  const mounts = parseMountinfo(text);
  t.equal(mounts.length, text.trim().split('\n').length);
  t.ok(selectFilesystems(mounts, []).some((m) => m.mountPoint === '/' && m.fsType === 'ext4'));
});

const NFS_NODE =
  '29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n' +
  '40 29 0:50 / /mnt/nfs rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2\n' +
  '41 29 0:51 / /mnt/ssh rw,nosuid shared:21 - fuse.sshfs user@host:/ rw,user_id=0,group_id=0\n';
const ROOMY: StatfsResult = { blocks: 1000, bfree: 900, bavail: 900, bsize: 4096, files: 1000, ffree: 900 };

t.test('network, cluster and FUSE filesystems are served; local and pseudo ones are not', async (t) => {
  for (const type of ['nfs', 'nfs4', 'cifs', 'smb3', '9p', 'ceph', 'glusterfs', 'fuse', 'fuseblk', 'fuse.sshfs', 'fuse.s3fs', 'virtiofs']) {
    t.ok(isServed(type), type);
  }
  for (const type of ['ext4', 'xfs', 'btrfs', 'vfat', 'tmpfs', 'overlay']) t.notOk(isServed(type), type);
});

t.test('served filesystems are asked apart with a deadline, local ones in-process', async (t) => {
  const inProcess: string[] = [];
  const apart: Array<[string, number]> = [];
  const findings = await diskCheck(defaults, {
    mounts: () => parseMountinfo(NFS_NODE),
    statfs: async (p) => (inProcess.push(p), ROOMY),
    statfsApart: async (p, timeoutMs) => (apart.push([p, timeoutMs]), { kind: 'answered', stats: ROOMY }),
  }).run();
  t.same(inProcess, ['/']);
  t.same(apart.map(([p]) => p).sort(), ['/mnt/nfs', '/mnt/ssh']);
  t.ok(apart.every(([, ms]) => ms > 0 && ms <= 10_000), 'every served probe has a short deadline');
  t.same(new Set(findings.map((f) => f.subject)), new Set(['/', '/mnt/nfs', '/mnt/ssh']));
  t.ok(findings.every((f) => f.status === 'ok'));
});

t.test('a hung mount is named MountUnresponsive, others still judged, and a stuck probe is never doubled', async (t) => {
  let released: () => void = () => undefined;
  const lingering = new Promise<void>((r) => (released = r));
  const calls: string[] = [];
  const check = diskCheck(defaults, {
    mounts: () => parseMountinfo(NFS_NODE),
    statfs: async () => ROOMY,
    // The NFS server never answers and the probe outlives SIGKILL; sshfs answers.
    statfsApart: async (p): Promise<ApartOutcome> => {
      calls.push(p);
      return p === '/mnt/nfs' ? { kind: 'timedOut', lingering } : { kind: 'answered', stats: ROOMY };
    },
  });
  const first = await runCheck(check);
  const nfs = first.filter((f) => f.subject === '/mnt/nfs');
  t.match(nfs, [{ status: 'unknown', reason: 'MountUnresponsive', message: /^\/mnt\/nfs \(server:\/export, nfs4\): no answer to statfs within 5s; .*umount -l \/mnt\/nfs/ }]);
  t.ok(first.some((f) => f.subject === '/' && f.reason === 'DiskSpaceOK'), 'the local root is still judged');
  t.ok(first.some((f) => f.subject === '/mnt/ssh' && f.reason === 'DiskSpaceOK'), 'the healthy FUSE mount is still judged');

  const second = await runCheck(check);
  t.same(calls.filter((p) => p === '/mnt/nfs').length, 1, 'no second probe while the first is stuck');
  t.match(second.find((f) => f.subject === '/mnt/nfs'), { status: 'unknown', reason: 'MountUnresponsive', message: /still stuck and outlived SIGKILL/ });

  released();
  await lingering;
  await new Promise((r) => setImmediate(r));
  await runCheck(check);
  t.same(calls.filter((p) => p === '/mnt/nfs').length, 2, 'probed again once the stuck probe ended');
});

t.test('a statfs that fails is unknown for that mount only', async (t) => {
  const findings = await diskCheck(defaults, {
    mounts: () => parseMountinfo(NFS_NODE),
    statfs: async () => {
      throw Object.assign(new Error('EIO: i/o error, statfs \'/\''), { code: 'EIO' });
    },
    statfsApart: async () => ({ kind: 'failed', message: "stat: cannot read file system information for '/mnt/nfs': Transport endpoint is not connected" }),
  }).run();
  t.match(findings.find((f) => f.subject === '/'), { status: 'unknown', reason: 'StatfsFailed', message: /EIO/ });
  t.match(findings.find((f) => f.subject === '/mnt/nfs'), { status: 'unknown', reason: 'StatfsFailed', message: /not connected/ });
});

t.test('at most 16 served probes run at once, whatever the number of network mounts', async (t) => {
  const lines = ['29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw'];
  for (let i = 0; i < 40; i++) lines.push(`${100 + i} 29 0:${100 + i} / /mnt/pv${i} rw,relatime - nfs4 server:/pv${i} rw`);
  let running = 0;
  let most = 0;
  const findings = await diskCheck(defaults, {
    mounts: () => parseMountinfo(`${lines.join('\n')}\n`),
    statfs: async () => ROOMY,
    statfsApart: async (): Promise<ApartOutcome> => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return { kind: 'answered', stats: ROOMY };
    },
  }).run();
  t.equal(most, 16);
  t.equal(new Set(findings.map((f) => f.subject)).size, 41, 'every mount judged');
});
