import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import t from 'tap';
import { parseMountinfo } from '../../../src/sources/probes/mountinfo';
import { findReadOnly, kernelStoppedWrites, readOnlyCheck, readonlySection } from '../../../src/sources/probes/readonly';
import { hostFs } from '../../../src/sources/probes/procfs';
import { defaultsOf, fakeFs, fixture } from './fake-fs';

const cfg = defaultsOf(readonlySection);
const never = () => false;

t.test('ext4 since 6.15: emergency_ro in the super options (captured on this host after a real ext4 error)', async (t) => {
  const before = parseMountinfo(fixture('mountinfo-ext4-loop-before-error.txt'));
  t.same(findReadOnly(before, cfg.paths, never), [], 'a healthy host has no trouble');

  const after = parseMountinfo(fixture('mountinfo-ext4-loop-emergency-ro.txt'));
  const scratch = after.find((m) => m.mountPoint === '/mnt/scratch');
  t.notOk(scratch?.readOnly, 'the mount itself still says rw');
  t.same(scratch?.superOptions, ['rw', 'errors=remount-ro', 'emergency_ro']);
  const troubles = findReadOnly(after, cfg.paths, never);
  t.equal(troubles.length, 1);
  t.equal(troubles[0]?.mount.mountPoint, '/mnt/scratch');
  t.match(troubles[0]?.evidence, /stopped writing to it after filesystem errors \(super option emergency_ro\)/);
});

// Hand-made lines in the shape of the captured ones.
const line = (id: number, dev: string, point: string, opts: string, type: string, source: string, sopts: string) =>
  `${id} 1 ${dev} / ${point} ${opts} shared:1 - ${type} ${source} ${sopts}\n`;

t.test('older kernels and btrfs: superblock ro under an rw mount', async (t) => {
  const mounts = parseMountinfo(
    line(27, '254:0', '/', 'rw,relatime', 'ext4', '/dev/vda', 'rw') +
      line(40, '8:17', '/var/lib/containerd', 'rw,relatime', 'btrfs', '/dev/sdb1', 'ro,space_cache=v2'),
  );
  const troubles = findReadOnly(mounts, cfg.paths, never);
  t.same(troubles.map((x) => [x.mount.mountPoint, x.paths]), [['/var/lib/containerd', ['/var/lib/containerd']]]);
  t.match(troubles[0]?.evidence, /superblock ro while the mount is rw/);
});

t.test('a forced ext4 shutdown is a trouble; read-only-by-design filesystems are not', async (t) => {
  const mounts = parseMountinfo(
    line(27, '254:0', '/', 'rw,relatime', 'ext4', '/dev/vda', 'rw,shutdown') +
      line(50, '7:1', '/snap/core/1', 'ro,nodev,relatime', 'squashfs', '/dev/loop1', 'ro') +
      line(51, '7:2', '/opt/image', 'rw,relatime', 'squashfs', '/dev/loop2', 'ro') +
      line(52, '259:1', '/boot/efi', 'ro,relatime', 'vfat', '/dev/nvme0n1p1', 'ro'),
  );
  t.equal(kernelStoppedWrites(mounts[0]!), 'the filesystem was shut down (super option shutdown)');
  const troubles = findReadOnly(mounts, [], never);
  t.same(troubles.map((x) => x.mount.mountPoint), ['/'], 'squashfs (rw mount, ro super) and a ro-at-first-sight ESP are fine');
});

t.test('listed paths must be writable whatever the filesystem; bind mounts of one device are one trouble', async (t) => {
  const mounts = parseMountinfo(
    line(27, '254:0', '/', 'rw,relatime', 'ext4', '/dev/vda', 'rw') +
      line(60, '0:50', '/var/log', 'ro,relatime', 'tmpfs', 'tmpfs', 'rw') +
      line(61, '8:1', '/data', 'rw', 'xfs', '/dev/sda1', 'ro') +
      line(62, '8:1', '/var/lib/kubelet', 'rw', 'xfs', '/dev/sda1', 'ro'),
  );
  const troubles = findReadOnly(mounts, ['/var/lib/kubelet/pods', '/var/log/journal'], never);
  t.same(
    troubles.map((x) => [x.mount.mountPoint, x.paths]),
    [['/data', ['/var/lib/kubelet/pods']], ['/var/log', ['/var/log/journal']]],
  );
});

