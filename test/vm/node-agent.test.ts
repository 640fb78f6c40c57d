// The installed .deb on a real Kubernetes node (the VM ground's kubelet joined to the test cluster): the
// agent finds the kubelet's kubeconfig and reports on the Node with its credentials; a pod over its
// memory limit is OOM-killed by the kernel and the agent raises OOMKilling on the Node once per kill; a
// hung kubelet (SIGSTOP) is restarted by the agent over D-Bus, a killed one that systemd does not bring
// back is started, and the Node is Ready again; a kubelet stopped on purpose is reported, never started.
import t from 'tap';
import { waitFor, type EventView } from '../helpers/cluster';
import { agentNode, LOCAL_IMAGES } from '../helpers/vm';

/** Kubelet start → Node Ready, kernel line → event, under TCG (code runs 5–20× slower than the host). */
const TIMEOUT_MS = 300_000;
/** The agent's event aggregation window ([journal] event_window, 1m by default). */
const AGGREGATION_WINDOW_MS = 60_000;

// Quicker kubelet verdicts than the defaults (3 min of failure before a restart), with room for a
// kubelet that takes long to start under TCG.
const CONFIG = `[metrics]
enabled = false
[kubelet]
interval = 2s
timeout = 5s
failure_duration = 10s
cooldown = 60s
backoff = 10s
max_repairs = 5
`;

interface PodView {
  status?: { phase?: string; containerStatuses?: Array<{ state?: { terminated?: { reason?: string } } }> };
}

// Longer than the runner's default: a boot, a kubelet start and a package install under TCG on a loaded 2-core machine.
t.setTimeout(40 * 60_000);

