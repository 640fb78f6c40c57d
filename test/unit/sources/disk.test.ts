import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../../src/config/load';
import { diskCheck, selectFilesystems, type StatfsResult } from '../../../src/sources/probes/disk';
import { parseMountinfo } from '../../../src/sources/probes/mountinfo';

const fixture = (name: string): string => readFileSync(join(__dirname, '../../fixtures/proc', name), 'utf8');
const defaults = loadConfig('/nonexistent').config.disk;

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
