// The ladder against a real kube-apiserver (Node,RBAC + NodeRestriction) with each node's own kubelet
// credentials: cordon and uncordon, the Eviction API with PodDisruptionBudgets, dry-run, the gate's
// refusals, and the end of a ladder after its reboot. Nothing runs pods here, so the tests play the
// kubelet where one is needed: they delete evicted pods once the API server has marked them for deletion,
// and set the Node's Ready condition. Every outcome is read back with the admin certificate. The real
// reboot through logind is in test/ladder/reboot-box.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { maintenanceWindows } from '../../src/config/sections/ladder';
import { KubeApiError } from '../../src/outputs/kubernetes/errors';
import { NodeReporter } from '../../src/outputs/kubernetes/reporter';
import { cordon, CORDONED_BY_AGENT, uncordon } from '../../src/repair/ladder/cordon';
import { drain } from '../../src/repair/ladder/drain';
import { Ladder } from '../../src/repair/ladder/ladder';
import { LadderLedger, type RunEntry } from '../../src/repair/ladder/ledger';
import type { LadderEvents } from '../../src/repair/ladder/run';
import type { LadderSettings, RemediateSettings } from '../../src/repair/ladder/settings';
import { Cluster, waitFor } from '../helpers/cluster';
import { kubernetesConfig, recordingLogger } from '../kubernetes/support';
import {
  Conditions,
  createBudget,
  createPod,
  ensureDefaultServiceAccount,
  MemoryGate,
  nodeApi,
  nodeSpec,
  playKubelet,
  podsOn,
  RecordingEvents,
  RecordingRebooter,
  setBudget,
  setReady,
  sleep,
  type Teardown,
} from './support';

const NODES = ['cordon-a', 'cordon-b', 'operator', 'drain', 'budget', 'budget-later', 'dry', 'reboot', 'no-help', 'refused', 'blocked', 'interrupted', 'resumed', 'no-answer'];
const TYPE = 'KernelDeadlock';

function settings(over: Partial<LadderSettings> = {}, steps: RemediateSettings['steps'] = ['cordon', 'drain', 'reboot'], afterMs = 0): LadderSettings {
  return {
    enabled: true,
    dryRun: false,
    windows: maintenanceWindows.parse('always'),
    blockingPods: '',
    drainTimeoutMs: 20_000,
    uncordonOnFailure: true,
    rebootTimeoutMs: 60_000,
    afterBootTimeoutMs: 20_000,
    retryMs: 60_000,
    conditions: new Map([[TYPE, { afterMs, steps }]]),
    ...over,
  };
}

function stateDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-ladder-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Harness {
  ladder: Ladder;
  ledger: LadderLedger;
  gate: MemoryGate;
  rebooter: RecordingRebooter;
  events: RecordingEvents;
  conditions: Conditions;
  dir: string;
}

function startLadder(
  t: Teardown,
  cluster: Cluster,
  node: string,
  s: LadderSettings,
  parts: Partial<Omit<Harness, 'ladder' | 'ledger'>> & { bootId?: string; sink?: LadderEvents; recheckMs?: number; requests?: string[] } = {},
): Harness {
  const dir = parts.dir ?? stateDir(t);
  const ledger = LadderLedger.open(dir);
  const h = {
    ledger,
    gate: parts.gate ?? new MemoryGate(),
    rebooter: parts.rebooter ?? new RecordingRebooter(),
    events: parts.events ?? new RecordingEvents(),
    conditions: parts.conditions ?? new Conditions(),
    dir,
  };
  const ladder = new Ladder({
    settings: s,
    gate: h.gate,
    node: nodeApi(cluster, node, node, parts.requests ? (r) => parts.requests?.push(`${r.verb} ${r.resource}`) : undefined),
    rebooter: h.rebooter,
    ledger,
    events: parts.sink ?? h.events,
    condition: h.conditions.get,
    log: recordingLogger(),
    bootId: parts.bootId ?? 'boot-1',
    pollMs: 200,
    recheckMs: parts.recheckMs ?? 60_000,
  });
  t.teardown(() => ladder.stop());
  ladder.start();
  return { ladder, ...h };
}

