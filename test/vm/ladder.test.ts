// The ladder for real: the installed .deb and its shipped unit on the VM ground's real node (a kubelet
// joined to the test cluster, kube-controller-manager and kube-scheduler on the host). On the node run a
// plain pod guarded by a PodDisruptionBudget whose status the disruption controller computes, a
// DaemonSet's pod (bound by the scheduler) and a static pod (the kubelet's staticPodPath; its mirror pod
// in the API). The kernel reports a hung filesystem journal thread (an ext4 over a suspended
// device-mapper target), which sets KernelDeadlock through the shipped rules; after `after` the agent
// takes the slot Lease, cordons, and drains through the Eviction API: the budget refuses (429) until the
// test relaxes it and the controller says so, then the pod is evicted and the kubelet ends it, while the
// DaemonSet and mirror pods stay. The agent reboots through logind: the guest restarts inside the same
// qemu process with a new boot ID, the kubelet comes back and the Node is Ready, the new boot clears
// KernelDeadlock, and the agent uncordons and gives the slot back. Every step is judged from the API
// server (the Node, pods, the budget, the Lease, Events, the API server's own request counts) and from
// the agent's ledger in the guest.
import { basename, join } from 'node:path';
import t from 'tap';
import { CORDONED_BY_AGENT } from '../../src/repair/ladder/cordon';
import { Cluster, waitFor, type ConditionView } from '../helpers/cluster';
import { ensurePackages } from '../helpers/packages';
import { runScript } from '../helpers/box';
import { bootId, clusterPort, hangFilesystem, joinKubelet, LOCAL_IMAGES, nextBoot, Vm, vmScript } from '../helpers/vm';

const repo = join(__dirname, '../..');
/** Kubelet start → Node Ready, a pod → Running, a reboot → Ready again, under TCG on a loaded 2-core machine. */
const TIMEOUT_MS = 600_000;
const TOKEN = '/etc/node-health/coordination.token';
const SLOT = 'node-health-repair-0';
const LEDGER = '/var/lib/node-health/ladder-ledger.jsonl';
/** The shortest `after` the schema takes. */
const AFTER_MS = 60_000;
/** How long the test keeps the budget refusing once the agent has been refused. */
const BLOCKED_MS = 20_000;

const INI = `[coordination]
enabled = true
token_file = ${TOKEN}
; The test's Node joined moments ago.
new_node_grace = 0s

[ladder]
enabled = true
drain_timeout = 10m
reboot_timeout = 5m
after_boot_timeout = 15m

[remediate "KernelDeadlock"]
after = 1m
steps = cordon, drain, reboot
`;

/** A busybox container that ends at once on SIGTERM (a shell as PID 1 ignores it otherwise). */
const container = (name: string) => ({
  name,
  image: LOCAL_IMAGES.busybox,
  imagePullPolicy: 'Never',
  command: ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"],
});

interface PodView {
  metadata: { name: string; uid: string; deletionTimestamp?: string; annotations?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string }> };
  spec: { nodeName?: string };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}

interface BudgetView {
  metadata: { generation: number };
  status?: { observedGeneration?: number; currentHealthy?: number; expectedPods?: number; disruptionsAllowed?: number; disruptedPods?: Record<string, string> };
}

interface LeaseView {
  metadata: { name: string };
  spec: { holderIdentity?: string; renewTime?: string };
}

