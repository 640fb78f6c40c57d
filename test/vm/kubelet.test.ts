// A real node on the VM ground: the kubelet built from the same Kubernetes module as the test API server
// runs in the guest under systemd with a client certificate of the cluster's CA, joins through the VM's
// one forward and goes Ready; a pod of the local busybox image (no registry is reachable) runs in a pod
// sandbox of the local pause image, on the bridge network of Debian's CNI plugins, under cgroup v2; and
// kube-controller-manager, built from the same module and run on the host, computes a
// PodDisruptionBudget's status from the pod the real kubelet reports.
import t from 'tap';
import { Cluster, waitFor } from '../helpers/cluster';
import { clusterPort, joinKubelet, LOCAL_IMAGES, Vm } from '../helpers/vm';

/** Kubelet start → Node Ready under TCG, which runs code 5–20× slower than the host. */
const READY_TIMEOUT_MS = 300_000;

interface PodView {
  status?: {
    phase?: string;
    podIP?: string;
    containerStatuses?: Array<{ name: string; image: string; ready: boolean; state?: Record<string, unknown> }>;
  };
}

// Longer than the runner's default: a boot and a kubelet start under TCG on a loaded 2-core machine.
t.setTimeout(30 * 60_000);

t.test('the kubelet in the VM joins the test cluster and runs a pod of a local image', async (t) => {
  const node = `vm-kubelet-${process.pid}`;
  const cluster = await Cluster.up(t, []);
  const vm = await Vm.up(t, 'vm-kubelet', { forward: clusterPort(cluster) });
  t.comment(`qemu start → systemd running: ${vm.info.bootMs} ms`);

  t.test('the local images are in containerd before any pull', async (t) => {
    const images = await vm.check(['ctr', '-n', 'k8s.io', 'images', 'ls', '-q']);
    t.match(images, LOCAL_IMAGES.pause);
    t.match(images, LOCAL_IMAGES.busybox);
  });

  t.test('the Node goes Ready', async (t) => {
    const started = Date.now();
    await joinKubelet(vm, cluster, node);
    const ready = await waitFor(
      `Node ${node} Ready`,
      async () => {
        const c = await cluster.condition(node, 'Ready');
        return c?.status === 'True' ? c : undefined;
      },
      READY_TIMEOUT_MS,
      2000,
    ).catch(async (err: unknown) => {
      const log = await vm.exec(['journalctl', '-u', 'kubelet', '-n', '40', '--no-pager']);
      throw new Error(`${String(err)}; the kubelet's journal:\n${log.stdout}`);
    });
    t.comment(`kubelet start → Node Ready: ${Date.now() - started} ms`);
    t.equal(ready.reason, 'KubeletReady');
    const info = (await cluster.admin<{ status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string } } }>('GET', `/api/v1/nodes/${node}`)).body.status.nodeInfo;
    t.equal(info.kubeletVersion, 'v1.34.2', 'the kubelet built from the pinned module');
    t.match(info.containerRuntimeVersion, /^containerd:\/\//);
  });

  t.test('a pod of the local busybox image runs in the pause sandbox, on the pod network, under cgroup v2', async (t) => {
    // Its ServiceAccount controller makes the "default" account pods are admitted with.
    await cluster.startControllerManager();
    // No kube-scheduler: the pod names its node.
    const created = await cluster.admin('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'hello', labels: { app: 'hello' } },
      spec: {
        nodeName: node,
        automountServiceAccountToken: false,
        restartPolicy: 'Always',
        containers: [
          {
            name: 'hello',
            image: LOCAL_IMAGES.busybox,
            imagePullPolicy: 'Never',
            // What the container sees, written where the test reads it on the node.
            command: ['sh', '-c', 'cat /proc/self/cgroup > /out/cgroup; busybox | head -1 > /out/busybox; exec sleep 3600'],
            volumeMounts: [{ name: 'out', mountPath: '/out' }],
          },
        ],
        volumes: [{ name: 'out', hostPath: { path: '/var/tmp/hello', type: 'DirectoryOrCreate' } }],
      },
    });
    t.equal(created.status, 201, created.status === 201 ? 'pod hello created' : JSON.stringify(created.body));
    const started = Date.now();
    const pod = await waitFor(
      'pod hello Running',
      async () => {
        const r = await cluster.admin<PodView>('GET', '/api/v1/namespaces/default/pods/hello');
        return r.body.status?.phase === 'Running' && r.body.status.containerStatuses?.[0]?.ready ? r.body : undefined;
      },
      READY_TIMEOUT_MS,
      2000,
    ).catch(async (err: unknown) => {
      const r = await cluster.admin('GET', '/api/v1/namespaces/default/pods/hello');
      const log = await vm.exec(['journalctl', '-u', 'kubelet', '-u', 'containerd', '-n', '40', '--no-pager']);
      throw new Error(`${String(err)}; the pod: ${JSON.stringify(r.body)}; the journal:\n${log.stdout}`);
    });
    t.comment(`pod created → Running: ${Date.now() - started} ms`);
    t.match(pod.status?.podIP, /^10\.244\.0\.\d+$/, 'an address from the bridge network');
    t.match(pod.status?.containerStatuses?.[0]?.image, LOCAL_IMAGES.busybox);
    const out = await waitFor('the container output on the node', async () => {
      const r = await vm.exec(['cat', '/var/tmp/hello/cgroup', '/var/tmp/hello/busybox']);
      return r.code === 0 && r.stdout.includes('BusyBox') ? r.stdout : undefined;
    }, 60_000, 1000);
    t.match(out, /^0::\/\n/m, 'cgroup v2 with its own cgroup namespace');
    t.match(out, /BusyBox v\d/);
    const scope = await vm.sh("systemctl list-units --plain --no-legend 'cri-containerd-*.scope' | wc -l");
    t.ok(Number(scope.trim()) >= 2, 'the sandbox and the container in systemd scopes under kubepods.slice');
    t.match(await vm.sh('cat /proc/$(pgrep -xo pause)/cgroup'), /^0::\/kubepods\.slice\/.*\/cri-containerd-[0-9a-f]+\.scope$/m, 'the pause process in the kubepods slice');
  });

  t.test("the disruption controller counts the real node's pod in a PodDisruptionBudget", async (t) => {
    const created = await cluster.admin('POST', '/apis/policy/v1/namespaces/default/poddisruptionbudgets', {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'hello' },
      spec: { minAvailable: 1, selector: { matchLabels: { app: 'hello' } } },
    });
    t.equal(created.status, 201, created.status === 201 ? 'PDB hello created' : JSON.stringify(created.body));
    const status = await waitFor('PDB status from the controller', async () => {
      const r = await cluster.admin<{ status?: { observedGeneration?: number; currentHealthy: number; expectedPods: number; disruptionsAllowed: number } }>('GET', '/apis/policy/v1/namespaces/default/poddisruptionbudgets/hello');
      return r.body.status?.observedGeneration ? r.body.status : undefined;
    }, 60_000, 1000);
    t.match(status, { currentHealthy: 1, expectedPods: 1, disruptionsAllowed: 0 }, 'one healthy pod, none may be evicted');
  });
});
