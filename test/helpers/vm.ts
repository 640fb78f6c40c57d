// Nodes in a VM for tests that need a real kernel (cgroup v2, kernel lines, OOM kills, hung tasks): a
// Debian 12 guest under qemu booted by scripts/vm/vm.sh (see docs/testing.md). Like a box, a host that
// cannot run VMs makes Vm.up throw with the reason, so a missing prerequisite fails the test.
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { runScript, type ExecOptions, type ExecResult, type TeardownHost } from './box';
import { Cluster, waitFor } from './cluster';
import type { AgentStatus } from '../../src/types';

export const vmScript = join(__dirname, '../../scripts/vm/vm.sh');

/** A cold image build (minutes) plus a boot under TCG on a loaded 2-core machine. */
const UP_TIMEOUT_MS = 20 * 60_000;

export interface VmOptions {
  /** A port on the host's loopback the guest reaches at FORWARD_ADDRESS:port. */
  forward?: number;
  /** The guest's architecture (default amd64); arm64 runs under qemu-system-aarch64, without the kubelet. */
  arch?: 'amd64' | 'arm64';
}

/** Where the guest reaches the forwarded host port (vm.sh up --forward). */
export const FORWARD_ADDRESS = '10.0.2.100';

/** What `vm.sh status` reports about a running VM. */
export interface VmInfo {
  pid: number;
  dir: string;
  console: string;
  /** Milliseconds from starting qemu to the guest's systemd reporting running. */
  bootMs: number;
}

let counter = 0;

export class Vm {
  private stopped = false;

  private constructor(
    readonly name: string,
    readonly info: VmInfo,
  ) {}

  /** Boots a VM named `<prefix>-<pid>-<n>` and stops it when test `t` ends; returns once systemd runs. */
  static async up(t: TeardownHost, prefix: string, opts: VmOptions = {}): Promise<Vm> {
    const name = `${prefix}-${process.pid}-${++counter}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63);
    // Registered first: vm.sh removes a VM that failed to boot, but not one whose `up` was interrupted.
    let vm: Vm | undefined;
    t.teardown(() => (vm ? vm.down() : runScript(vmScript, ['down', name])));
    const args = ['up', name, ...(opts.arch ? ['--arch', opts.arch] : []), ...(opts.forward ? ['--forward', String(opts.forward)] : [])];
    const up = await runScript(vmScript, args, undefined, UP_TIMEOUT_MS);
    if (up.code !== 0) throw new Error(`VM ${name} did not come up (vm.sh exit ${up.code}): ${up.stderr.trim()}`);
    const status = await runScript(vmScript, ['status', name]);
    if (status.code !== 0) throw new Error(`VM ${name}: vm.sh status failed: ${status.stderr.trim()}`);
    vm = new Vm(name, parseStatus(status.stdout));
    return vm;
  }

  /** Runs `cmd` in the VM as root; a non-zero exit is returned, not thrown (default timeout 120 s). */
  async exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const argv = env.length > 0 ? ['env', ...env, ...cmd] : cmd;
    const seconds = String(Math.ceil(timeoutMs / 1000));
    // The guest ends the command at the timeout; the host waits a little longer for that answer.
    const res = await runScript(vmScript, ['exec', this.name, '--timeout', seconds, '--', ...argv], opts.input ?? '', timeoutMs + 40_000);
    // 125 with vm's own message: the command did not run or never answered.
    if (res.code === 125 && res.stderr.startsWith('vm: ')) throw new Error(`VM ${this.name}: ${res.stderr.trim()}`);
    return res;
  }

  /** Runs `cmd` in the VM and returns its stdout; throws with its stderr when it exits non-zero. */
  async check(cmd: string[], opts: ExecOptions = {}): Promise<string> {
    const res = await this.exec(cmd, opts);
    if (res.code !== 0) throw new Error(`VM ${this.name}: ${cmd.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
    return res.stdout;
  }

  /** Runs a bash script in the VM and returns its stdout; throws when it exits non-zero. */
  async sh(script: string, opts: ExecOptions = {}): Promise<string> {
    return this.check(['bash', '-c', script], opts);
  }

  /** Copies the host file `src` to `dest` in the VM (a path, or an existing directory). */
  async copyIn(src: string, dest: string): Promise<void> {
    const res = await runScript(vmScript, ['cp', this.name, src, dest], undefined, 300_000);
    if (res.code !== 0) throw new Error(`VM ${this.name}: copying ${src} to ${dest} failed: ${res.stderr.trim()}`);
  }

  /** Stops qemu and removes the overlay and state. Safe to call twice. */
  async down(): Promise<void> {
    if (this.stopped) return;
    const res = await runScript(vmScript, ['down', this.name], undefined, 60_000);
    if (res.code !== 0) throw new Error(`VM ${this.name}: teardown failed: ${res.stderr.trim()}`);
    this.stopped = true;
  }
}

function parseStatus(text: string): VmInfo {
  const info: VmInfo = { pid: 0, dir: '', console: '', bootMs: 0 };
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'pid') info.pid = Number(value);
    else if (key === 'boot_ms') info.bootMs = Number(value);
    else if (key === 'dir' || key === 'console') info[key] = value;
  }
  if (!(info.pid > 0 && info.dir && info.console)) throw new Error(`vm.sh status printed an incomplete status: ${JSON.stringify(text)}`);
  return info;
}