t.test('the check: a mount remounted ro after it was seen rw is a problem; one ro from the start is not', async (t) => {
  const files: Record<string, string> = {
    '/proc/1/mountinfo':
      line(27, '254:0', '/', 'rw,relatime', 'ext4', '/dev/vda', 'rw') + line(70, '8:1', '/data', 'rw', 'xfs', '/dev/sda1', 'rw') +
      line(71, '8:2', '/archive', 'ro', 'xfs', '/dev/sda2', 'ro'),
  };
  const check = readOnlyCheck({ ...cfg, paths: [] }, fakeFs(files));
  const first = await check.run();
  t.same(first.map((f) => [f.status, f.reason]), [['ok', 'FilesystemsWritable']]);
  t.match(first[0]?.message, '3 mounts of real filesystems');

  files['/proc/1/mountinfo'] = (files['/proc/1/mountinfo'] as string).replace('/data rw', '/data ro');
  for (let i = 0; i < 2; i++) {
    const findings = await check.run();
    t.same(findings.map((f) => [f.status, f.reason, f.subject]), [['problem', 'FilesystemReadOnly', '/data']], `run ${i + 2}`);
    t.match(findings[0]?.message, '/data (/dev/sda1, xfs) refuses writes: it was remounted read-only');
    t.match(findings[0]?.message, 'mount -o remount,rw /data');
  }
});

t.test("PID 1's mountinfo is read; the agent's own only when PID 1's is off limits", async (t) => {
  const ok = line(27, '254:0', '/', 'rw', 'ext4', '/dev/vda', 'rw');
  const sandboxed = line(27, '254:0', '/', 'ro', 'ext4', '/dev/vda', 'rw'); // as ProtectSystem=strict shows it
  const host = await readOnlyCheck(cfg, fakeFs({ '/proc/1/mountinfo': ok, '/proc/self/mountinfo': sandboxed })).run();
  t.equal(host[0]?.status, 'ok');
  const fallback = await readOnlyCheck(cfg, fakeFs({ '/proc/1/mountinfo': { errno: 'EACCES' }, '/proc/self/mountinfo': ok })).run();
  t.equal(fallback[0]?.status, 'ok');
  await t.rejects(readOnlyCheck(cfg, fakeFs({})).run(), /ENOENT/);
});

t.test('the live host: its filesystems take writes', async (t) => {
  const findings = await readOnlyCheck(cfg).run();
  t.same(findings.map((f) => [f.status, f.reason, f.subject]), [['ok', 'FilesystemsWritable', '']]);
});

// The real thing: an ext4 filesystem the kernel stops writing to after an error, and a remount.
const canMount =
  process.getuid?.() === 0 && existsSync('/dev/loop-control') && existsSync('/sys/fs/ext4') && existsSync('/usr/sbin/mkfs.ext4');
t.test('a real ext4 with errors=remount-ro after an error, and a real remount', { skip: !canMount && 'needs root, loop devices and mkfs.ext4' }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'nha-ro-'));
  const image = join(work, 'fs.img');
  const point = join(work, 'mnt');
  mkdirSync(point);
  execFileSync('truncate', ['-s', '16M', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  const mount = (opts: string) => execFileSync('mount', ['-o', opts, image, point]);
  t.teardown(() => {
    spawnSync('umount', [point]); // the loop device detaches with it (mount -o loop sets autoclear)
    rmSync(work, { recursive: true, force: true });
  });
  mount('loop,errors=remount-ro');
  const check = readOnlyCheck({ ...cfg, paths: [] }, hostFs);
  t.equal((await check.run())[0]?.reason, 'FilesystemsWritable');

  execFileSync('mount', ['-o', 'remount,ro', point]);
  const remounted = await check.run();
  t.same(remounted.map((f) => [f.status, f.subject]), [['problem', point]]);
  t.match(remounted[0]?.message, 'it was remounted read-only');

  execFileSync('mount', ['-o', 'remount,rw', point]);
  t.equal((await check.run())[0]?.status, 'ok', 'writable again');

  // ext4 exposes a switch that raises a real filesystem error (as a corrupt block would).
  const source = parseMountinfo(hostFs.read('/proc/self/mountinfo')).find((m) => m.mountPoint === point)?.source;
  const loop = basename(source ?? '');
  t.ok(existsSync(`/sys/fs/ext4/${loop}`), `${loop} shows under /sys/fs/ext4`);
  writeFileSync(`/sys/fs/ext4/${loop}/trigger_fs_error`, 'test error\n');
  const broken = await readOnlyCheck({ ...cfg, paths: [] }, hostFs).run();
  t.same(broken.map((f) => [f.status, f.reason, f.subject]), [['problem', 'FilesystemReadOnly', point]], 'a fresh check sees it too');
  t.match(broken[0]?.message, /after filesystem errors|superblock ro while the mount is rw/);
});
