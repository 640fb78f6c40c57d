// The test ground itself: boxes boot a real systemd with journald, D-Bus and containerd, run side by
// side as separate machines, and leave nothing behind.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Box, boxScript, runBoxScript } from '../helpers/box';

t.test('two boxes at once: each a separate, running systemd machine', async (t) => {
  const [a, b] = await Promise.all([Box.up(t, 'e2e-a'), Box.up(t, 'e2e-b')]);
  t.comment(`booted in ${a.bootMs} ms and ${b.bootMs} ms (in parallel)`);

  t.test('systemd reports running', async (t) => {
    for (const box of [a, b]) {
      // A degraded box names its failed units, so a unit of the host image that fails in a box is found at once.
      const state = (await box.exec(['systemctl', 'is-system-running'])).stdout;
      const failed = state === 'running\n' ? '' : (await box.check(['systemctl', 'list-units', '--failed', '--plain', '--no-legend'])).trim();
      t.equal(state, 'running\n', failed ? `${box.name}; failed units: ${failed}` : box.name);
    }
  });

  t.test('own hostname and machine ID', async (t) => {
    t.equal(await a.check(['hostname']), `${a.name}\n`);
    t.equal(await b.check(['hostname']), `${b.name}\n`);
    const ids = await Promise.all([a, b].map((box) => box.check(['cat', '/etc/machine-id'])));
    t.not(ids[0], ids[1]);
    t.not(ids[0], readFileSync('/etc/machine-id', 'utf8'), 'not the host machine ID');
  });

  t.test('files written in one box stay in it', async (t) => {
    const path = `/etc/nha-box-test-${process.pid}`;
    await a.check(['sh', '-c', `echo a > ${path}`]);
    t.equal((await b.exec(['test', '-e', path])).code, 1, 'not in the other box');
    t.notOk(existsSync(path), 'not on the host');
  });

  t.test('journald takes a line and gives it back', async (t) => {
    const marker = `nha-box-marker-${process.pid}-${Date.now()}`;
    await a.check(['systemd-cat', '-t', 'nha-box-test', 'echo', marker]);
    let found = '';
    for (let i = 0; i < 50 && !found.includes(marker); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      found = await a.check(['journalctl', '--no-pager', '-o', 'cat', '-t', 'nha-box-test']);
    }
    t.match(found, marker);
  });

  t.test('the system bus reaches systemd', async (t) => {
    const reply = await a.check([
      'busctl', 'call', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1',
      'org.freedesktop.DBus.Properties', 'Get', 'ss', 'org.freedesktop.systemd1.Manager', 'Version',
    ]);
    const version = /^v s "(.+)"\n$/.exec(reply)?.[1];
    t.ok(version, `busctl replied ${JSON.stringify(reply)}`);
    t.equal(await a.check(['systemctl', 'show', '-p', 'Version', '--value']), `${version}\n`);
  });

  t.test('containerd runs in each box, one daemon per box', async (t) => {
    const uuids = await Promise.all(
      [a, b].map(async (box) => {
        await box.check(['systemctl', 'start', 'containerd']);
        const out = await box.check(['ctr', 'version']);
        t.match(out, /Server:\s+Version:/, `${box.name}: ctr reaches the daemon`);
        return /UUID:\s*(\S+)/.exec(out)?.[1];
      }),
    );
    t.ok(uuids[0] && uuids[1] && uuids[0] !== uuids[1], `daemon UUIDs ${uuids.join(', ')}`);
  });

  t.test('exec passes stdin, environment and the exit code', async (t) => {
    const res = await a.exec(['sh', '-c', 'read -r line; echo "$line $GREETING"; exit 7'], {
      input: 'from stdin\n',
      env: { GREETING: 'hello' },
    });
    t.same(res, { code: 7, stdout: 'from stdin hello\n', stderr: '' });
    t.equal((await a.exec(['no-such-command'])).code, 127);
  });

  t.test('a command that outlives its timeout is reported as such, not waited for', async (t) => {
    const started = Date.now();
    await t.rejects(a.exec(['sleep', '300'], { timeoutMs: 1000 }), /timed out after 1000 ms/);
    t.ok(Date.now() - started < 6000, `gave up after ${Date.now() - started} ms`);
    await a.exec(['pkill', '-x', 'sleep']);
  });

  t.test('copyIn: visible inside at once, mode kept, also on the box-private /tmp', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'nha-box-'));
    const file = join(dir, 'payload.txt');
    writeFileSync(file, 'payload\n');
    chmodSync(file, 0o640);
    await a.copyIn(file, '/tmp/');
    t.equal(await a.check(['stat', '-c', '%a %s', '/tmp/payload.txt']), '640 8\n');
    await a.copyIn(file, '/root/renamed.txt');
    t.equal(await a.check(['cat', '/root/renamed.txt']), 'payload\n');
    await t.rejects(a.copyIn(file, '/no/such/dir/x'), /cannot write \/no\/such\/dir\/x/);
  });

  t.test('down leaves no process, mount, cgroup or directory behind', async (t) => {
    await Promise.all([a.down(), b.down()]);
    const mounts = readFileSync('/proc/mounts', 'utf8');
    for (const box of [a, b]) {
      t.notOk(running(box.info.leader), `${box.name}: its systemd is gone`);
      t.notOk(running(box.info.nspawn), `${box.name}: systemd-nspawn is gone`);
      t.notOk(mounts.includes(box.info.root), `${box.name}: overlay unmounted`);
      t.notOk(existsSync(join(box.info.root, '..')), `${box.name}: overlay directories removed`);
      for (const cg of box.info.cgroups) t.notOk(existsSync(cg), `${box.name}: ${cg} removed`);
      const again = await runBoxScript(['down', box.name]);
      t.equal(again.code, 0, 'a second down is a no-op');
    }
    t.notMatch((await runBoxScript(['list'])).stdout, /e2e-[ab]-/);
  });
});

// A process that has exited may linger as a zombie until init reaps it (nspawn is re-parented to init).
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

t.test('a host that cannot run boxes gets a one-line reason', async (t) => {
  // As an unprivileged user; the script comes on stdin so its path need not be readable by that user.
  const res = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', '-s', '--', 'up', 'x'], {
    input: readFileSync(boxScript),
    encoding: 'utf8',
  });
  t.equal(res.status, 2);
  t.equal(res.stderr, 'box: must run as root: a box mounts an overlay of / and creates cgroups\n');
});