function ended(h: Harness, timeoutMs = 30_000): Promise<RunEntry> {
  return waitFor('the ladder run to end', async () => {
    const r = h.ledger.lastRun(TYPE);
    return r?.end ? r : undefined;
  }, timeoutMs);
}

function steps(run: RunEntry): Array<[string, string | undefined]> {
  return run.done.map((s) => [s.step, s.outcome?.result]);
}

const timings: Array<[string, number]> = [];
function timed(what: string, run: RunEntry, step: string): void {
  const s = run.done.find((x) => x.step === step);
  if (s?.outcome) timings.push([what, s.outcome.durationMs]);
}

t.test('against a real API server', async (t) => {
  const cluster = await Cluster.up(t, NODES);
  await ensureDefaultServiceAccount(cluster);
  t.teardown(() => {
    for (const [what, ms] of timings) t.comment(`timing: ${what}: ${ms} ms`);
  });

  t.test('cordons and uncordons its own node; its annotation marks the cordon as its own', async (t) => {
    const api = nodeApi(cluster, 'cordon-a');
    t.equal(await cordon(api, `${TYPE}, test`), 'cordoned');
    let n = await nodeSpec(cluster, 'cordon-a');
    t.equal(n.spec?.unschedulable, true);
    t.equal(n.metadata.annotations?.[CORDONED_BY_AGENT], `${TYPE}, test`);
    t.equal(await cordon(api, 'again'), 'already-by-agent', 'a second cordon finds its own');
    t.equal(await uncordon(api), 'uncordoned');
    n = await nodeSpec(cluster, 'cordon-a');
    t.notOk(n.spec?.unschedulable);
    t.equal(n.metadata.annotations?.[CORDONED_BY_AGENT], undefined, 'the mark is removed with the cordon');
    t.equal(await uncordon(api), 'not-cordoned');
  });

  t.test("a node's credentials cannot cordon, list the pods of or evict from another node", async (t) => {
    const foreign = nodeApi(cluster, 'cordon-a', 'cordon-b');
    const err = await cordon(foreign, 'x').catch((e: unknown) => e);
    t.ok(err instanceof KubeApiError && err.status === 403, 'cordon of another Node: 403');
    t.match((err as KubeApiError).serverMessage, /node "cordon-a" is not allowed to (modify|get) node "cordon-b"|can only read its own Node|forbidden/);
    const list = await foreign.listPods().catch((e: unknown) => e);
    t.ok(list instanceof KubeApiError && list.status === 403, 'listing another node’s pods: 403');
    await createPod(cluster, 'cordon-b', 'foreign-pod');
    const own = nodeApi(cluster, 'cordon-a');
    const evict = await own.evict({ metadata: { name: 'foreign-pod', namespace: 'default', uid: 'x' } }).catch((e: unknown) => e);
    t.ok(evict instanceof KubeApiError && evict.status === 403, 'evicting a pod of another node: 403');
    t.match((evict as KubeApiError).serverMessage, /can only evict pods with spec.nodeName set to itself/);
    t.notOk((await nodeSpec(cluster, 'cordon-b')).spec?.unschedulable, 'cordon-b was not touched');
  });

  t.test('a node an operator cordoned is never uncordoned by the ladder', async (t) => {
    const r = await cluster.admin('PATCH', '/api/v1/nodes/operator', { spec: { unschedulable: true } }, 'application/merge-patch+json');
    t.equal(r.status, 200, 'the operator cordons (kubectl cordon)');
    const api = nodeApi(cluster, 'operator');
    t.equal(await cordon(api, 'x'), 'already-by-operator');
    t.equal(await uncordon(api), 'not-ours');

    // A whole ladder on that node: it walks, is repaired, and leaves the operator's cordon in place.
    const h = startLadder(t, cluster, 'operator', settings({}, ['cordon']));
    await setReady(cluster, 'operator', 'True');
    h.conditions.set(TYPE, 'True');
    h.ladder.conditionChanged(h.conditions.get(TYPE) as never);
    await waitFor('the verify step', async () => (h.ledger.lastRun(TYPE)?.done.some((s) => s.step === 'verify') ? true : undefined));
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'False'));
    const run = await ended(h);
    t.equal(run.end?.result, 'repaired');
    t.match(h.events.messages('LadderCordoned'), [/cordoned already, not by this agent/]);
    t.match(h.events.messages('LadderUncordoned'), [/left the node cordoned: it was cordoned by someone else/]);
    const n = await nodeSpec(cluster, 'operator');
    t.equal(n.spec?.unschedulable, true, 'still cordoned');
    t.equal(n.metadata.annotations?.[CORDONED_BY_AGENT], undefined, 'and never marked as the agent’s');
    t.same(h.gate.releases, [{ lease: 'node-health/slot-0', repaired: true }]);
  });

  t.test('drain evicts plain pods and leaves DaemonSet, mirror and finished pods', async (t) => {
    const ended = playKubelet(t, cluster, 'drain');
    for (const name of ['web-1', 'web-2', 'worker']) await createPod(cluster, 'drain', name, { running: true });
    await createPod(cluster, 'drain', 'fluentd-x', { daemonSet: 'fluentd', running: true });
    await createPod(cluster, 'drain', 'kube-proxy-drain', { mirror: true });
    await createPod(cluster, 'drain', 'job-done', { phase: 'Succeeded' });
    const result = await drain(nodeApi(cluster, 'drain'), { timeoutMs: 20_000, pollMs: 200 });
    t.ok(result.ok, result.detail);
    t.same(result.evicted.sort(), ['default/web-1', 'default/web-2', 'default/worker']);
    t.same(result.skipped.sort(), ['default/fluentd-x (DaemonSet fluentd)', 'default/job-done (finished (Succeeded))', 'default/kube-proxy-drain (mirror pod)']);
    t.same(ended.sort(), ['web-1', 'web-2', 'worker'], 'the kubelet (the test) ended only the evicted pods');
    t.same((await podsOn(cluster, 'drain')).map((p) => p.metadata.name).sort(), ['fluentd-x', 'job-done', 'kube-proxy-drain']);
    timings.push(['drain of 3 pods (evict, kubelet ends them)', result.durationMs]);
  });

  t.test('a PodDisruptionBudget blocks the drain: it times out, the node is uncordoned and the slot given back', async (t) => {
    playKubelet(t, cluster, 'budget');
    await createPod(cluster, 'budget', 'db-0', { labels: { app: 'db' }, running: true });
    await createBudget(cluster, 'db', 'db', 0);
    const h = startLadder(t, cluster, 'budget', settings({ drainTimeoutMs: 4000 }));
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'True'));
    const run = await ended(h);
    t.equal(run.end?.result, 'failed');
    t.same(steps(run), [['cordon', 'done'], ['drain', 'failed'], ['uncordon', 'done'], ['release', 'done']]);
    t.match(run.done[1]?.outcome?.detail, /not drained within 4s: 1 pod\(s\) left; evictions refused: default\/db-0 \(\d+×: Cannot evict pod as it would violate the pod's disruption budget/);
    t.match(h.events.reasons(), ['LadderStarted', 'LadderCordoned', 'LadderDrainFailed', 'LadderFailed']);
    t.match(h.events.messages('LadderFailed'), [/uncordoned the node; gave node-health\/slot-0 back/]);
    t.same(h.gate.releases, [{ lease: 'node-health/slot-0', repaired: false }]);
    t.equal(h.rebooter.reboots, 0, 'no reboot after a failed drain');
    const n = await nodeSpec(cluster, 'budget');
    t.notOk(n.spec?.unschedulable, 'uncordoned');
    t.equal(n.metadata.annotations?.[CORDONED_BY_AGENT], undefined);
    const pods = await podsOn(cluster, 'budget');
    t.equal(pods[0]?.metadata.deletionTimestamp, undefined, 'the guarded pod was never deleted');
    timed('cordon', run, 'cordon');
    timed('drain blocked by a budget (drain_timeout 4s)', run, 'drain');
    timed('uncordon', run, 'uncordon');

    await sleep(1500);
    t.same(h.gate.calls, ['acquire KernelDeadlock', 'release'], 'no second ladder before [ladder] retry');
  });

  t.test('a budget that allows the eviction later: the drain asks again with back-off and finishes', async (t) => {
    playKubelet(t, cluster, 'budget-later');
    await createPod(cluster, 'budget-later', 'cache-0', { labels: { app: 'cache' }, running: true });
    await createBudget(cluster, 'cache', 'cache', 0);
    const started = Date.now();
    const draining = drain(nodeApi(cluster, 'budget-later'), { timeoutMs: 20_000, pollMs: 200 });
    await sleep(2500);
    await setBudget(cluster, 'cache', 1);
    const result = await draining;
    t.ok(result.ok, result.detail);
    t.same(result.evicted, ['default/cache-0']);
    t.ok(Date.now() - started >= 2500, 'it waited for the budget');
    timings.push(['drain of 1 pod whose budget allows the eviction after 2.5 s', result.durationMs]);
  });

  t.test('dry-run walks the ladder, asks the gate and says what it would do, changing nothing', async (t) => {
    await createPod(cluster, 'dry', 'api-0', { running: true });
    await createPod(cluster, 'dry', 'node-exporter-x', { daemonSet: 'node-exporter', running: true });
    const before = await nodeSpec(cluster, 'dry');
    const h = startLadder(t, cluster, 'dry', settings({ dryRun: true }));
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'True'));
    const run = await ended(h);
    t.equal(run.end?.result, 'dry-run');
    t.ok(run.dryRun);
    t.same(steps(run), [['cordon', 'skipped'], ['drain', 'skipped'], ['reboot', 'skipped'], ['verify', 'skipped'], ['uncordon', 'skipped'], ['release', 'done']]);
    for (const e of h.events.list) t.match(e.message, /^dry-run: /, `${e.reason} says it is a dry run`);
    t.match(h.events.messages('LadderCordoned'), [/would cordon the node/]);
    t.match(h.events.messages('LadderDrained'), [/would evict 1 pod\(s\): default\/api-0; would leave default\/node-exporter-x \(DaemonSet node-exporter\)/]);
    t.match(h.events.messages('LadderRebooting'), [/would reboot the node through logind \(logind CanReboot: yes\)/]);
    t.equal(h.rebooter.reboots, 0);
    t.same(h.gate.calls, ['acquire KernelDeadlock', 'release'], 'it asked the gate and gave the slot back');
    const after = await nodeSpec(cluster, 'dry');
    t.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'the Node was not written');
    t.same((await podsOn(cluster, 'dry')).map((p) => [p.metadata.name, p.metadata.deletionTimestamp]), [
      ['api-0', undefined],
      ['node-exporter-x', undefined],
    ]);
    await sleep(1000);
    t.equal(h.gate.calls.length, 2, 'one dry walk per occurrence of the condition');
  });

  t.test('the whole ladder: cordon, drain, reboot; after the boot: Ready, condition False, uncordon, release', async (t) => {
    playKubelet(t, cluster, 'reboot');
    await createPod(cluster, 'reboot', 'app-0', { running: true });
    await createPod(cluster, 'reboot', 'app-1', { running: true });
    // Events go through the agent's real event writer to the Node, as in the daemon.
    const reporter = await NodeReporter.create(kubernetesConfig({ kubeconfig_paths: [cluster.kubeletConf('reboot')], retry_max: 1000 }), recordingLogger());
    t.teardown(() => reporter.stop());
    const sink: LadderEvents = {
      event: (e) => reporter.event(e),
      flush: async (ms) => {
        const until = Date.now() + ms;
        while (Date.now() < until && reporter.status().events.queued > 0) await sleep(50);
      },
    };
    const gate = new MemoryGate();
    const conditions = new Conditions();
    const requests: string[] = [];
    const first = startLadder(t, cluster, 'reboot', settings(), { gate, conditions, sink, requests });
    const asked = Date.now();
    first.ladder.conditionChanged(conditions.set(TYPE, 'True'));
    await first.rebooter.asked;
    const rebootAskedMs = Date.now() - asked;
    // The machine goes down: systemd stops the agent. The run stays open in the ledger.
    await first.ladder.stop();
    await reporter.stop();
    const open = LadderLedger.open(first.dir).unfinished();
    t.same(open && steps(open), [['cordon', 'done'], ['drain', 'done'], ['reboot', undefined]], 'the reboot intent is on disk, without an outcome');
    t.equal((await nodeSpec(cluster, 'reboot')).spec?.unschedulable, true, 'cordoned through the reboot');
    t.ok(gate.holding, 'the slot is still held');

    // The next boot: a new agent, a new boot ID, the same state directory.
    const reporter2 = await NodeReporter.create(kubernetesConfig({ kubeconfig_paths: [cluster.kubeletConf('reboot')], retry_max: 1000 }), recordingLogger());
    t.teardown(() => reporter2.stop());
    conditions.set(TYPE, 'False');
    const bootAt = Date.now();
    const second = startLadder(t, cluster, 'reboot', settings(), { gate, conditions, dir: first.dir, bootId: 'boot-2', sink: { event: (e) => reporter2.event(e) }, requests });
    await sleep(600);
    t.equal(second.ledger.lastRun(TYPE)?.end, undefined, 'not done while the Node has not reported Ready since the reboot');
    await setReady(cluster, 'reboot', 'True');
    const run = await ended(second);
    const afterBootMs = Date.now() - bootAt;
    t.equal(run.end?.result, 'repaired');
    t.same(steps(run), [['cordon', 'done'], ['drain', 'done'], ['reboot', 'done'], ['verify', 'done'], ['uncordon', 'done'], ['release', 'done']]);
    t.match(run.done[2]?.outcome?.detail, /the node booted again \(boot boot-2, was boot-1\)/);
    t.same(gate.calls, ['acquire KernelDeadlock', 'resume', 'release']);
    t.same(gate.releases, [{ lease: 'node-health/slot-0', repaired: true }]);
    t.notOk((await nodeSpec(cluster, 'reboot')).spec?.unschedulable, 'uncordoned');
    t.same(await podsOn(cluster, 'reboot'), [], 'the pods were evicted');

    const events = await waitFor('the ladder events on the Node', async () => {
      const reasons = (await cluster.events('reboot')).map((e) => e.reason);
      return reasons.includes('LadderRepaired') ? reasons : undefined;
    });
    for (const reason of ['LadderStarted', 'LadderCordoned', 'LadderDrained', 'LadderRebooting', 'LadderRebooted', 'LadderUncordoned', 'LadderRepaired']) {
      t.ok(events.includes(reason), `Event ${reason} on the Node`);
    }
    timed('cordon', run, 'cordon');
    timed('drain of 2 pods', run, 'drain');
    timed('verify after the boot (until Ready was set)', run, 'verify');
    timed('uncordon', run, 'uncordon');
    timings.push(['condition True to reboot asked (after = 0)', rebootAskedMs], ['agent start after boot to uncordoned and released', afterBootMs]);
    const count = new Map<string, number>();
    for (const r of requests) count.set(r, (count.get(r) ?? 0) + 1);
    t.comment(`API requests of the ladder with the node's credentials for this run (2 pods, Node polled every 200 ms while waiting): ${[...count].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  });

  t.test('a reboot that did not help: the slot goes back with rebootFailed, the node stays cordoned if so configured', async (t) => {
    const gate = new MemoryGate();
    const conditions = new Conditions();
    const s = settings({ uncordonOnFailure: false, afterBootTimeoutMs: 2000 }, ['cordon', 'reboot']);
    const first = startLadder(t, cluster, 'no-help', s, { gate, conditions });
    first.ladder.conditionChanged(conditions.set(TYPE, 'True'));
    await first.rebooter.asked;
    await first.ladder.stop();

    await setReady(cluster, 'no-help', 'True');
    const second = startLadder(t, cluster, 'no-help', s, { gate, conditions, dir: first.dir, bootId: 'boot-2' });
    const run = await ended(second);
    t.equal(run.end?.result, 'reboot-failed');
    t.match(run.end?.detail, /KernelDeadlock: True \(KernelDeadlockFound\).*the node stays cordoned \(uncordon_on_failure = false\)/);
    t.same(gate.releases, [{ lease: 'node-health/slot-0', repaired: false, rebootFailed: true }]);
    t.match(second.events.messages('LadderFailed'), [/the reboot did not help/]);
    t.equal((await nodeSpec(cluster, 'no-help')).spec?.unschedulable, true, 'left cordoned for a person');
    await sleep(1000);
    t.same(gate.calls, ['acquire KernelDeadlock', 'resume', 'release'], 'no second reboot for the same occurrence');
  });

  t.test('a refusal of the gate touches nothing, is one event, and the ladder asks again when told', async (t) => {
    const gate = new MemoryGate();
    gate.refusals.push(
      { granted: false, reason: 'MinimumGap', message: 'another repair ended 10s ago', retryAt: Date.now() + 1500 },
      { granted: false, reason: 'MinimumGap', message: 'still too soon', retryAt: Date.now() + 2500 },
    );
    const h = startLadder(t, cluster, 'refused', settings({}, ['cordon']), { gate });
    await setReady(cluster, 'refused', 'True');
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'True'));
    await waitFor('the first refusal', async () => (h.gate.calls.length >= 1 ? true : undefined));
    t.equal((await nodeSpec(cluster, 'refused')).spec?.unschedulable, undefined, 'not cordoned while refused');
    t.match(h.ladder.status().waiting, [{ condition: TYPE, reason: 'MinimumGap', message: 'another repair ended 10s ago' }]);
    await waitFor('the grant', async () => (h.gate.holding ? true : undefined), 10_000);
    t.same(h.gate.calls, ['acquire KernelDeadlock', 'acquire KernelDeadlock', 'acquire KernelDeadlock']);
    t.equal(h.events.messages('LadderDeferred').length, 1, 'one event for the same reason');
    t.match(h.events.messages('LadderDeferred'), [/not starting the repair ladder for KernelDeadlock yet: MinimumGap: another repair ended 10s ago/]);
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'False'));
    t.equal((await ended(h)).end?.result, 'repaired');
  });

  t.test('after, blocking pods and maintenance windows hold the ladder back before the gate is asked', async (t) => {
    await createPod(cluster, 'blocked', 'etcd-0', { labels: { app: 'etcd' }, running: true });
    const closed = maintenanceWindows.parse(`${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][(new Date().getDay() + 2) % 7]} 01:00-02:00`);
    const windowed = startLadder(t, cluster, 'blocked', settings({ windows: closed }, ['cordon']));
    windowed.ladder.conditionChanged(windowed.conditions.set(TYPE, 'True', Date.now() - 60_000));
    await waitFor('the window refusal', async () => (windowed.events.list.length > 0 ? true : undefined));
    t.match(windowed.events.messages('LadderDeferred'), [/MaintenanceWindow: outside the maintenance windows \(\w+ 01:00-02:00\)/]);
    t.match(windowed.ladder.status().waiting[0]?.retryAt, /T\d\d:00:00\.000Z$/, 'it looks again when the window opens');
    await windowed.ladder.stop();

    const h = startLadder(t, cluster, 'blocked', settings({ blockingPods: 'app in (etcd, kafka)' }, ['cordon'], 1500), { recheckMs: 500 });
    await setReady(cluster, 'blocked', 'True');
    const since = Date.now();
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'True', since));
    await sleep(1000);
    t.same(h.events.list, [], 'nothing before the condition has been True for after');
    await waitFor('the blocking-pod refusal', async () => (h.events.list.length > 0 ? true : undefined));
    t.ok(Date.now() - since >= 1500);
    t.match(h.events.messages('LadderDeferred'), [/BlockingPods: pods matching blocking_pods \(app in \(etcd, kafka\)\) are on the node: default\/etcd-0/]);
    t.same(h.gate.calls, [], 'the gate is not asked while a blocking pod runs');
    const gone = await cluster.admin('DELETE', '/api/v1/namespaces/default/pods/etcd-0?gracePeriodSeconds=0');
    t.equal(gone.status, 200);
    await waitFor('the grant', async () => (h.gate.calls.length > 0 ? true : undefined), 10_000);
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'False'));
    t.equal((await ended(h)).end?.result, 'repaired');
  });

  t.test('an agent stopped mid-drain: the next start (same boot) takes the drain up again with the slot it still holds', async (t) => {
    await createPod(cluster, 'resumed', 'job-0', { labels: { app: 'job' }, running: true });
    await createBudget(cluster, 'job', 'job', 0);
    const gate = new MemoryGate();
    const conditions = new Conditions();
    const first = startLadder(t, cluster, 'resumed', settings({ drainTimeoutMs: 60_000 }, ['cordon', 'drain']), { gate, conditions });
    first.ladder.conditionChanged(conditions.set(TYPE, 'True'));
    await waitFor('the drain', async () => (first.ledger.lastRun(TYPE)?.done.some((s) => s.step === 'drain') ? true : undefined));
    await first.ladder.stop();

    const second = startLadder(t, cluster, 'resumed', settings({ drainTimeoutMs: 60_000 }, ['cordon', 'drain']), { gate, conditions, dir: first.dir });
    await waitFor('the run taken up', async () => (second.ladder.status().active?.step === 'drain' ? true : undefined));
    t.match(second.events.messages('LadderResumed'), [/the agent stopped during the drain step and started again: taking the repair ladder for KernelDeadlock up there, holding node-health\/slot-0/]);
    t.same(second.events.reasons(), ['LadderResumed'], 'no second LadderStarted or LadderCordoned');
    t.equal((await nodeSpec(cluster, 'resumed')).spec?.unschedulable, true, 'still cordoned while it drains');
    // The budget allows the eviction; the test ends the pod as the kubelet would.
    playKubelet(t, cluster, 'resumed');
    await setBudget(cluster, 'job', 1);
    await waitFor('drained', async () => (second.events.reasons().includes('LadderDrained') ? true : undefined), 30_000);
    await setReady(cluster, 'resumed', 'True');
    second.ladder.conditionChanged(conditions.set(TYPE, 'False'));
    const run = await ended(second);
    t.equal(run.end?.result, 'repaired', run.end?.detail ?? '');
    t.same(steps(run), [['cordon', 'done'], ['drain', undefined], ['drain', 'done'], ['verify', 'done'], ['uncordon', 'done'], ['release', 'done']], 'one cordon; the drain the stop cut short, then taken again');
    t.same(gate.calls, ['acquire KernelDeadlock', 'resume', 'release'], 'one slot, taken back, given back once');
    t.same(gate.releases, [{ lease: 'node-health/slot-0', repaired: true }]);
    t.notOk((await nodeSpec(cluster, 'resumed')).spec?.unschedulable, 'uncordoned');
  });

  t.test('an agent stopped before its cordon was on record: undone even with the slot, a new cordon needs a new grant', async (t) => {
    const gate = new MemoryGate();
    t.ok((await gate.acquire(TYPE)).granted, 'the slot held, as by the stopped agent');
    const dir = stateDir(t);
    const before = LadderLedger.open(dir);
    const open = before.begin({ condition: TYPE, since: new Date().toISOString(), dryRun: false, steps: ['cordon', 'drain'], lease: 'node-health/slot-0', bootId: 'boot-1' });
    before.intent(open.id, 'cordon', 'boot-1');
    before.close();
    const conditions = new Conditions();
    conditions.set(TYPE, 'True');
    const h = startLadder(t, cluster, 'resumed', settings({}, ['cordon', 'drain']), { gate, conditions, dir });
    const run = await ended(h);
    t.equal(run.end?.result, 'interrupted');
    t.match(run.end?.detail, /the agent stopped during the cordon step; its cordon was not on record yet, and a new cordon needs a new grant; .*gave node-health\/slot-0 back/);
    t.same(gate.calls, ['acquire KernelDeadlock', 'resume', 'release'], 'the slot taken back only to give it back');
    t.notOk((await nodeSpec(cluster, 'resumed')).spec?.unschedulable);
    t.same(h.events.reasons(), ['LadderFailed']);
  });

  t.test('an agent stopped mid-drain whose slot is gone when it starts again: the run is undone', async (t) => {
    await createPod(cluster, 'interrupted', 'queue-0', { labels: { app: 'queue' }, running: true });
    await createBudget(cluster, 'queue', 'queue', 0);
    const first = startLadder(t, cluster, 'interrupted', settings({ drainTimeoutMs: 60_000 }));
    first.ladder.conditionChanged(first.conditions.set(TYPE, 'True'));
    await waitFor('the drain', async () => (first.ledger.lastRun(TYPE)?.done.some((s) => s.step === 'drain') ? true : undefined));
    await first.ladder.stop();
    t.equal((await nodeSpec(cluster, 'interrupted')).spec?.unschedulable, true);

    // A gate that holds nothing for this node: the slot's TTL ran out while the agent was down.
    const gate = new MemoryGate();
    const second = startLadder(t, cluster, 'interrupted', settings(), { gate, dir: first.dir, bootId: 'boot-1' });
    const run = await ended(second);
    t.equal(run.end?.result, 'interrupted');
    t.match(run.end?.detail, /the agent stopped during the drain step; the repair slot could not be taken back; uncordoned the node; no slot was held/);
    t.notOk((await nodeSpec(cluster, 'interrupted')).spec?.unschedulable);
    t.same(gate.calls, ['resume'], 'nothing disrupted without a slot');
    t.same(second.events.reasons(), ['LadderFailed']);
  });

  t.test('logind never answers the reboot (the bus went first at shutdown): stopping does not wait for it', async (t) => {
    let asked = false;
    const silent = Object.assign(new RecordingRebooter(), {
      reboot: () => {
        asked = true;
        return new Promise<void>(() => undefined);
      },
    });
    const h = startLadder(t, cluster, 'no-answer', settings(), { rebooter: silent });
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'True'));
    await waitFor('the reboot to be asked', async () => (asked ? true : undefined));
    const stopping = Date.now();
    await h.ladder.stop();
    const took = Date.now() - stopping;
    t.ok(took < 2000, `stopped ${took} ms after being asked to, with the call still pending`);
    t.same(LadderLedger.open(h.dir).unfinished()?.done.map((x) => [x.step, x.outcome?.result]), [['cordon', 'done'], ['drain', 'done'], ['reboot', undefined]], 'the reboot intent stays open, as after a crash');
  });

  t.test('a lost slot stops the drain: nothing more is disrupted', async (t) => {
    // queue-0 is still guarded by the budget of the test before, so the drain is under way when the slot goes.
    const gate = new MemoryGate();
    const h = startLadder(t, cluster, 'interrupted', settings({ drainTimeoutMs: 60_000 }), { gate });
    h.ladder.conditionChanged(h.conditions.set(TYPE, 'True'));
    await waitFor('the drain', async () => (h.ledger.lastRun(TYPE)?.done.some((s) => s.step === 'drain') ? true : undefined));
    gate.lose();
    const run = await ended(h);
    t.equal(run.end?.result, 'failed');
    t.match(run.end?.detail, /drain failed: stopped: the slot node-health\/slot-0 was lost.*uncordoned the node; the slot was lost/);
    t.same(gate.releases, [], 'a lost slot is not released (another node may hold it now)');
    t.equal(h.rebooter.reboots, 0);
    t.notOk((await nodeSpec(cluster, 'interrupted')).spec?.unschedulable);
  });
});
