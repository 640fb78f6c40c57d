// Faults of a real Kubernetes node (the VM ground's kubelet joined to the test cluster, the agent installed
// from the .deb): a hung containerd (SIGSTOP) is restarted by the agent over D-Bus while the running pod
// keeps its processes; the pressure probe reads PSI of the real kubelet's kubepods cgroup and its figures
// move when a pod thrashes its memory limit; a real ext4 error on a filesystem mounted errors=remount-ro
// makes the kernel remount it read-only, and the agent sets ReadonlyFilesystem on the Node from the
// kernel's own lines. One VM serves every subtest, in this order: the read-only condition stays True
// until a reboot, so it comes last.
import t from 'tap';
import { waitFor, type EventView } from '../helpers/cluster';
import { agentNode, agentStatus, LOCAL_IMAGES, type VmAgentStatus } from '../helpers/vm';

/** Node Ready, a pod Running, a fault → the agent's verdict, under TCG (code runs 5–20× slower than the host). */
const TIMEOUT_MS = 300_000;

// Quicker containerd verdicts than the shipped ones (1 min of failure before a restart, 2 min back-off),
// with the shipped cooldown for a containerd that takes long to come back under TCG. The read-only probe
// is off: it would set ReadonlyFilesystem too (after two 30 s runs), and this test is about the kernel's
// lines. Metrics are off: nothing here reads them.
const CONFIG = `[metrics]
enabled = false
[containerd]
interval = 2s
timeout = 5s
failure_duration = 10s
cooldown = 60s
backoff = 10s
[readonly]
enabled = false
`;

interface PodView {
  status?: {
    phase?: string;
    conditions?: Array<{ type: string; status: string }>;
    containerStatuses?: Array<{ ready: boolean; restartCount: number; containerID?: string }>;
  };
}

// Longer than the runner's default: a boot, a kubelet start and a package install under TCG on a loaded 2-core machine.
t.setTimeout(40 * 60_000);