/** The names of the local images the VM image imports into containerd (scripts/vm/customize.sh). */
export const LOCAL_IMAGES = { pause: 'localhost/node-health/pause:1', busybox: 'localhost/node-health/busybox:1' };

/**
 * Makes the VM the test cluster's Node `node` with a real kubelet: the node's credentials from
 * `cluster.sh node` (a client certificate of the cluster's CA, CN system:node:NODE, O system:nodes), a
 * kubeconfig that reaches the API server through the VM's forward (`Vm.up(t, …, { forward: clusterPort(cluster) })`),
 * the hostname set to the Node's name, then `systemctl start kubelet`. Returns without waiting for Ready.
 */
export async function joinKubelet(vm: Vm, cluster: Cluster, node: string): Promise<void> {
  await cluster.addNode(node);
  const root = cluster.nodeRoot(node);
  const port = clusterPort(cluster);
  // The API server's certificate names 127.0.0.1 and localhost, not the forward's address.
  const kubeconfig = readFileSync(cluster.kubeletConf(node), 'utf8').replace(
    /^(\s*)server: .*$/m,
    `$1server: https://${FORWARD_ADDRESS}:${port}\n$1tls-server-name: localhost`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'nha-vm-kubelet-'));
  try {
    writeFileSync(join(dir, 'kubelet.conf'), kubeconfig, { mode: 0o600 });
    await vm.copyIn(join(dir, 'kubelet.conf'), '/var/tmp/kubelet.conf');
    await vm.copyIn(join(root, 'etc/kubernetes/pki/ca.crt'), '/var/tmp/ca.crt');
    await vm.copyIn(realpathSync(join(root, 'var/lib/kubelet/pki/kubelet-client-current.pem')), '/var/tmp/kubelet-client.pem');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await vm.sh(
    [
      'set -e',
      'install -D -m 0600 /var/tmp/kubelet-client.pem /var/lib/kubelet/pki/kubelet-client-current.pem',
      'install -m 0644 /var/tmp/ca.crt /etc/kubernetes/pki/ca.crt',
      // Last: the kubelet's unit starts only once this file exists.
      'install -m 0600 /var/tmp/kubelet.conf /etc/kubernetes/kubelet.conf',
      `hostnamectl set-hostname ${node}`,
      'systemctl start kubelet.service',
    ].join('\n'),
  );
}

/** The host port of the cluster's API server: the one the VM forwards. */
export function clusterPort(cluster: Cluster): number {
  return Number(new URL(cluster.server).port);
}

/** The installed agent's live state in the VM (its status socket); throws while it does not answer. */
export async function agentStatus(vm: Vm): Promise<AgentStatus> {
  return JSON.parse(await vm.check(['node-health-agent', 'status', '--json'])) as AgentStatus;
}

/** A real node of the test cluster: the VM's kubelet joined and Ready (readyNode). */
export interface ReadyNode {
  cluster: Cluster;
  vm: Vm;
  /** The Node's name (the guest's hostname). */
  node: string;
  /** Whether the Node's Ready condition is True now. */
  ready(): Promise<boolean>;
  /** Milliseconds from `systemctl start kubelet` to the Node Ready. */
  readyMs: number;
}

/** Kubelet start → Node Ready under TCG on a loaded 2-core machine. */
const NODE_READY_TIMEOUT_MS = 300_000;

/**
 * Boots a VM that joins a fresh test cluster as Node `<prefix>-<pid>` with the real kubelet, waits for it
 * to be Ready and starts kube-controller-manager (its ServiceAccount controller makes the "default"
 * account pods are admitted with). Booting and joining cost minutes under TCG: the tests of a real node
 * share one (test/vm/node.test.ts).
 */
export async function readyNode(t: TeardownHost, prefix: string): Promise<ReadyNode> {
  const node = `${prefix}-${process.pid}`;
  const cluster = await Cluster.up(t, []);
  const vm = await Vm.up(t, prefix, { forward: clusterPort(cluster) });
  const started = Date.now();
  await joinKubelet(vm, cluster, node);
  const ready = async (): Promise<boolean> => (await cluster.condition(node, 'Ready'))?.status === 'True';
  await waitFor(`Node ${node} Ready`, async () => (await ready()) || undefined, NODE_READY_TIMEOUT_MS, 2000).catch(async (err: unknown) => {
    const log = await vm.exec(['journalctl', '-u', 'kubelet', '-n', '40', '--no-pager']);
    throw new Error(`${String(err)}; the kubelet's journal:\n${log.stdout}`);
  });
  const readyMs = Date.now() - started;
  await cluster.startControllerManager();
  return { cluster, vm, node, ready, readyMs };
}

