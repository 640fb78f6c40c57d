// The VM ground itself (scripts/vm, test/helpers/vm.ts): commands through the guest agent with their
// exit code, output and input, a timeout that ends them, files copied in, a network with no way out but
// the one forwarded port on the host's loopback, a reboot inside the same qemu, teardown that leaves no
// qemu behind, and a clear error when a tool is missing.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { waitFor } from '../helpers/cluster';
import { FORWARD_ADDRESS, Vm, vmScript } from '../helpers/vm';

// Longer than the runner's default: a cold image build and a boot under TCG on a loaded 2-core machine.
t.setTimeout(30 * 60_000);

t.test('a missing qemu is an error that names the setup script, not a skip', async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'nha-vm-path-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  for (const tool of ['bash', 'dirname', 'id']) symlinkSync(spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), join(bin, tool));
  const res = spawnSync(join(bin, 'bash'), [vmScript, 'up', 'missing-tools'], { encoding: 'utf8', env: { PATH: bin } });
  t.equal(res.status, 2);
  t.match(res.stderr, /^vm: qemu-system-x86_64 not found: run scripts\/setup\.sh/);
});

t.test('commands, files and the network of a VM', async (t) => {
  // The host's loopback service the guest may reach: it answers each line with "pong <line>".
  const server = createServer((sock) => {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => sock.end(`pong ${d.trim()}\n`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as AddressInfo).port;

  const vm = await Vm.up(t, 'vm-ground', { forward: port });
  t.comment(`qemu start → systemd running: ${vm.info.bootMs} ms`);

  t.test('exit code, stdout, stderr and stdin come back', async (t) => {
    const res = await vm.exec(['bash', '-c', 'echo out; echo err >&2; wc -c; exit 7'], { input: 'twelve bytes' });
    t.same(res, { code: 7, stdout: 'out\n12\n', stderr: 'err\n' });
    t.equal((await vm.check(['cat', '/proc/sys/kernel/osrelease'])).trim().length > 0, true, 'the guest has its own kernel');
  });

  t.test('a command that outlives its timeout is ended with 124', async (t) => {
    const res = await vm.exec(['sleep', '600'], { timeoutMs: 3_000 });
    t.equal(res.code, 124);
  });

  t.test('a file copied in arrives whole', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'nha-vm-cp-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const data = randomBytes(4 << 20);
    writeFileSync(join(dir, 'blob'), data);
    await vm.copyIn(join(dir, 'blob'), '/var/tmp/blob');
    const sum = (await vm.check(['sha256sum', '/var/tmp/blob'])).split(' ')[0];
    t.equal(sum, createHash('sha256').update(data).digest('hex'));
  });

  t.test('the guest reaches the forwarded loopback port and nothing else of the host', async (t) => {
    const through = await vm.exec(['bash', '-c', `exec 3<>/dev/tcp/${FORWARD_ADDRESS}/${port}; echo hello >&3; cat <&3`], { timeoutMs: 60_000 });
    t.same(through, { code: 0, stdout: 'pong hello\n', stderr: '' }, `${FORWARD_ADDRESS}:${port} is the host's 127.0.0.1:${port}`);
    // The same port on the host's side of the user-mode network: restrict=on drops it.
    const direct = await vm.exec(['bash', '-c', `exec 3<>/dev/tcp/10.0.2.2/${port}`], { timeoutMs: 20_000 });
    t.not(direct.code, 0, 'the host is not reachable at 10.0.2.2');
  });

  t.test('a reboot from inside comes back in the same qemu with a new boot ID', async (t) => {
    const bootId = (await vm.check(['cat', '/proc/sys/kernel/random/boot_id'])).trim();
    await vm.check(['systemd-run', '--quiet', '--on-active=1', 'systemctl', 'reboot']);
    // A command caught by the reboot is never answered: each try gives up after its own timeout.
    const next = await waitFor('the guest back with a new boot ID', async () => {
      const r = await vm.exec(['bash', '-c', 'systemctl is-system-running --wait >/dev/null; cat /proc/sys/kernel/random/boot_id'], { timeoutMs: 15_000 }).catch(() => undefined);
      const id = r?.stdout.trim();
      return id && id !== bootId ? id : undefined;
    }, 300_000, 1000);
    t.not(next, bootId);
    t.doesNotThrow(() => process.kill(vm.info.pid, 0), 'the same qemu process');
  });

  t.test('down stops qemu and removes the VM', async (t) => {
    await vm.down();
    t.throws(() => process.kill(vm.info.pid, 0), { code: 'ESRCH' }, 'qemu is gone');
    const list = spawnSync('bash', [vmScript, 'list'], { encoding: 'utf8' });
    t.notMatch(list.stdout, new RegExp(`^${vm.name}$`, 'm'));
  });
});