interface NodeSpecView {
  metadata: { annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status?: { conditions?: ConditionView[]; nodeInfo?: { bootID?: string } };
}

interface LedgerRecord {
  kind: 'begin' | 'intent' | 'outcome' | 'end';
  run: string;
  at: string;
  step?: string;
  result?: string;
  detail?: string;
  durationMs?: number;
  bootId?: string;
  condition?: string;
}

// A boot, a kubelet join, a package install, a minute of `after`, a drain held by a budget and a reboot,
// all under TCG.
t.setTimeout(60 * 60_000);

t.test('the ladder on a real node: cordon, drain through the budget, reboot through logind, uncordon', async (t) => {
  const testStarted = Date.now();
  const { deb } = ensurePackages();
  const node = `vm-ladder-${process.pid}`;
  const mirror = `static-web-${node}`;
  const cluster = await Cluster.up(t, []);
  const vm = await Vm.up(t, 'vm-ladder', { forward: clusterPort(cluster) });
  await joinKubelet(vm, cluster, node);
  const get = async <T>(path: string): Promise<T> => {
    const r = await cluster.admin<T>('GET', path);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const nodeView = () => get<NodeSpecView>(`/api/v1/nodes/${node}`);
  const ready = (n: NodeSpecView) => n.status?.conditions?.find((c) => c.type === 'Ready');
  await waitFor(`Node ${node} Ready`, async () => (ready(await nodeView())?.status === 'True' ? true : undefined), TIMEOUT_MS, 2000);
  // The disruption, DaemonSet, node lifecycle and ServiceAccount controllers; the scheduler binds the
  // DaemonSet's pod.
  await cluster.startControllerManager();
  await cluster.startScheduler();
  const joinedAt = Date.now();

  // ── The workloads ────────────────────────────────────────────────────────────────────────────────
  const pod = async (name: string): Promise<PodView | undefined> => {
    const r = await cluster.admin<PodView>('GET', `/api/v1/namespaces/default/pods/${name}`);
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`GET pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const podsOnNode = async (): Promise<PodView[]> =>
    (await get<{ items: PodView[] }>(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`)).items;
  const running = (p: PodView | undefined) => p?.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  const create = async (path: string, body: unknown) => {
    const r = await cluster.admin('POST', path, body);
    if (r.status !== 201) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  };
  // A plain pod (no controller; no scheduler needed: it names its node) and a budget that allows no disruption of it.
  await create('/api/v1/namespaces/default/pods', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: { nodeName: node, automountServiceAccountToken: false, terminationGracePeriodSeconds: 10, containers: [container('web')] },
  });
  await create('/apis/policy/v1/namespaces/default/poddisruptionbudgets', {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: 'web' },
    spec: { minAvailable: 1, selector: { matchLabels: { app: 'web' } } },
  });
  // A DaemonSet: its controller makes a pod with a node affinity for this node; the scheduler binds it.
  await create('/apis/apps/v1/namespaces/default/daemonsets', {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'node-logger' },
    spec: {
      selector: { matchLabels: { app: 'node-logger' } },
      template: {
        metadata: { labels: { app: 'node-logger' } },
        spec: { automountServiceAccountToken: false, terminationGracePeriodSeconds: 10, containers: [container('logger')] },
      },
    },
  });
  // A static pod: a manifest in the kubelet's staticPodPath; the kubelet runs it and posts its mirror pod.
  const manifest = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'static-web', namespace: 'default', labels: { app: 'static-web' } },
    spec: { terminationGracePeriodSeconds: 10, containers: [container('static')] },
  });
  await vm.sh('cat > /etc/kubernetes/manifests/static-web.json', { input: manifest });

  const workloads = await waitFor('web, the DaemonSet pod and the mirror pod Running on the node', async () => {
    const pods = await podsOnNode();
    const web = pods.find((p) => p.metadata.name === 'web');
    const ds = pods.find((p) => p.metadata.ownerReferences?.some((o) => o.kind === 'DaemonSet' && o.name === 'node-logger'));
    const mir = pods.find((p) => p.metadata.name === mirror);
    return running(web) && running(ds) && running(mir) && ds && mir ? { ds: ds.metadata.name, dsUid: ds.metadata.uid, mirrorUid: mir.metadata.uid } : undefined;
  }, TIMEOUT_MS, 2000).catch(async (err: unknown) => {
    const log = await vm.exec(['journalctl', '-u', 'kubelet', '-n', '40', '--no-pager']);
    throw new Error(`${String(err)}; pods: ${JSON.stringify((await podsOnNode()).map((p) => [p.metadata.name, p.spec.nodeName, p.status?.phase]))}; the kubelet:\n${log.stdout}`);
  });
  t.comment(`node joined → the three pods Running: ${Date.now() - joinedAt} ms`);
  t.match((await pod(mirror))?.metadata.annotations, { 'kubernetes.io/config.mirror': /./ }, 'the static pod has a mirror pod in the API');
  const budget = () => get<BudgetView>('/apis/policy/v1/namespaces/default/poddisruptionbudgets/web');
  const computed = await waitFor('the budget\'s status from the disruption controller', async () => {
    const b = await budget();
    return b.status?.observedGeneration === b.metadata.generation && b.status.currentHealthy === 1 ? b.status : undefined;
  }, TIMEOUT_MS, 1000);
  t.match(computed, { currentHealthy: 1, expectedPods: 1, disruptionsAllowed: 0 }, 'the controller allows no disruption of web');

  // ── The agent ────────────────────────────────────────────────────────────────────────────────────
  await cluster.applyManifest(join(repo, 'packaging/kubernetes/coordination.yaml'));
  const token = await cluster.serviceAccountToken('node-health', 'node-health-coordinator', 2 * 3600);
  await vm.sh(`umask 077; mkdir -p /etc/node-health && cat > ${TOKEN}`, { input: token });
  await vm.sh('umask 022; cat > /etc/node-health/50-ladder.ini', { input: INI });
  await vm.copyIn(deb, '/var/tmp/');
  await vm.check(['dpkg', '-i', `/var/tmp/${basename(deb)}`], { timeoutMs: 600_000 });
  await waitFor('KernelDeadlock False written by the agent', async () => {
    const c = (await nodeView()).status?.conditions?.find((x) => x.type === 'KernelDeadlock');
    return c?.status === 'False' ? c : undefined;
  }, TIMEOUT_MS, 2000);
  const firstBoot = await bootId(vm);
  t.equal((await nodeView()).status?.nodeInfo?.bootID, firstBoot, 'the kubelet reports the guest\'s boot ID');

  // ── The condition: a real hung filesystem journal thread ─────────────────────────────────────────
  // An ext4 with dirty data on a suspended target: its journal thread waits in D state and the kernel
  // reports it (hung_task_timeout lowered to 5 s).
  await vm.check(['sysctl', '-q', '-w', 'kernel.hung_task_timeout_secs=5']);
  const resume = await hangFilesystem(t, vm, { mountpoint: '/mnt/hung', journal: true, dirtyMiB: 8 });
  await vm.check(['systemd-run', '--quiet', '--unit=nha-hung-sync', 'sync']);
  const deadlock = await waitFor('KernelDeadlock True on the Node', async () => {
    const c = (await nodeView()).status?.conditions?.find((x) => x.type === 'KernelDeadlock');
    return c?.status === 'True' ? c : undefined;
  }, TIMEOUT_MS, 1000);
  const trueAt = Date.now();
  t.equal(deadlock.reason, 'FilesystemJournalHung', `from the kernel's own line: ${deadlock.message ?? ''}`);
  // The deadlock is on record; let the filesystem go so the reboot does not wait on it. Only a reboot
  // clears KernelDeadlock (clear_on_reboot), so it stays True.
  await resume();

  // Not before `after`: schedulable and no slot for the minute.
  await new Promise((r) => setTimeout(r, Math.max(0, AFTER_MS - 15_000 - (Date.now() - trueAt))));
  t.notOk((await nodeView()).spec?.unschedulable, 'not cordoned before `after` has passed');
  const lease = async (): Promise<LeaseView | undefined> => {
    const r = await cluster.admin<LeaseView>('GET', `/apis/coordination.k8s.io/v1/namespaces/node-health/leases/${SLOT}`);
    return r.status === 200 ? r.body : undefined;
  };
  t.not((await lease())?.spec.holderIdentity, node, 'no slot taken before `after` has passed');

  // ── Slot, cordon ─────────────────────────────────────────────────────────────────────────────────
  await waitFor('the slot Lease held by the node', async () => ((await lease())?.spec.holderIdentity === node ? true : undefined), TIMEOUT_MS, 1000);
  const slotAt = Date.now();
  const cordoned = await waitFor('the Node cordoned', async () => {
    const n = await nodeView();
    return n.spec?.unschedulable ? n : undefined;
  }, TIMEOUT_MS, 1000);
  t.comment(`KernelDeadlock True → slot taken: ${slotAt - trueAt} ms (after = 1m)`);
  t.match(cordoned.metadata.annotations?.[CORDONED_BY_AGENT], /^KernelDeadlock, run /, 'the cordon carries the agent\'s annotation');

  // ── Drain: refused by the budget until the controller allows it ──────────────────────────────────
  // The API server's own count of eviction requests by answer code.
  const evictions = async (code: number): Promise<number> => {
    const r = await cluster.admin<string>('GET', '/metrics');
    if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
    let n = 0;
    for (const line of r.body.split('\n')) {
      if (line.startsWith('apiserver_request_total{') && line.includes(`code="${code}"`) && line.includes('resource="pods"') && line.includes('subresource="eviction"')) {
        n += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    return n;
  };
  const evicted0 = await evictions(201);
  await waitFor('an eviction of web refused (429)', async () => ((await evictions(429)) > 0 ? true : undefined), TIMEOUT_MS, 1000);
  const refusedAt = Date.now();
  await new Promise((r) => setTimeout(r, BLOCKED_MS));
  const refusals = await evictions(429);
  t.ok(refusals >= 2, `the agent asked again while the budget refused (${refusals} refusals of 429 in ${BLOCKED_MS / 1000 + Math.round((refusedAt - slotAt) / 1000)} s)`);
  const blocked = await pod('web');
  t.ok(running(blocked) && blocked?.metadata.deletionTimestamp === undefined, 'web runs on, not being deleted, while the budget refuses');
  t.equal(await evictions(201), evicted0, 'no eviction accepted while the budget refuses');
  t.equal((await budget()).status?.disruptionsAllowed, 0, 'the budget still allows none');

  // The budget relaxed: the controller computes the new status, then the agent's next try is accepted.
  const relaxed = await cluster.admin('PATCH', '/apis/policy/v1/namespaces/default/poddisruptionbudgets/web', { spec: { minAvailable: 0 } }, 'application/merge-patch+json');
  t.equal(relaxed.status, 200, 'the budget relaxed to minAvailable 0');
  const relaxedAt = Date.now();
  await waitFor('the controller observed the relaxed budget', async () => {
    const b = await budget();
    return b.status?.observedGeneration === b.metadata.generation ? true : undefined;
  }, TIMEOUT_MS, 500);
  const accepted = await waitFor('the eviction of web accepted', async () => {
    const p = await pod('web');
    return p === undefined ? 'gone' : p.metadata.deletionTimestamp !== undefined ? 'terminating' : undefined;
  }, TIMEOUT_MS, 500);
  const acceptedAt = Date.now();
  t.ok(accepted, `web ${accepted} once the controller allowed it`);
  t.ok((await evictions(201)) > evicted0, 'the API server accepted an eviction (201)');
  // The kubelet ends the pod; the drain also counts it gone once its grace period has run out (a kubelet
  // that is not healthy never ends it; the reboot does). Which came first is noted, not judged.
  let webGoneAt: number | undefined;
  const watchWeb = waitFor('web gone from the API', async () => ((await pod('web')) === undefined ? (webGoneAt = Date.now()) : undefined), TIMEOUT_MS, 1000);
  watchWeb.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile

  // ── Reboot ───────────────────────────────────────────────────────────────────────────────────────
  const qemuPid = vm.info.pid;
  const secondBoot = await nextBoot(vm, firstBoot, TIMEOUT_MS);
  const bootedAt = Date.now();
  await watchWeb;
  t.comment(`budget relaxed → eviction accepted: ${acceptedAt - relaxedAt} ms (the agent's back-off is 0.5–1 s doubling to 30 s); accepted → web gone from the API: ${(webGoneAt ?? 0) - acceptedAt} ms, ${(webGoneAt ?? 0) < bootedAt - 5000 ? 'well before the new boot was seen' : 'around the new boot'}`);
  const status = await runScript(vmScript, ['status', vm.name]);
  t.match(status.stdout, new RegExp(`^pid=${qemuPid}$`, 'm'), 'the same qemu process: the guest rebooted inside it');
  // Through the reboot, the pods the drain left are still bound to the node, never evicted.
  const left = await podsOnNode();
  t.same(left.filter((p) => p.metadata.name === workloads.ds || p.metadata.name === mirror).map((p) => p.metadata.name).sort(), [workloads.ds, mirror].sort(), 'the DaemonSet and mirror pods stay on the node');
  t.equal(left.find((p) => p.metadata.name === workloads.ds)?.metadata.uid, workloads.dsUid, 'the same DaemonSet pod (not evicted and replaced)');
  t.equal((await nodeView()).spec?.unschedulable, true, 'still cordoned after the boot until the node is healthy');

  // ── After the boot: Ready, KernelDeadlock False, uncordon, slot back ─────────────────────────────
  const healthy = await waitFor('the Node Ready with the new boot ID', async () => {
    const n = await nodeView();
    return ready(n)?.status === 'True' && n.status?.nodeInfo?.bootID === secondBoot ? n : undefined;
  }, TIMEOUT_MS, 2000);
  const readyAt = Date.now();
  t.comment(`Ready again: ${ready(healthy)?.reason ?? ''}`);
  await waitFor('the node uncordoned and the slot given back', async () => {
    const n = await nodeView();
    const l = await lease();
    return !n.spec?.unschedulable && l?.spec.holderIdentity !== node ? true : undefined;
  }, TIMEOUT_MS, 1000);
  const doneAt = Date.now();
  const after = await nodeView();
  t.equal(after.metadata.annotations?.[CORDONED_BY_AGENT], undefined, 'the agent\'s cordon annotation is gone');
  t.match(after.status?.conditions?.find((c) => c.type === 'KernelDeadlock'), { status: 'False', reason: 'KernelHasNoDeadlock' }, 'the new boot cleared KernelDeadlock');
  const events = await waitFor('LadderRepaired on the Node', async () => {
    const e = await cluster.events(node);
    return e.some((x) => x.reason === 'LadderRepaired') ? e : undefined;
  }, TIMEOUT_MS, 2000);
  const reasons = events.map((e) => e.reason);
  for (const r of ['LadderStarted', 'LadderCordoned', 'LadderDrained', 'LadderRebooting', 'LadderRebooted', 'LadderUncordoned', 'LadderRepaired']) {
    t.ok(reasons.includes(r), `Event ${r} on the Node`);
  }
  t.notOk(reasons.includes('LadderFailed') || reasons.includes('LadderDrainFailed'), 'no LadderFailed or LadderDrainFailed Event');
  t.ok(events.some((e) => e.reason === 'Rebooted' && e.source.component === 'kubelet' && e.message.includes(secondBoot)), 'the kubelet\'s own Rebooted Event names the new boot');
  const drained = events.find((e) => e.reason === 'LadderDrained')?.message ?? '';
  t.match(drained, /evicted 1 pod\(s\)/, 'LadderDrained: one pod evicted');
  t.match(drained, `default/${mirror} (mirror pod)`, 'LadderDrained: the mirror pod left');
  t.match(drained, `default/${workloads.ds} (DaemonSet node-logger)`, 'LadderDrained: the DaemonSet pod left');

  // The kubelet of the new boot runs the DaemonSet's and the static pod again.
  await waitFor('the DaemonSet pod and the static pod Running after the boot', async () => {
    const pods = await podsOnNode();
    return running(pods.find((p) => p.metadata.name === workloads.ds)) && running(pods.find((p) => p.metadata.name === mirror)) ? true : undefined;
  }, TIMEOUT_MS, 2000);
  t.equal(await pod('web'), undefined, 'web was not put back (a bare pod has no controller)');

  // The way down, in the previous boot's journal: logind took the reboot, the agent stopped on its own.
  const logind = await vm.check(['journalctl', '-b', '-1', '-u', 'systemd-logind', '-o', 'cat', '--no-pager'], { env: { LANG: 'C' } });
  t.match(logind, /System is rebooting/, 'logind rebooted the machine');
  const agentDown = await vm.check(['journalctl', '-b', '-1', '-u', 'node-health-agent', '-o', 'cat', '--no-pager'], { env: { LANG: 'C' } });
  t.match(agentDown, /node-health-agent stopped/, 'the agent stopped for the reboot');
  t.notMatch(agentDown, /timed out|Killing process|SIGKILL/, 'the agent was not killed on the way down');

  const kubeletOnWeb = await vm.exec(['journalctl', '-b', '-1', '-u', 'kubelet', '-o', 'short-iso-precise', '--no-pager', '--grep', 'pod="default/web"'], { env: { LANG: 'C' } });
  t.comment(`the previous boot's kubelet on web (last lines):\n${kubeletOnWeb.stdout.trim().split('\n').slice(-6).join('\n')}`);

  // ── The ledger in the guest ──────────────────────────────────────────────────────────────────────
  const records = (await vm.check(['cat', LEDGER])).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LedgerRecord);
  const begin = records.filter((r) => r.kind === 'begin');
  t.equal(begin.length, 1, 'one run in the ledger');
  t.match(begin[0], { condition: 'KernelDeadlock', bootId: firstBoot.replace(/-/g, '') }, 'the run began in the first boot, for KernelDeadlock');
  const run = records.filter((r) => r.run === begin[0]?.run);
  t.same(
    run.filter((r) => r.kind === 'outcome').map((r) => [r.step, r.result]),
    [['cordon', 'done'], ['drain', 'done'], ['reboot', 'done'], ['verify', 'done'], ['uncordon', 'done'], ['release', 'done']],
    'every step done, in order',
  );
  const rebootIntent = run.find((r) => r.kind === 'intent' && r.step === 'reboot');
  t.equal(rebootIntent?.bootId, firstBoot.replace(/-/g, ''), 'the reboot intent was recorded in the first boot');
  t.match(run.find((r) => r.kind === 'outcome' && r.step === 'reboot')?.detail, `the node booted again (boot ${secondBoot.replace(/-/g, '')}`, 'the reboot\'s outcome: the new boot');
  const drainOutcome = run.find((r) => r.kind === 'outcome' && r.step === 'drain');
  t.match(drainOutcome?.detail, /evicted 1 pod\(s\)/, 'the drain\'s outcome: one pod evicted');
  t.ok((drainOutcome?.durationMs ?? 0) >= BLOCKED_MS, `the drain waited for the budget (${drainOutcome?.durationMs ?? 0} ms)`);
  t.match(run.find((r) => r.kind === 'end'), { result: 'repaired' }, 'the run ended repaired');

  const rebootAskedAt = Date.parse(rebootIntent?.at ?? '');
  t.comment(`timing: slot → 429 seen: ${refusedAt - slotAt} ms; reboot asked (guest clock) → new boot seen: ${bootedAt - rebootAskedAt} ms; new boot seen → Ready: ${readyAt - bootedAt} ms; Ready → uncordoned and slot back: ${doneAt - readyAt} ms`);
  t.comment(`timing: the whole test ${Math.round((Date.now() - testStarted) / 1000)} s`);
});