t.test('faults of a real node', async (t) => {
  const { cluster, vm, node, ready } = await agentNode(t, 'vm-faults', CONFIG);
  const events = async (reason: string): Promise<EventView[]> => (await cluster.events(node)).filter((e) => e.reason === reason);
  const pod = async (name: string): Promise<PodView> => (await cluster.admin<PodView>('GET', `/api/v1/namespaces/default/pods/${name}`)).body;
  const podReady = (p: PodView): boolean =>
    p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
  /** Creates a busybox pod on the node (no kube-scheduler: it names its node) and waits until it is Running and Ready. */
  const runPod = async (name: string, command: string[], extra: { resources?: unknown; volumes?: unknown[]; volumeMounts?: unknown[] } = {}): Promise<void> => {
    const created = await cluster.admin('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        nodeName: node,
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name,
            image: LOCAL_IMAGES.busybox,
            imagePullPolicy: 'Never',
            command,
            ...(extra.resources ? { resources: extra.resources } : {}),
            ...(extra.volumeMounts ? { volumeMounts: extra.volumeMounts } : {}),
          },
        ],
        ...(extra.volumes ? { volumes: extra.volumes } : {}),
      },
    });
    if (created.status !== 201) throw new Error(`pod ${name} not created: ${created.status} ${JSON.stringify(created.body)}`);
    await waitFor(`pod ${name} Running and Ready`, async () => (podReady(await pod(name)) ? true : undefined), TIMEOUT_MS, 2000);
  };

  t.test('a hung containerd (SIGSTOP) is restarted by the agent and the running pod survives it', async (t) => {
    // A sleep no other process on the node runs: the container's process, found by its command line.
    await runPod('steady', ['sh', '-c', 'exec sleep 86399']);
    /** The processes a pod lives in, which containerd does not own: the container, its sandbox, the runc shims. */
    const podProcesses = async (): Promise<{ container: string; pause: string; shims: string }> => {
      const [container, pause, shims] = await Promise.all(
        ["pgrep -xf 'sleep 86399'", 'pgrep -x pause', 'pgrep -f [c]ontainerd-shim-runc-v2'].map(async (cmd) =>
          (await vm.sh(cmd)).trim().split('\n').sort().join(' '),
        ),
      );
      return { container: container ?? '', pause: pause ?? '', shims: shims ?? '' };
    };
    const before = await podProcesses();
    t.comment(`pod processes before: ${JSON.stringify(before)}`);
    const containerd = async (): Promise<string> => (await vm.check(['systemctl', 'show', '-p', 'MainPID', '--value', 'containerd'])).trim();
    const hungPid = await containerd();
    const restartedBefore = (await events('ContainerdRestarted')).length;
    const since = (await vm.check(['date', '+%Y-%m-%d %H:%M:%S'])).trim();

    await vm.check(['kill', '-STOP', hungPid]);
    const restarted = await waitFor('ContainerdRestarted on the Node', async () => {
      const e = (await events('ContainerdRestarted')).slice(restartedBefore);
      return e.length > 0 ? e : undefined;
    }, TIMEOUT_MS, 2000);
    t.comment(`the agent's event: ${restarted[0]?.message ?? ''}`);
    t.match(restarted[0]?.message, new RegExp(`main PID ${hungPid} → \\d+`), 'the event names the hung process it replaced');
    const newPid = await containerd();
    t.not(newPid, hungPid, 'a new containerd process');
    // The agent saw it unresponsive before it acted: the condition turned True (its journal logs each change).
    const log = await vm.check(['journalctl', '-u', 'node-health-agent', '--since', since, '--no-pager', '-o', 'cat']);
    t.match(log, /condition ContainerRuntimeUnhealthy is now True/, 'ContainerRuntimeUnhealthy turned True while containerd was stopped');

    const healthy = await waitFor('ContainerRuntimeUnhealthy False again on the Node', async () => {
      const c = await cluster.condition(node, 'ContainerRuntimeUnhealthy');
      return c?.status === 'False' ? c : undefined;
    }, TIMEOUT_MS, 2000);
    t.equal(healthy.reason, 'ContainerRuntimeIsHealthy');
    const tasks = await vm.check(['ctr', '-n', 'k8s.io', 'tasks', 'ls'], { timeoutMs: 60_000 });
    t.match(tasks, /RUNNING/, 'containerd answers again and lists the running tasks');
    await waitFor(`Node ${node} Ready`, async () => (await ready()) || undefined, TIMEOUT_MS, 2000);
    const after = await waitFor('pod steady Running and Ready after the restart', async () => {
      const p = await pod('steady');
      return podReady(p) ? p : undefined;
    }, TIMEOUT_MS, 2000);
    t.equal(after.status?.containerStatuses?.[0]?.restartCount, 0, 'the container was never restarted');
    t.same(await podProcesses(), before, 'the container, its sandbox and the shims kept their PIDs');
  });

  t.test('PSI of the kubepods cgroup is read from the real kubelet\'s hierarchy and moves under memory pressure', async (t) => {
    const cgroup = '/sys/fs/cgroup/kubepods.slice';
    t.match(await vm.check(['cat', `${cgroup}/memory.pressure`]), /^full avg10=/m, 'the kubelet made kubepods.slice, with PSI');
    /** The agent's figures for the kubepods cgroup (the pressure check's findings, refreshed every 10 s). */
    const kubepods = async (): Promise<{ memory: { avg10: number; avg60: number }; io: string }> => {
      const s: VmAgentStatus = await agentStatus(vm);
      const finding = (subject: string) => s.checks.find((c) => c.check === 'pressure' && c.subject === subject);
      const memory = finding('kubepods/memory');
      const io = finding('kubepods/io');
      if (!memory || !io) throw new Error(`no kubepods pressure findings: ${JSON.stringify(s.checks.filter((c) => c.check === 'pressure'))}`);
      const m = /full avg10 (<?[\d.]+)%, avg60 (<?[\d.]+)%/.exec(memory.message);
      if (!m) throw new Error(`unexpected kubepods/memory message: ${memory.message}`);
      // "<0.1%" is a stall above zero too small to print.
      const value = (s: string): number => (s.startsWith('<') ? 0.01 : Number(s));
      return { memory: { avg10: value(m[1] as string), avg60: value(m[2] as string) }, io: io.message };
    };
    const quiet = await waitFor('the kubepods pressure findings', kubepods, TIMEOUT_MS, 2000);
    t.comment(`kubepods before: memory full avg10 ${quiet.memory.avg10}%, avg60 ${quiet.memory.avg60}%; ${quiet.io}`);
    const totalBefore = Number(/^full .* total=(\d+)$/m.exec(await vm.check(['cat', `${cgroup}/memory.pressure`]))?.[1]);

    // A pod that rereads a file three times its memory limit: its page cache is reclaimed inside its own
    // memory cgroup on every pass, and reclaim and refaults are memory stalls, counted up to kubepods.
    await runPod('thrash', ['sh', '-c', 'dd if=/dev/zero of=/data/f bs=1M count=96 2>/dev/null; while :; do cat /data/f > /dev/null; done'], {
      resources: { limits: { memory: '32Mi' }, requests: { memory: '32Mi' } },
      volumes: [{ name: 'data', hostPath: { path: '/var/tmp/thrash', type: 'DirectoryOrCreate' } }],
      volumeMounts: [{ name: 'data', mountPath: '/data' }],
    });
    const loaded = await waitFor('kubepods memory pressure above the quiet figure', async () => {
      const k = await kubepods();
      return k.memory.avg10 > quiet.memory.avg10 && k.memory.avg60 > quiet.memory.avg60 ? k : undefined;
    }, TIMEOUT_MS, 5000);
    t.comment(`kubepods under load: memory full avg10 ${loaded.memory.avg10}%, avg60 ${loaded.memory.avg60}%; ${loaded.io}`);
    const totalAfter = Number(/^full .* total=(\d+)$/m.exec(await vm.check(['cat', `${cgroup}/memory.pressure`]))?.[1]);
    t.ok(totalAfter > totalBefore, `the kernel counted the stalls in kubepods.slice (full total ${totalBefore} → ${totalAfter} µs)`);
    // Not left to load the node for the next subtest.
    const deleted = await cluster.admin('DELETE', '/api/v1/namespaces/default/pods/thrash?gracePeriodSeconds=0');
    t.equal(deleted.status, 200, 'pod thrash deleted');
  });

  t.test('a real ext4 error on a filesystem mounted errors=remount-ro sets ReadonlyFilesystem on the Node', async (t) => {
    const marker = `node-health test error ${process.pid}`;
    // trigger_fs_error (fs/ext4/sysfs.c) makes ext4 report an error through its own error path, as a
    // corrupt block would: the kernel prints "EXT4-fs error", aborts the journal and remounts read-only.
    const dev = (
      await vm.sh(
        [
          'set -e',
          'truncate -s 64M /var/tmp/ro.img',
          'loop=$(losetup -f --show /var/tmp/ro.img)',
          'mkfs.ext4 -q $loop',
          'mkdir -p /mnt/ro && mount -o errors=remount-ro $loop /mnt/ro',
          'echo data > /mnt/ro/f && sync',
          'dev=${loop#/dev/}',
          '[ -e /sys/fs/ext4/$dev/trigger_fs_error ] || { echo "this kernel has no /sys/fs/ext4/$dev/trigger_fs_error" >&2; exit 3; }',
          `printf %s '${marker}' > /sys/fs/ext4/$dev/trigger_fs_error`,
          'echo $dev',
        ].join('\n'),
        { timeoutMs: 300_000 },
      )
    ).trim();
    t.teardown(() => vm.exec(['bash', '-c', 'umount /mnt/ro; losetup -D'], { timeoutMs: 120_000 }));
    const kernel = await waitFor('the kernel\'s lines for the error', async () => {
      const out = await vm.check(['journalctl', '--no-pager', '-o', 'cat', '_TRANSPORT=kernel', 'SYSLOG_FACILITY=0', '--grep', `\\(${dev}\\)|device ${dev}`]);
      return out.includes('Remounting filesystem read-only') ? out : undefined;
    }, 60_000, 1000);
    t.comment(`the kernel's lines: ${kernel.trim().split('\n').join(' | ')}`);
    t.match(kernel, new RegExp(`EXT4-fs error \\(device ${dev}\\): .*${marker}`), 'the kernel printed the ext4 error');
    const write = await vm.exec(['touch', '/mnt/ro/g']);
    t.match(write.stderr, /Read-only file system/, 'writes fail with EROFS');

    const c = await waitFor('ReadonlyFilesystem True on the Node', async () => {
      const cond = await cluster.condition(node, 'ReadonlyFilesystem');
      return cond?.status === 'True' ? cond : undefined;
    }, TIMEOUT_MS, 2000);
    t.comment(`ReadonlyFilesystem: ${c.reason}: ${c.message}`);
    // The journal abort and the remount both set it (rules FilesystemIsReadOnly and Jbd2JournalAborted).
    t.match(c.reason, /^(FilesystemIsReadOnly|FilesystemJournalAborted)$/, 'set by a kernel-line rule');
    t.match(c.message, new RegExp(`Remounting filesystem read-only|Aborting journal on device ${dev}`), 'carrying the kernel\'s line');
    const ext4 = await waitFor('an Ext4Error Event on the Node', async () => {
      const e = (await events('Ext4Error')).filter((ev) => ev.message.includes(marker));
      return e.length > 0 ? e : undefined;
    }, TIMEOUT_MS, 2000);
    t.match(ext4[0]?.message, new RegExp(`EXT4-fs error \\(device ${dev}\\)`));
  });
});