t.test('the agent on a real node', async (t) => {
  const { cluster, vm, node, ready } = await agentNode(t, 'vm-agent', CONFIG);
  const events = async (reason: string): Promise<EventView[]> => (await cluster.events(node)).filter((e) => e.reason === reason);

  t.test("the agent reports on the Node with the kubelet's credentials", async (t) => {
    const healthy = await waitFor('KubeletUnhealthy False from the agent', async () => {
      const c = await cluster.condition(node, 'KubeletUnhealthy');
      return c?.status === 'False' ? c : undefined;
    }, TIMEOUT_MS, 2000);
    t.equal(healthy.reason, 'KubeletIsHealthy');
    const runtime = await cluster.condition(node, 'ContainerRuntimeUnhealthy');
    t.equal(runtime?.status, 'False', `containerd healthy to the agent (${runtime?.reason ?? 'absent'})`);
  });

  t.test('a pod over its memory limit is OOM-killed and the agent raises OOMKilling once', async (t) => {
    const before = (await events('OOMKilling')).length;
    const created = await cluster.admin('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'hog' },
      spec: {
        nodeName: node,
        automountServiceAccountToken: false,
        restartPolicy: 'Never',
        containers: [
          {
            name: 'hog',
            image: LOCAL_IMAGES.busybox,
            imagePullPolicy: 'Never',
            // A string that doubles until the memory cgroup's limit is hit.
            command: ['sh', '-c', 'x=0123456789abcdef; while :; do x=$x$x; done'],
            resources: { limits: { memory: '32Mi' }, requests: { memory: '32Mi' } },
          },
        ],
      },
    });
    t.equal(created.status, 201, created.status === 201 ? 'pod hog created' : JSON.stringify(created.body));
    const pod = await waitFor('pod hog terminated', async () => {
      const r = await cluster.admin<PodView>('GET', '/api/v1/namespaces/default/pods/hog');
      return r.body.status?.phase === 'Failed' ? r.body : undefined;
    }, TIMEOUT_MS, 2000);
    t.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.reason, 'OOMKilled', 'the kubelet saw an OOM kill');
    const seen = await waitFor('OOMKilling on the Node', async () => {
      const e = (await events('OOMKilling')).slice(before);
      return e.length > 0 ? e : undefined;
    }, TIMEOUT_MS, 2000);
    t.match(seen[0]?.message, /Killed process \d+ \(sh\)/, 'the event carries the kernel\'s line');
    // One aggregation window later: an event per kernel line (the kernel prints three or more per kill)
    // would have come by now.
    await new Promise((r) => setTimeout(r, AGGREGATION_WINDOW_MS + 10_000));
    const after = (await events('OOMKilling')).slice(before);
    const killed = await vm.check(['journalctl', '-k', '--no-pager', '-o', 'cat', '--grep', 'Killed process \\d+ \\(sh\\)']);
    const groupKill = /memory\.oom\.group set/.test(await vm.check(['journalctl', '-k', '--no-pager', '-o', 'cat', '--grep', 'oom.group']).catch(() => ''));
    t.comment(`the kernel's lines for the kill: ${killed.trim().split('\n').length}; memory.oom.group kill: ${groupKill}`);
    // The kubelet sets memory.oom.group on cgroup v2: the kernel then prints the victim's "Killed process"
    // line twice (once as the victim, once as a member of the group); the shipped rule counts it once.
    t.equal(after.length, 1, `one OOMKilling Event (${after.map((e) => e.message).join(' | ')})`);
    t.equal(after[0]?.count ?? 1, 1, 'counted once');
  });

  const mainPid = async (): Promise<string> => (await vm.check(['systemctl', 'show', '-p', 'MainPID', '--value', 'kubelet'])).trim();

  t.test('a hung kubelet (SIGSTOP) is restarted by the agent and the Node is Ready again', async (t) => {
    const pid = await mainPid();
    const before = (await events('KubeletRestarted')).length;
    await vm.check(['kill', '-STOP', pid]);
    const restarted = await waitFor('KubeletRestarted on the Node', async () => {
      const e = (await events('KubeletRestarted')).slice(before);
      return e.length > 0 ? e : undefined;
    }, TIMEOUT_MS, 2000);
    t.comment(`the agent's event: ${restarted[0]?.message ?? ''}`);
    t.not(await mainPid(), pid, 'a new kubelet process');
    await waitFor(`Node ${node} Ready again`, async () => (await ready()) || undefined, TIMEOUT_MS, 2000);
    const healthy = await waitFor('KubeletUnhealthy False again', async () => {
      const c = await cluster.condition(node, 'KubeletUnhealthy');
      return c?.status === 'False' ? c : undefined;
    }, TIMEOUT_MS, 2000);
    t.equal(healthy.reason, 'KubeletIsHealthy');
  });

  t.test('a killed kubelet that systemd does not restart is started by the agent', async (t) => {
    // kubeadm's unit restarts a killed kubelet itself (Restart=always) and the agent stands aside; a
    // unit without Restart= stays failed: that one is the agent's to start.
    await vm.sh('mkdir -p /run/systemd/system/kubelet.service.d && printf "[Service]\\nRestart=no\\n" > /run/systemd/system/kubelet.service.d/50-no-restart.conf && systemctl daemon-reload');
    t.teardown(() => vm.exec(['bash', '-c', 'rm -rf /run/systemd/system/kubelet.service.d && systemctl daemon-reload']));
    const pid = await mainPid();
    const before = (await events('KubeletStarted')).length;
    await vm.check(['kill', '-KILL', pid]);
    const started = await waitFor('KubeletStarted on the Node', async () => {
      const e = (await events('KubeletStarted')).slice(before);
      return e.length > 0 ? e : undefined;
    }, TIMEOUT_MS, 2000);
    t.comment(`the agent's event: ${started[0]?.message ?? ''}`);
    t.not(await mainPid(), pid, 'a new kubelet process');
    await waitFor(`Node ${node} Ready again`, async () => (await ready()) || undefined, TIMEOUT_MS, 2000);
  });

  t.test('a kubelet stopped on purpose is reported and left stopped', async (t) => {
    await vm.check(['systemctl', 'stop', 'kubelet']);
    const stopped = await waitFor('KubeletUnhealthy True (KubeletStopped)', async () => {
      const c = await cluster.condition(node, 'KubeletUnhealthy');
      return c?.status === 'True' && c.reason === 'KubeletStopped' ? c : undefined;
    }, TIMEOUT_MS, 2000);
    t.match(stopped.message, /stopped/);
    // Longer than failure_duration and the back-off: a repair would have come by now.
    await new Promise((r) => setTimeout(r, 30_000));
    t.equal((await vm.exec(['systemctl', 'is-active', 'kubelet'])).stdout.trim(), 'inactive', 'the agent did not start it');
    await vm.check(['systemctl', 'start', 'kubelet']);
    await waitFor(`Node ${node} Ready again`, async () => (await ready()) || undefined, TIMEOUT_MS, 2000);
  });
});