/**
 * Writes `config` as /etc/node-health/50-vm-test.ini and installs the .deb `deb` with `dpkg -i` (the
 * package starts the shipped unit, which finds the kubelet's kubeconfig on a joined node).
 */
export async function installAgent(vm: Vm, deb: string, config: string): Promise<void> {
  await vm.sh('umask 022; mkdir -p /etc/node-health && cat > /etc/node-health/50-vm-test.ini', { input: config });
  await vm.copyIn(deb, '/var/tmp/');
  await vm.check(['dpkg', '-i', `/var/tmp/${basename(deb)}`], { timeoutMs: 600_000 });
}

/** The guest's current boot ID (a reboot gives a new one). */
export async function bootId(vm: Vm): Promise<string> {
  return (await vm.check(['cat', '/proc/sys/kernel/random/boot_id'])).trim();
}

/**
 * Waits for the guest to come back from a reboot (inside the same qemu) and returns its new boot ID. A
 * command caught by the reboot is never answered: each try gives up after its own timeout.
 */
export async function nextBoot(vm: Vm, before: string, timeoutMs: number): Promise<string> {
  return waitFor('the guest booted again (a new boot ID)', async () => {
    const r = await vm.exec(['cat', '/proc/sys/kernel/random/boot_id'], { timeoutMs: 20_000 });
    const id = r.stdout.trim();
    return r.code === 0 && id !== '' && id !== before ? id : undefined;
  }, timeoutMs, 3000);
}

export interface HungFilesystemOptions {
  /** Where the filesystem is mounted (created if missing); it hides what was there until resumed. */
  mountpoint: string;
  /** Without a journal no jbd2 thread hangs with it: only the tasks that wait for its writes do. */
  journal: boolean;
  /** MiB of dirty data written before the suspension: a `sync` then waits on them, and so does jbd2 with a journal. */
  dirtyMiB?: number;
}

/**
 * Makes writes to `mountpoint` hang on the guest's real kernel: an ext4 over a dm-linear target (a loop
 * file) mounted there, the target suspended with `dmsetup suspend --nolockfs`, which queues its I/O
 * instead of failing it. A task that waits for that I/O (fsync, an O_SYNC write, sync, a journal commit)
 * stays in D state, so with a lowered kernel.hung_task_timeout_secs the kernel reports it. O_DIRECT
 * writes do not serve: they wait with a timeout. Returns `resume`: lets the queued I/O through, unmounts
 * and removes the device; it is also registered on `t`, and a second call does nothing.
 */
export async function hangFilesystem(t: TeardownHost, vm: Vm, opts: HungFilesystemOptions): Promise<() => Promise<void>> {
  const img = '/var/tmp/nha-hung.img';
  const dm = 'nha-hung';
  const release = [
    `dmsetup resume ${dm}`,
    // The tasks that waited finish what they were writing there first (the filesystem is busy till then).
    `timeout 60 bash -c 'until umount ${opts.mountpoint} 2>/dev/null; do sleep 1; done' || umount ${opts.mountpoint}`,
    `dmsetup remove ${dm}`,
    `losetup -j ${img} -O NAME -n | xargs -r -n1 losetup -d`,
    `rm -f ${img}`,
  ];
  let resumed = false;
  const resume = async (): Promise<void> => {
    if (resumed) return;
    await vm.sh(['set -e', ...release].join('\n'), { timeoutMs: 120_000 });
    resumed = true;
  };
  // A failed set-up or test leaves nothing suspended: each step of the release is tried.
  t.teardown(() => (resumed ? undefined : vm.exec(['bash', '-c', release.join('; ')], { timeoutMs: 120_000 }).catch(() => undefined)));
  await vm.sh(
    [
      'set -e',
      `truncate -s 64M ${img}`,
      `loop=$(losetup -f --show ${img})`,
      `dmsetup create ${dm} --table "0 $(blockdev --getsz $loop) linear $loop 0"`,
      // Inode tables written now: the lazy-init thread would otherwise hang on the device too.
      `mkfs.ext4 -q -E lazy_itable_init=0 ${opts.journal ? '' : '-O ^has_journal'} /dev/mapper/${dm}`,
      `mkdir -p ${opts.mountpoint} && mount /dev/mapper/${dm} ${opts.mountpoint}`,
      // The directory, bitmaps and inode table in memory: a task then waits where it writes, not on
      // the first read of the filesystem's metadata.
      `mkdir ${opts.mountpoint}/.prime && echo x > ${opts.mountpoint}/.prime/x && sync -f ${opts.mountpoint} && rm -r ${opts.mountpoint}/.prime`,
      ...(opts.dirtyMiB ? [`dd if=/dev/zero of=${opts.mountpoint}/dirty bs=1M count=${opts.dirtyMiB} status=none`] : []),
      `dmsetup suspend --nolockfs ${dm}`,
    ].join('\n'),
    { timeoutMs: 300_000 },
  );
  return resume;
}
