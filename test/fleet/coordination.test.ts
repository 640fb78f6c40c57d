// Coordination of disruptive repairs against a real kube-apiserver (Node,RBAC + NodeRestriction) with the
// shipped manifest applied: the identity and what it may do, then each rule of the gate — slots, renewal,
// release, TTL takeover, loss, resume, minimum gap, new-node grace, reboot lockout, breaker, nodes left
// cordoned by their agents counting against the slots. Every outcome
// is read back from the Lease objects with the admin certificate.
import t from 'tap';
import { Coordinator } from '../../src/repair/fleet/coordinator';
import type { Refusal, Slot } from '../../src/types';
import { CORDONED_BY_AGENT } from '../../src/repair/ladder/cordon';
import { recordingLogger } from '../kubernetes/support';
import { addNodes, ACCOUNT, fleetUp, lease, NAMESPACE, setCondition, sleep, type CoordinationConfig, type Fleet } from './support';

const COND = 'KernelDeadlock';
/** Short times so each rule can be watched running out; the ini's minimums are for real clusters. */
const quick: Partial<CoordinationConfig> = {
  lease_ttl: 3000,
  max_clock_skew: 200,
  retry_interval: 500,
  min_gap: 0,
  new_node_grace: 0,
  reboot_lockout: 0,
  storm_cooldown: 0,
  breaker_max_nodes: 100,
};

let fleet: Fleet;
const made: Coordinator[] = [];

function coordinator(node: string, overrides: Partial<CoordinationConfig> = {}, f: Fleet = fleet): Coordinator {
  const c = new Coordinator(f.config({ ...quick, ...overrides }), node, { log: recordingLogger() });
  made.push(c);
  return c;
}

function granted(t: tap.Test, r: Slot | Refusal, what: string): Slot {
  if (!r.granted) throw new Error(`${what}: refused: ${r.reason}: ${r.message}`);
  t.pass(what);
  return r;
}

function refused(t: tap.Test, r: Slot | Refusal, reason: string): Refusal {
  if (r.granted) throw new Error(`expected a ${reason} refusal, got slot ${r.lease}`);
  t.equal(r.reason, reason, `refused: ${reason}: ${r.message}`);
  return r;
}

/** retryAt is the earliest time plus a random share of half the retry_interval (500 ms here). */
function retryFrom(t: tap.Test, r: Refusal, earliest: number, what: string): void {
  const at = r.retryAt ?? NaN;
  t.ok(at >= earliest && at <= earliest + 250, `retryAt ${at - earliest} ms after ${what}`);
}

/** Releases whatever a test left held, so the next one starts with free slots. */
async function freeAll(): Promise<void> {
  for (const c of made.splice(0)) c.stop();
  const r = await fleet.cluster.admin<{ items: Array<{ metadata: { name: string } }> }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`);
  for (const l of r.body.items) await fleet.cluster.admin('DELETE', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${l.metadata.name}`);
}

