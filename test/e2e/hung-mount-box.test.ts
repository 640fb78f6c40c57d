// Hung FUSE mounts under the installed package: six FUSE filesystems nobody serves, mounted under
// /var/lib/kubelet where pod volumes live, while the daemon runs under its shipped unit (its sandbox,
// its system-call filter). The disk check must name each one MountUnresponsive, keep judging the root
// and a FUSE filesystem that does answer (bindfs, asked through the same out-of-process probe), never
// pile up probes, and clear once the mounts are gone.
import t from 'tap';
import { Box } from '../helpers/box';
import { hungFuseOptions } from '../helpers/hung-mount';
import { ensurePackages } from '../helpers/packages';

const HUNG = 6;
const PODS = '/var/lib/kubelet/pods';
const hungPath = (i: number): string => `${PODS}/p${i}/volumes/kubernetes.io~csi/hung/mount`;
const HEALTHY = `${PODS}/ok/volumes/kubernetes.io~csi/bindfs/mount`;

interface Finding {
  check: string;
  subject?: string;
  status: string;
  reason: string;
  message: string;
  at: string;
}

t.test('six hung FUSE mounts under the installed daemon: named, the rest still judged, no pile-up, cleared after', async (t) => {
  const { deb } = ensurePackages();
  const box = await Box.up(t, 'nha-hung');
  // nspawn gives a box no /dev/fuse; the fuse module is the host's.
  await box.check(['sh', '-c', 'test -e /dev/fuse || mknod -m 600 /dev/fuse c 10 229']);
  await box.check([
    'sh',
    '-c',
    "install -d -m 755 /etc/node-health && printf '[disk]\\ninterval = 1s\\n' > /etc/node-health/50-disk.ini && chmod 644 /etc/node-health/50-disk.ini",
  ]);
  await box.copyIn(deb, '/var/tmp/agent.deb');
  const install = await box.exec(['dpkg', '-i', '--force-confold', '/var/tmp/agent.deb'], { timeoutMs: 120_000 });
  t.equal(install.code, 0, `dpkg -i: ${install.stderr}`);

  const disk = async (): Promise<Finding[]> => {
    const res = await box.exec(['node-health-agent', 'status', '--json']);
    if (res.code !== 0) return [];
    return (JSON.parse(res.stdout) as { checks: Finding[] }).checks.filter((c) => c.check === 'disk');
  };
  const until = async (what: string, ok: (f: Finding[]) => boolean, ms = 40_000): Promise<Finding[]> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = await disk();
      if (ok(f)) return f;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; disk findings: ${JSON.stringify(f, null, 1)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const root = (f: Finding[]) => f.find((x) => x.subject === '/' && x.reason.startsWith('DiskSpace'));
  await until('the root filesystem judged', (f) => root(f) !== undefined);

  // A FUSE filesystem that answers, and six that never will, each held by a unit of its own.
  await box.check(['install', '-d', '-m', '755', '/srv/nha-src', HEALTHY]);
  await box.check(['systemd-run', '--unit=nha-bindfs', '--', 'bindfs', '-f', '/srv/nha-src', HEALTHY]);
  for (let i = 0; i < HUNG; i++) {
    await box.check(['install', '-d', '-m', '755', hungPath(i)]);
    await box.check([
      'systemd-run',
      `--unit=nha-hung-${i}`,
      '--',
      'bash',
      '-c',
      `exec 3<>/dev/fuse && mount -i -t fuse -o ${hungFuseOptions(`hung${i}`)} nha-hung${i} ${hungPath(i)} && exec sleep infinity`,
    ]);
  }
  const mounted = Date.now();
  const named = await until('every hung mount named MountUnresponsive', (f) =>
    Array.from({ length: HUNG }, (_, i) => f.find((x) => x.subject === hungPath(i))).every((x) => x?.reason === 'MountUnresponsive'),
  );
  t.pass(`all ${HUNG} named within ${Date.now() - mounted} ms of mounting`);
  t.match(named.find((x) => x.subject === hungPath(0)), { status: 'unknown', message: new RegExp(`^${hungPath(0)} \\(nha-hung0, fuse\\.hung0\\): no answer to statfs within 5s`) });
  const healthy = await until('the answering FUSE mount judged', (f) => f.some((x) => x.subject === HEALTHY && x.reason === 'DiskSpaceOK'));
  t.match(healthy.find((x) => x.subject === HEALTHY), { status: 'ok', message: new RegExp(`^${HEALTHY} \\(/srv/nha-src, fuse\\): `) }, 'asked by stat -f under the unit sandbox');

  // The check keeps running (the root's result keeps being renewed) and never runs a second probe
  // beside a stuck one.
  const before = root(await disk())?.at ?? '';
  let most = 0;
  for (let i = 0; i < 12; i++) {
    const n = Number((await box.exec(['pgrep', '-c', '-f', '^/usr/bin/stat -f'])).stdout.trim() || '0');
    most = Math.max(most, n);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const after = root(await disk());
  t.ok(after && after.at > before, `the root is judged again (${before} → ${after?.at})`);
  t.ok(most <= HUNG + 1, `at most one probe per served mount at a time (most seen: ${most})`);
  t.equal((await box.exec(['systemctl', 'is-active', 'node-health-agent'])).stdout.trim(), 'active');
  t.equal((await box.check(['systemctl', 'show', '-P', 'NRestarts', 'node-health-agent'])).trim(), '0', 'never restarted');
  const log = await box.check(['journalctl', '-u', 'node-health-agent', '-o', 'cat', '--no-pager']);
  t.match(log, new RegExp(`${hungPath(3)} \\(nha-hung3, fuse\\.hung3\\): no answer to statfs`), 'each hung mount is logged by name');

  // Their daemons gone and the mounts detached, nothing is unresponsive any more.
  for (let i = 0; i < HUNG; i++) {
    await box.check(['systemctl', 'stop', `nha-hung-${i}`]);
    await box.check(['umount', '-l', hungPath(i)]);
  }
  await until('no MountUnresponsive after release', (f) => !f.some((x) => x.reason === 'MountUnresponsive') && root(f) !== undefined);
  t.pass('cleared after release');
});