/** Waits until `fn` returns true, polling; fails the wait after `ms`. */
async function until(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

t.before(async () => {
  fleet = await fleetUp(t, ['kubelet-node']);
  await addNodes(fleet.cluster, ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9', 'n10']);
});
t.afterEach(freeAll);

t.test('without a coordination identity disruptive repairs are off, and say why', async (t) => {
  const off = new Coordinator(fleet.config({ enabled: false }), 'n1', { log: recordingLogger() });
  t.match(off.disabledReason(), /^\[coordination\] enabled = false: disruptive repairs \(cordon, drain, reboot\) need cluster-wide coordination and are off$/);
  const r = refused(t, await off.acquire(COND), 'CoordinationDisabled');
  t.equal(r.retryAt, undefined, 'no point asking again before the config changes');
  t.equal(await off.resume(), undefined);
  t.equal(off.status().enabled, false);

  const none = new Coordinator(fleet.config({ token_file: undefined, server: undefined, ca_file: undefined }), 'n1', { log: recordingLogger() });
  t.match(none.disabledReason(), /names no coordination identity \(kubeconfig or token_file\): apply \/usr\/share\/node-health-agent\/kubernetes\/coordination\.yaml/);
  const both = new Coordinator(fleet.config({ kubeconfig: fleet.cluster.kubeletConf('kubelet-node') }), 'n1', { log: recordingLogger() });
  t.match(both.disabledReason(), /sets both kubeconfig and token_file: set one of them/);
  const missing = new Coordinator(fleet.config({ token_file: '/nonexistent/token' }), 'n1', { log: recordingLogger() });
  t.match(await missing.check(), /\/nonexistent\/token: cannot read the tokenFile/);
  missing.stop();
});

t.test("the kubelet's identity alone cannot coordinate: a clear reason, no slot", async (t) => {
  const c = coordinator('kubelet-node', { token_file: undefined, server: undefined, ca_file: undefined, kubeconfig: fleet.cluster.kubeletConf('kubelet-node') });
  t.equal(c.disabledReason(), 'the coordination identity has not been verified yet');
  const reason = await c.check();
  t.match(
    reason,
    /^the coordination identity is system:node:kubelet-node, a kubelet identity, which may not use Leases outside kube-node-lease nor read other Nodes \(Kubernetes 1\.32\+\): apply \/usr\/share\/node-health-agent\/kubernetes\/coordination\.yaml/,
  );
  refused(t, await c.acquire(COND), 'CoordinationUnavailable');
  t.equal(c.status().ready, false);
  t.equal(c.status().reason, reason, 'status carries the same reason');
  // start() checks in the background, after a random delay, and status then says why.
  const bg = coordinator('kubelet-node', { token_file: undefined, server: undefined, ca_file: undefined, kubeconfig: fleet.cluster.kubeletConf('kubelet-node') });
  bg.start(300);
  await until('the background check', async () => bg.status().reason === reason, 3000);
  t.pass('start() verified the identity in the background');
  // And it really is refused: the API server says so for the kubelet's own credentials.
  const r = await fleet.cluster.asNode('kubelet-node', 'GET', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`);
  t.equal(r.status, 403, 'the kubelet identity may not list Leases in the coordination namespace');
});

t.test('a token file borrows server and CA from the kubelet kubeconfig, never its credentials', async (t) => {
  const c = coordinator('n1', { server: undefined, ca_file: undefined }, fleet);
  const cfg = fleet.config({ ...quick, server: undefined, ca_file: undefined }, { kubeconfig_paths: [fleet.cluster.kubeletConf('kubelet-node')] });
  const borrowed = new Coordinator(cfg, 'n1', { log: recordingLogger() });
  made.push(borrowed);
  t.equal(await borrowed.check(), undefined, 'verified');
  t.equal(borrowed.status().identity, `system:serviceaccount:${NAMESPACE}:${ACCOUNT}`, 'the API server knows it as the ServiceAccount');
  t.equal(borrowed.status().apiServer, fleet.cluster.server);
  t.match(borrowed.status().credentials, /^token file /);
  c.stop();
});

t.test('an identity without the manifest\'s bindings, or a bad token, is refused with what to do', async (t) => {
  const sa = await fleet.cluster.admin('POST', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { metadata: { name: 'unbound' } });
  t.equal(sa.status, 201);
  const token = await fleet.cluster.serviceAccountToken(NAMESPACE, 'unbound');
  const { writeFileSync } = await import('node:fs');
  const file = `${fleet.dir}/unbound.token`;
  writeFileSync(file, token);
  const c = coordinator('n1', { token_file: file });
  t.match(
    await c.check(),
    /^the coordination identity system:serviceaccount:node-health:unbound may not list Leases in namespace node-health \(403 Forbidden: .*\): \/usr\/share\/node-health-agent\/kubernetes\/coordination\.yaml grants/,
  );
  const other = coordinator('n1', { namespace: 'elsewhere' });
  t.match(await other.check(), /may not list Leases in namespace elsewhere .*check \[coordination\] namespace/);
  writeFileSync(file, 'not-a-token');
  const bad = coordinator('n1', { token_file: file });
  t.match(await bad.check(), /^the API server rejected the coordination credentials \(token file .*unbound\.token\) when trying to ask the API server who it is \(401 Unauthorized/);
  const ghost = coordinator('no-such-node');
  t.match(await ghost.check(), /cannot read Node no-such-node: not found .*the Node must exist/);
});

t.test('RBAC: the coordination identity can do what the manifest grants and nothing else', async (t) => {
  const as = (method: string, path: string, body?: unknown, type?: string) => fleet.cluster.asBearer(fleet.token, method, path, body, type);
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`;
  const allowed: Array<[string, string, unknown?]> = [
    ['GET', leases],
    ['POST', leases, { metadata: { name: 'rbac-probe' }, spec: { holderIdentity: 'x', leaseDurationSeconds: 10 } }],
    ['GET', `${leases}/rbac-probe`],
    ['DELETE', `${leases}/rbac-probe`],
    ['GET', '/api/v1/nodes'],
    ['GET', '/api/v1/nodes/n1'],
  ];
  for (const [method, path, body] of allowed) {
    const r = await as(method, path, body);
    t.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status}`);
  }
  const merge = 'application/merge-patch+json';
  const forbidden: Array<[string, string, unknown?, string?]> = [
    ['PATCH', '/api/v1/nodes/n1', { spec: { unschedulable: true } }, merge],
    ['PATCH', '/api/v1/nodes/n1/status', { status: { conditions: [] } }, merge],
    ['DELETE', '/api/v1/nodes/n1'],
    ['POST', '/api/v1/nodes', { metadata: { name: 'evil' } }],
    ['PATCH', `${leases}/x`, { spec: {} }, merge],
    ['GET', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases'],
    ['POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', { metadata: { name: 'x' }, spec: {} }],
    ['GET', '/apis/coordination.k8s.io/v1/leases'],
    ['GET', '/api/v1/pods'],
    ['GET', `/api/v1/namespaces/${NAMESPACE}/pods`],
    ['POST', `/api/v1/namespaces/${NAMESPACE}/pods/x/eviction`, { metadata: { name: 'x' } }],
    ['GET', `/api/v1/namespaces/${NAMESPACE}/secrets`],
    ['GET', `/api/v1/namespaces/${NAMESPACE}/configmaps`],
    ['POST', '/api/v1/namespaces/default/events', { metadata: { name: 'x' } }],
    ['POST', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${ACCOUNT}/token`, { spec: {} }],
    ['PUT', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NAMESPACE}/roles/node-health-coordinator`, {}],
  ];
  for (const [method, path, body, type] of forbidden) {
    const r = await as(method, path, body, type);
    t.equal(r.status, 403, `${method} ${path} is forbidden`);
  }
  // The rules the API server holds for it in its namespace: leases only (besides what every
  // authenticated user may do: self reviews and discovery).
  const rules = await as('POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectRulesReview',
    spec: { namespace: NAMESPACE },
  });
  const resourceRules = (rules.body as { status: { resourceRules: Array<{ apiGroups?: string[]; resources?: string[]; verbs: string[] }> } }).status.resourceRules;
  const granted = resourceRules
    .filter((r) => !(r.apiGroups ?? []).some((g) => g === 'authorization.k8s.io' || g === 'authentication.k8s.io'))
    .map((r) => `${(r.apiGroups ?? []).join(',')}/${(r.resources ?? []).join(',')}: ${[...r.verbs].sort().join(',')}`)
    .sort();
  t.same(granted, ['/nodes: get,list', 'coordination.k8s.io/leases: create,delete,get,list,update,watch'], 'exactly the manifest\'s rules');
});

t.test('acquire, renew while held, refuse others, release keeps the Lease with its history', async (t) => {
  const a = coordinator('n1');
  const b = coordinator('n2');
  const slot = granted(t, await a.acquire(COND), 'n1 gets a slot');
  t.equal(slot.lease, 'node-health-repair-0');
  const first = await lease(fleet.cluster, slot.lease);
  t.equal(first?.spec.holderIdentity, 'n1', 'the Lease names n1');
  t.equal(first?.spec.leaseDurationSeconds, 3, 'leaseDurationSeconds is the TTL');
  t.equal(first?.metadata.annotations?.['node-health-agent/condition'], COND);
  t.equal(first?.metadata.labels?.['app.kubernetes.io/managed-by'], 'node-health-agent');
  t.equal(a.status().held, 'node-health-repair-0');

  const busy = refused(t, await b.acquire(COND), 'SlotsBusy');
  t.match(busy.message, /all 1 repair slots are held \(by n1\)/);
  t.ok(busy.retryAt !== undefined && busy.retryAt > Date.now() && busy.retryAt <= Date.now() + 750, 'retryAt within 0.5–1.5 × retry_interval');
  t.equal(b.status().lastRefusal?.reason, 'SlotsBusy', 'status shows the last refusal');

  // Renewed every TTL/3 = 1 s: after 2.5 s the Lease has moved on, well before it would run out.
  await sleep(2500);
  const renewed = await lease(fleet.cluster, slot.lease);
  t.equal(renewed?.spec.holderIdentity, 'n1');
  t.ok(Date.parse(renewed?.spec.renewTime ?? '') > Date.parse(first?.spec.renewTime ?? ''), `renewTime moved on: ${renewed?.spec.renewTime}`);
  t.equal(renewed?.spec.acquireTime, first?.spec.acquireTime, 'acquireTime stays');
  refused(t, await b.acquire(COND), 'SlotsBusy');

  await slot.release({ repaired: true });
  const released = await lease(fleet.cluster, slot.lease);
  t.equal(released?.spec.holderIdentity, undefined, 'the holder is cleared');
  t.equal(released?.metadata.annotations?.['node-health-agent/outcome'], 'repaired');
  t.equal(released?.metadata.annotations?.['node-health-agent/last-holder'], 'n1');
  t.ok(released?.metadata.annotations?.['node-health-agent/released-at'], 'the release time is kept');
  t.equal(a.status().held, null);
  const rv = released?.metadata.resourceVersion;
  await sleep(1200);
  t.equal((await lease(fleet.cluster, slot.lease))?.metadata.resourceVersion, rv, 'no renewals after the release');

  const next = granted(t, await b.acquire(COND), 'n2 gets the slot n1 gave back');
  const taken = await lease(fleet.cluster, next.lease);
  t.equal(taken?.spec.holderIdentity, 'n2');
  t.equal(taken?.spec.leaseTransitions, 1, 'one transition');
  await next.release({ repaired: true });
});

t.test('k slots: k nodes at once, the next one waits; one node never takes two', async (t) => {
  const cs = ['n1', 'n2', 'n3', 'n4'].map((n) => coordinator(n, { slots: 3 }));
  const slots = (await Promise.all(cs.slice(0, 3).map((c) => c.acquire(COND)))).map((r, i) => granted(t, r, `n${i + 1} gets a slot`));
  t.same(slots.map((s) => s.lease).sort(), ['node-health-repair-0', 'node-health-repair-1', 'node-health-repair-2']);
  refused(t, await (cs[3] as Coordinator).acquire(COND), 'SlotsBusy');
  const again = granted(t, await (cs[0] as Coordinator).acquire(COND), 'asking again while holding');
  t.equal(again.lease, slots[0]?.lease, 'gives back the slot it holds, not a second one');
  (cs[1] as Coordinator).stop();
  const restarted = coordinator('n2', { slots: 3 });
  const back = granted(t, await restarted.acquire(COND), 'n2 restarted asks again without resume()');
  t.equal(back.lease, slots[1]?.lease, 'and gets the slot its Lease still names');
  slots[1] = back;
  for (const s of slots) await s.release({ repaired: true });
  await granted(t, await (cs[3] as Coordinator).acquire(COND), 'n4 after the others').release({ repaired: true });
});

t.test('a crashed holder stops renewing; its slot is free after renewTime + TTL + skew, not before', async (t) => {
  const a = coordinator('n1');
  const slot = granted(t, await a.acquire(COND), 'n1 gets a slot');
  a.stop(); // the agent dies without releasing
  const held = await lease(fleet.cluster, slot.lease);
  const end = Date.parse(held?.spec.renewTime ?? '') + 3000 + 200;
  const b = coordinator('n2');
  let taken: Slot | undefined;
  const reasons = new Set<string>();
  while (!taken) {
    const r = await b.acquire(COND);
    if (r.granted) taken = r;
    else {
      reasons.add(r.reason);
      await sleep(100);
    }
  }
  t.same([...reasons], ['SlotsBusy'], 'busy until then');
  const at = Date.now();
  t.ok(at >= end, `taken over ${at - end} ms after the crashed holder's Lease ran out (+skew)`);
  t.ok(at < end + 1000, 'and promptly after it');
  const after = await lease(fleet.cluster, taken.lease);
  t.equal(after?.spec.holderIdentity, 'n2');
  t.equal(after?.spec.leaseTransitions, 1);
  const restarted = coordinator('n1');
  t.equal(await restarted.resume(), undefined, 'n1 restarted finds its slot gone');
  await taken.release({ repaired: true });
});

t.test('after a restart the holder takes its slot back with resume() and finishes', async (t) => {
  const a = coordinator('n1');
  const slot = granted(t, await a.acquire(COND), 'n1 gets a slot');
  a.stop();
  await sleep(500);
  const restarted = coordinator('n1');
  const back = await restarted.resume();
  t.ok(back, 'resume() returns the slot');
  t.equal(back?.lease, slot.lease);
  t.equal(restarted.status().held, slot.lease);
  const other = coordinator('n2');
  refused(t, await other.acquire(COND), 'SlotsBusy');
  await sleep(3500);
  t.equal((await lease(fleet.cluster, slot.lease))?.spec.holderIdentity, 'n1', 'renewed again after resume: still held past the TTL');
  await back?.release({ repaired: true });
  t.equal(await coordinator('n1').resume(), undefined, 'nothing to resume once released');
});

t.test('a slot taken over behind the holder\'s back is lost at the next renewal', async (t) => {
  const a = coordinator('n1');
  const slot = granted(t, await a.acquire(COND), 'n1 gets a slot');
  const l = await lease(fleet.cluster, slot.lease);
  const r = await fleet.cluster.admin('PUT', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${slot.lease}`, {
    ...l,
    spec: { ...l?.spec, holderIdentity: 'intruder' },
  });
  t.equal(r.status, 200);
  const started = Date.now();
  // The agent's timers do not keep a process alive; this wait does.
  t.equal(await Promise.race([slot.lost.then(() => 'lost'), sleep(5000).then(() => 'still held')]), 'lost');
  t.ok(Date.now() - started < 1500, `lost within one renewal period (${Date.now() - started} ms)`);
  t.equal(a.status().held, null);
  await slot.release({ repaired: false });
  t.equal((await lease(fleet.cluster, slot.lease))?.spec.holderIdentity, 'intruder', "release after loss leaves the new holder's Lease alone");
});

t.test('renewals failing until the TTL runs out: lost resolves before any other node could take the slot', async (t) => {
  const a = coordinator('n1');
  const slot = granted(t, await a.acquire(COND), 'n1 gets a slot');
  let lostAt = 0;
  void slot.lost.then(() => {
    lostAt = Date.now();
  });
  await sleep(1100); // one renewal done
  await fleet.cluster.stopApiserver();
  try {
    await until('lost', async () => lostAt > 0, 6000);
  } finally {
    await fleet.cluster.startApiserver();
  }
  // Nothing could renew it while the API server was down: its renewTime is the last renewal.
  const last = Date.parse((await lease(fleet.cluster, slot.lease))?.spec.renewTime ?? '');
  const othersFrom = last + 3000 + 200;
  t.ok(lostAt <= last + 3000 - 200 + 100, `lost ${last + 3000 - lostAt} ms before the Lease ran out`);
  t.ok(lostAt < othersFrom, 'before any other node would take it');
  await slot.release({ repaired: false });
});

t.test('minimum gap: the next repair starts min_gap after the last one started or finished', async (t) => {
  const a = coordinator('n1', { min_gap: 2000 });
  const b = coordinator('n2', { min_gap: 2000, slots: 2 });
  const slot = granted(t, await a.acquire(COND), 'n1 gets a slot');
  const gap1 = await lease(fleet.cluster, 'node-health-repair-gap');
  t.equal(gap1?.spec.holderIdentity, 'n1');
  t.equal(gap1?.metadata.annotations?.['node-health-agent/outcome'], 'started');
  const early = refused(t, await b.acquire(COND), 'MinimumGap');
  t.match(early.message, /the last repair in the cluster started at .* on n1; the next may start 2s later/);
  await slot.release({ repaired: true });
  const gap2 = await lease(fleet.cluster, 'node-health-repair-gap');
  t.equal(gap2?.metadata.annotations?.['node-health-agent/outcome'], 'finished');
  const finished = Date.parse(gap2?.spec.renewTime ?? '');
  const r = refused(t, await b.acquire(COND), 'MinimumGap');
  retryFrom(t, r, finished + 2000, 'the end of the gap');
  await sleep((r.retryAt ?? 0) - Date.now());
  const s2 = granted(t, await b.acquire(COND), 'n2 after the gap');
  t.ok(Date.parse((await lease(fleet.cluster, s2.lease))?.spec.acquireTime ?? '') >= finished + 2000, 'started at least min_gap after the last finish');
  await s2.release({ repaired: true });
});

t.test('new-node grace: a Node younger than new_node_grace takes no slot', async (t) => {
  await addNodes(fleet.cluster, ['fresh']);
  const created = Date.parse((await fleet.cluster.admin<{ metadata: { creationTimestamp: string } }>('GET', '/api/v1/nodes/fresh')).body.metadata.creationTimestamp);
  const c = coordinator('fresh', { new_node_grace: 4000 });
  const r = refused(t, await c.acquire(COND), 'NewNodeGrace');
  retryFrom(t, r, created + 4000, 'the end of the grace');
  t.match(r.message, /^Node fresh was created at .*; nodes younger than 4s are not repaired/);
  t.equal((await lease(fleet.cluster, 'node-health-repair-0'))?.spec.holderIdentity, undefined, 'no slot was touched');
  await sleep((r.retryAt ?? 0) - Date.now() + 10);
  await granted(t, await c.acquire(COND), 'granted once the grace is over').release({ repaired: true });
});

t.test('reboot lockout: recorded in a Lease, survives a restart, holds only this node back', async (t) => {
  const a = coordinator('n1', { reboot_lockout: 4000 });
  const slot = granted(t, await a.acquire(COND), 'n1 gets a slot');
  await slot.release({ repaired: false, rebootFailed: true });
  const lock = await lease(fleet.cluster, 'node-health-lockout-n1');
  t.equal(lock?.spec.holderIdentity, 'n1', 'a lockout Lease names the node');
  t.equal(lock?.spec.leaseDurationSeconds, 4);
  t.equal(lock?.metadata.annotations?.['node-health-agent/outcome'], 'reboot-failed');
  t.equal((await lease(fleet.cluster, slot.lease))?.metadata.annotations?.['node-health-agent/outcome'], 'reboot-failed');

  const restarted = coordinator('n1', { reboot_lockout: 4000 });
  const r = refused(t, await restarted.acquire(COND), 'RebootLockout');
  retryFrom(t, r, Date.parse(lock?.spec.renewTime ?? '') + 4000, 'the lockout Lease runs out');
  t.match(r.message, /a reboot of n1 did not help; it takes no repair slot until .* \(Lease node-health\/node-health-lockout-n1/);
  await granted(t, await coordinator('n2').acquire(COND), 'another node is not held back').release({ repaired: true });

  await sleep((r.retryAt ?? 0) - Date.now() + 10);
  const s = granted(t, await restarted.acquire(COND), 'n1 again once the lockout ran out');
  t.equal(await lease(fleet.cluster, 'node-health-lockout-n1'), undefined, 'the run-out lockout Lease is removed');
  await s.release({ repaired: true });
});

t.test('breaker: more than max(N, X%) unhealthy nodes halt every repair for the storm cooldown', async (t) => {
  const policy = { breaker_max_nodes: 2, breaker_max_percent: 10, storm_cooldown: 3000 };
  // 12 Nodes (kubelet-node, n1–n10, fresh): 10 % is 1, so the floor of 2 decides.
  await setCondition(fleet.cluster, 'n1', COND, 'True');
  await setCondition(fleet.cluster, 'n2', 'Ready', 'False');
  await granted(t, await coordinator('n1', policy).acquire(COND), '2 unhealthy of 12: within the floor of 2').release({ repaired: true });

  await setCondition(fleet.cluster, 'n3', COND, 'True');
  const c = coordinator('n3', policy);
  const r = refused(t, await c.acquire(COND), 'UnhealthyBreaker');
  t.match(r.message, /^3 of \d+ nodes unhealthy \(n1, n2, n3\), more than the 2 allowed/);
  t.equal((await lease(fleet.cluster, 'node-health-repair-0'))?.spec.holderIdentity, undefined, 'the slot it won was given back');
  const marker = await lease(fleet.cluster, 'node-health-repair-breaker');
  t.equal(marker?.spec.leaseDurationSeconds, 3, 'the storm cooldown is a Lease every node sees');

  // Healthy again, but the cooldown holds; another condition, another node: still halted.
  for (const n of ['n1', 'n3']) await setCondition(fleet.cluster, n, COND, 'False');
  await setCondition(fleet.cluster, 'n2', 'Ready', 'True');
  const cooling = refused(t, await coordinator('n4', policy).acquire('OtherProblem'), 'UnhealthyBreaker');
  t.match(cooling.message, /the breaker tripped at .*3 of \d+ nodes unhealthy.*no repair starts before/);
  retryFrom(t, cooling, Date.parse(marker?.spec.renewTime ?? '') + 3000 + 200, 'the cooldown ends (+ skew)');

  await sleep((cooling.retryAt ?? 0) - Date.now() + 10);
  await granted(t, await coordinator('n4', policy).acquire('OtherProblem'), 'repairs resume after the cooldown').release({ repaired: true });
});

/** Sets or removes the agent's cordon on a Node (as the admin), or an operator's cordon without the annotation. */
async function setCordon(node: string, how: 'agent' | 'operator' | 'none'): Promise<void> {
  const body = {
    metadata: { annotations: { [CORDONED_BY_AGENT]: how === 'agent' ? `${COND}, run test, ${new Date().toISOString()}` : null } },
    spec: { unschedulable: how === 'none' ? null : true },
  };
  const r = await fleet.cluster.admin('PATCH', `/api/v1/nodes/${node}`, body, 'application/merge-patch+json');
  if (r.status !== 200) throw new Error(`cordon ${node} (${how}): ${r.status} ${JSON.stringify(r.body)}`);
}

/** The resourceVersions of the slot Leases: unchanged means no node claimed or freed a slot. */
async function slotVersions(): Promise<string[]> {
  const r = await fleet.cluster.admin<{ items: Array<{ metadata: { name: string; resourceVersion: string } }> }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`);
  return r.body.items.filter((l) => /^node-health-repair-\d+$/.test(l.metadata.name)).map((l) => `${l.metadata.name}@${l.metadata.resourceVersion}`).sort();
}

t.test('a node left cordoned by its agent past its TTL counts against the k slots until it is uncordoned or deleted', async (t) => {
  t.teardown(async () => {
    for (const n of ['n5', 'n6']) await setCordon(n, 'none').catch(() => undefined);
  });
  const k2 = { slots: 2 };
  // n5 takes a slot and is cordoned (as its ladder would), then its agent dies; n1 takes the other slot.
  const n5 = coordinator('n5', k2);
  const s5 = granted(t, await n5.acquire(COND), 'n5 gets a slot');
  await setCordon('n5', 'agent');
  n5.stop();
  const s1 = granted(t, await coordinator('n1', k2).acquire(COND), 'n1 gets the other slot while n5 still holds its own');
  const held5 = await lease(fleet.cluster, s5.lease);
  await sleep(Date.parse(held5?.spec.renewTime ?? '') + 3000 + 200 - Date.now() + 50);

  // n5's slot has run out: n2 wins it, but n1 holding + n5 cordoned = 2 = k.
  let requests = 0;
  const n2 = new Coordinator(fleet.config({ ...quick, ...k2 }), 'n2', { log: recordingLogger(), onRequest: () => requests++ });
  made.push(n2);
  await n2.check();
  requests = 0;
  const blocked = refused(t, await n2.acquire(COND), 'CordonedNodes');
  t.equal(requests, 7, 'it cost 7 requests: list, claim, list, Node list, marker read and written, slot given back');
  t.match(
    blocked.message,
    new RegExp(
      `^n5 \\(cordoned for ${COND}, run test, .*; down or cut off from the API server since ${held5?.spec.renewTime?.replace(/\./g, '\\.')}: its agent last renewed ${s5.lease} then, and it ran out at .*\\) ` +
        'is still cordoned by its agent; it counts against the 2 repair slots until its agent uncordons it or an operator does, and with the slot held by n1 none is left$',
    ),
    'the refusal names the orphan, its cordon, since when its agent is gone and the holder',
  );
  const given = await lease(fleet.cluster, s5.lease);
  t.equal(given?.spec.holderIdentity, undefined, 'the slot n2 won is given back at once');
  t.equal(given?.metadata.annotations?.['node-health-agent/last-holder'], 'n2', 'by n2');
  t.equal(given?.metadata.annotations?.['node-health-agent/outcome'], 'cordoned-nodes', 'with the reason as its outcome');
  const marker = await lease(fleet.cluster, 'node-health-repair-cordoned');
  t.equal(marker?.spec.holderIdentity, 'n2', 'a marker Lease tells the other nodes');
  t.equal(marker?.metadata.annotations?.['node-health-agent/cordoned-nodes'], 'n5', 'naming n5');
  const markerEnd = Date.parse(marker?.spec.renewTime ?? '') + (marker?.spec.leaseDurationSeconds ?? 0) * 1000;
  retryFrom(t, blocked, markerEnd, 'the marker runs out');

  // The next node is refused from the marker alone: it claims nothing and lists no Node.
  const before = await slotVersions();
  let n3requests = 0;
  const n3first = new Coordinator(fleet.config({ ...quick, ...k2 }), 'n3', { log: recordingLogger(), onRequest: () => n3requests++ });
  made.push(n3first);
  await n3first.check();
  n3requests = 0;
  const byMarker = refused(t, await n3first.acquire(COND), 'CordonedNodes');
  t.equal(n3requests, 1, 'one request: the list of Leases');
  t.match(byMarker.message, /^n5 is still cordoned by its agent without a repair slot \(found by n2 at .*, Lease node-health\/node-health-repair-cordoned\); it counts against the 2 repair slots .* with the slot held by n1 none is left$/, 'and says who found it');
  t.same(await slotVersions(), before, 'no slot Lease was written');

  // An operator's cordon (no annotation) does not count: n5 taken over by an operator, n6 cordoned too.
  await setCordon('n5', 'operator');
  await setCordon('n6', 'operator');
  await sleep(markerEnd - Date.now() + 10);
  const n3 = coordinator('n3', k2);
  const s3 = granted(t, await n3.acquire(COND), "granted once n5's cordon is an operator's: operators' cordons are not counted");
  await s3.release({ repaired: true });

  // The agent's cordon again: refused; the Node deleted: it counts no more.
  await setCordon('n5', 'agent');
  const again = refused(t, await n3.acquire(COND), 'CordonedNodes');
  t.match(again.message, /^n5 \(cordoned for .*; no slot Lease names it any more: its agent is down or cannot reach the API server\) is still cordoned/, 'the message says what is known of its agent');
  const del = await fleet.cluster.admin('DELETE', '/api/v1/nodes/n5');
  t.equal(del.status, 200, 'Node n5 deleted');
  await sleep((again.retryAt ?? 0) - Date.now() + 10);
  const s3b = granted(t, await n3.acquire(COND), 'granted once the cordoned Node is deleted');
  await s3b.release({ repaired: true });
  await s1.release({ repaired: true });
  await addNodes(fleet.cluster, ['n5']);
});

t.test('a slot taken back after a restart is checked before a new run may cordon with it', async (t) => {
  t.teardown(() => setCordon('n7', 'none'));
  const k2 = { slots: 2 };
  const n4 = coordinator('n4', k2);
  granted(t, await n4.acquire(COND), 'n4 gets a slot');
  const s1 = granted(t, await coordinator('n1', k2).acquire(COND), 'n1 gets the other');
  // A node cordoned by an agent without a slot appears (set by hand: no agent could have done it now).
  await setCordon('n7', 'agent');
  n4.stop();
  const restarted = coordinator('n4', k2);
  const back = await restarted.resume();
  t.ok(back, 'resume() takes the slot back to finish the run it was held for');
  const r = refused(t, await restarted.acquire(COND), 'CordonedNodes');
  t.match(r.message, /^n7 \(cordoned for .*\) is still cordoned by its agent; .* with the slot held by n1 none is left$/, 'n1 holding + n7 cordoned = k');
  t.equal((await lease(fleet.cluster, back?.lease ?? ''))?.spec.holderIdentity, undefined, 'and gives it back rather than hand it to a new run');

  // The same without resume(): a restarted agent asking for a new run with its Lease still naming it.
  const n8 = coordinator('n8', k2);
  await setCordon('n7', 'none');
  await sleep((r.retryAt ?? 0) - Date.now() + 10);
  const s8 = granted(t, await n8.acquire(COND), 'n8 gets the freed slot');
  await setCordon('n7', 'agent');
  n8.stop();
  const r8 = refused(t, await coordinator('n8', k2).acquire(COND), 'CordonedNodes');
  t.match(r8.message, /^n7 /, 'for n7');
  t.equal((await lease(fleet.cluster, s8.lease))?.spec.holderIdentity, undefined, 'its slot is given back');
  await s1.release({ repaired: true });
});
