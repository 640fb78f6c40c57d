// The fleet proof with the whole ladder: 50 agents — the real Ladder, Coordinator, NodeApi and
// NodeReporter, each node with its own kubelet client certificate (CN system:node:<name>, O
// system:nodes) and all with the coordination ServiceAccount's token — see the same condition turn True
// at the same instant. Each must take one of k = 3 slot Leases, cordon, drain its pod through the
// Eviction API, reboot (the machine is played: the agent stopped, a new boot ID, the condition gone),
// wait for Ready and the condition False, uncordon and give the slot back. A quarter of the agents
// crash once while their ladder runs (a power cut: connections dropped, no release, no uncordon), half
// of them back within the TTL, half after it: a node whose agent is away past the TTL stays cordoned
// while its slot goes to another node, and still counts against k. Judged from the API server's history
// only (admin watches of Nodes and Leases, the Events on the Nodes): see ladder-support.ts. Times are short and set
// directly (the config loader's floors — lease_ttl ≥ 1m, retry_interval ≥ 5s — would make a run take
// hours). SEED repeats a run's random choices; NODES, SLOTS and TIMEOUT_S (seconds) change the size.
import t from 'tap';
import { fleetUp } from './support';
import { holdsOf, maxConcurrent, ROLLBACKS } from './simulation';
import {
  conditionOf,
  cordoned,
  cordonSpans,
  crashOutcomes,
  eventsByNode,
  judgeByRevision,
  leaseEvents,
  rates,
  simulateLadder,
  type LadderSimOptions,
  type LadderSimResult,
} from './ladder-support';

const options: LadderSimOptions = {
  nodes: Number(process.env.NODES ?? 50),
  slots: Number(process.env.SLOTS ?? 3),
  ttlMs: 8000,
  skewMs: 200,
  minGapMs: 200,
  retryMs: 1000,
  afterMs: 1000,
  pollMs: 250,
  recheckMs: 2000,
  crashRate: 0.25,
  crashAfterMs: [0, 600],
  shutdownMs: [100, 300],
  bootMs: [500, 1500],
  kubeletReadyMs: [100, 400],
  seed: Number(process.env.SEED ?? Math.floor(Math.random() * 1e9)),
  timeoutMs: Number(process.env.TIMEOUT_S ?? 170) * 1000,
  condition: 'KernelDeadlock',
  prefix: 'lsim',
};

/**
 * Whether the node's agent was down (crashed or rebooting) at `at`, or back less than 5 s before it:
 * starting, and racing the other nodes for its run-out slot. (A takeover from an agent that was
 * renewing would also be early by the Lease times, checked on its own.)
 */
function downAt(r: LadderSimResult): (node: string, at: number) => boolean {
  const starting = 5000;
  return (node, at) =>
    r.crashes.some((c) => c.node === node && c.at <= at && at <= (c.backAt ?? r.endAt) + starting) ||
    r.reboots.some((b) => b.node === node && b.acceptedAt <= at && at <= (b.upAt ?? r.endAt) + starting);
}

t.test(`${options.nodes} agents walk the whole ladder for k = ${options.slots}, with crashes: never more than k cordoned, nobody starves`, async (t) => {
  t.comment(`seed ${options.seed}`);
  const names = Array.from({ length: options.nodes }, (_, i) => `${options.prefix}-${String(i).padStart(3, '0')}`);
  const made = Date.now();
  const fleet = await fleetUp(t, names);
  t.comment(`cluster with ${names.length} kubelet identities up in ${((Date.now() - made) / 1000).toFixed(1)} s`);
  const r = await simulateLadder(fleet, names, options);
  const k = options.slots;
  t.same(r.watchErrors, [], 'the watches saw every version of every Node and Lease');

  const last = new Map(r.nodeHistory.map((e) => [e.object.metadata.name, e.object]));
  const unrepaired = names.filter((n) => {
    const node = last.get(n);
    return !node || cordoned(node) || node.spec?.unschedulable === true || conditionOf(node, options.condition) !== 'False';
  });
  t.ok(r.done, `every node repaired within ${options.timeoutMs / 1000} s`);
  t.same(unrepaired, [], 'in the end every Node is schedulable, without the cordon annotation, with the condition False');
  for (const n of unrepaired.slice(0, 3)) t.comment(`${n}:\n${(r.logs.get(n) ?? []).slice(-40).join('\n')}`);

  // k, in etcd's order of writes: cordoned only while a slot Lease names the node, uncordoned before
  // the slot is given back; a node whose slot ran out and was taken over while it was down is an orphan,
  // and counts against k like a holder.
  const verdict = judgeByRevision(r.nodeHistory, r.leaseHistory, k, downAt(r));
  t.ok(verdict.ordered, 'resourceVersions rise strictly within each watch');
  t.same(
    verdict.violations,
    [],
    `${verdict.writes} writes replayed in revision order: every cordon inside a hold of a slot, every release after the uncordon, never more than ${k} nodes cordoned`,
  );
  t.ok(
    verdict.peakCordoned <= k,
    `at most ${k} nodes cordoned by the agents at any revision, orphans included (peak ${verdict.peakCordoned}; holding a slot ${verdict.peakCordonedHolding}; orphans ${verdict.peakOrphans}, ${verdict.orphans.length} in all)`,
  );
  t.equal(verdict.peakHolders, k, 'every slot was in use at some point: the nodes did race');

  // The same on the Lease times: a taken-over holder counts until its renewTime + TTL.
  const { holds, takeovers } = holdsOf(leaseEvents(r.leaseHistory));
  const peak = maxConcurrent(holds);
  t.ok(peak.max <= k, `at most ${k} distinct holders at any instant by the Lease times (peak ${peak.max})`);
  const early = takeovers.filter((x) => x.at < x.fromEnd + options.skewMs);
  t.same(early, [], `no slot taken over before its holder's renewTime + TTL + skew (${takeovers.length} takeovers)`);

  // Nobody starved: every node walked the ladder to the end, as its Events on the Node tell.
  const events = eventsByNode(r.events);
  const spans = cordonSpans(r.nodeHistory);
  const crashed = new Set(r.crashes.map((c) => c.node));
  const noRepairEvent = names.filter((n) => (events.get(n)?.get('LadderRepaired') ?? 0) < 1);
  t.same(noRepairEvent, [], 'every node has a LadderRepaired Event');
  for (const n of noRepairEvent.slice(0, 3)) t.comment(`${n}: ${JSON.stringify(Object.fromEntries(events.get(n) ?? []))}\n${(r.logs.get(n) ?? []).slice(-40).join('\n')}`);
  const neverCordoned = names.filter((n) => !spans.some((s) => s.node === n));
  t.same(neverCordoned, [], 'every node was cordoned by its agent (its Node history)');
  const story = ['LadderStarted', 'LadderCordoned', 'LadderDrained', 'LadderRebooting', 'LadderRebooted', 'LadderUncordoned', 'LadderRepaired'];
  const odd = names
    .filter((n) => !crashed.has(n))
    .filter((n) => story.some((reason) => events.get(n)?.get(reason) !== 1) || (events.get(n)?.get('LadderFailed') ?? 0) > 0 || spans.filter((s) => s.node === n).length !== 1)
    .map((n) => `${n}: ${JSON.stringify(Object.fromEntries(events.get(n) ?? []))}`);
  t.same(odd, [], `each of the ${names.length - crashed.size} nodes that did not crash: one cordon in its Node history and one Event of each step, no failure`);
  // A waiting ladder tells each reason it was refused for once per occurrence, however often it asks.
  const repeated = names
    .filter((n) => !crashed.has(n))
    .map((n) => {
      const deferred = r.events.filter((e) => e.involvedObject.name === n && e.reason === 'LadderDeferred');
      const reasons = new Set(deferred.map((e) => /yet: (\w+):/.exec(e.message)?.[1] ?? e.message));
      return { n, events: deferred.reduce((a, e) => a + (e.count || 1), 0), reasons: [...reasons] };
    })
    .filter((x) => x.events !== x.reasons.length)
    .map((x) => `${x.n}: ${x.events} LadderDeferred Events for ${x.reasons.join(', ')}`);
  t.same(repeated, [], 'one LadderDeferred Event per refusal reason on each node that did not crash');
  const rebooted = new Set(r.reboots.filter((b) => b.upAt !== undefined).map((b) => b.node));
  t.equal(rebooted.size, names.length, `every node rebooted (${r.reboots.length} reboots)`);

  // Crashed holders: their slot came back to them at their next start, or went to another node by TTL.
  const outcomes = crashOutcomes(r.leaseHistory, r.crashes, options.skewMs);
  const bad = outcomes.filter((o) => o.how === 'early' || o.how === 'unresolved').map((o) => `${o.crash.node} (${o.crash.step}): ${o.how}: ${o.detail}`);
  t.same(bad, [], 'no crashed holder lost its slot before its TTL ran out, and none kept it');
  const resumed = outcomes.filter((o) => o.how === 'resumed');
  const byTtl = outcomes.filter((o) => o.how === 'ttl');
  // A crash is due once the ladder has been active a random time; a run that ends first is not crashed.
  const planned = Math.round(options.crashRate * options.nodes);
  t.ok(r.crashes.length >= planned / 2, `${r.crashes.length} of ${planned} planned agents crashed while their ladder ran (in steps: ${r.crashes.map((c) => c.step).join(', ')})`);
  t.ok(resumed.length >= 1, `${resumed.length} crashed holders took their slot back at their next start`);
  t.ok(byTtl.length >= 1, `${byTtl.length} crashed holders' slots were taken over by TTL`);

  // Time and API requests, each identity on its own.
  const repairedAt = Math.max(...spans.map((s) => s.to ?? r.endAt));
  const seconds = (repairedAt - r.hitAt) / 1000;
  const kubelet = rates(r.requests, 'kubelet', r.hitAt, repairedAt);
  const coordination = rates(r.requests, 'coordination', r.hitAt, repairedAt);
  const clean = spans.filter((s) => !crashed.has(s.node) && s.to !== undefined).map((s) => ((s.to as number) - s.from) / 1000);
  const mean = clean.reduce((a, b) => a + b, 0) / clean.length;
  t.comment(
    `${names.length} nodes repaired under k = ${k} in ${seconds.toFixed(1)} s (condition True → last uncordon); ` +
      `cordon → uncordon of a node that did not crash: mean ${mean.toFixed(2)} s, max ${Math.max(...clean).toFixed(2)} s; ` +
      `${r.crashes.length} crashes (${resumed.length} resumed, ${byTtl.length} taken over by TTL, ${outcomes.length - resumed.length - byTtl.length} held no slot), ` +
      `${r.reboots.length} reboots, ${takeovers.length} takeovers, ${verdict.orphans.length} nodes left cordoned past their TTL`,
  );
  const heldUp = r.events.filter((e) => e.reason === 'LadderDeferred' && /yet: CordonedNodes:/.test(e.message));
  t.comment(`${new Set(heldUp.map((e) => e.involvedObject.name)).size} nodes were told CordonedNodes (a node left cordoned held a slot up)`);
  // Slots won and given back at once (the gate's checks after the claim refused) are not repairs.
  const held = holds.filter((h) => h.how === 'released' && !ROLLBACKS.has(h.outcome ?? ''));
  const rolledBack = holds.filter((h) => ROLLBACKS.has(h.outcome ?? ''));
  const meanHold = held.reduce((a, h) => a + (h.end - h.start), 0) / held.length / 1000;
  t.comment(
    `a slot held from claim to release: mean ${meanHold.toFixed(2)} s over ${held.length} holds; ${names.length} × that / k = ${((names.length * meanHold) / k).toFixed(1)} s; ` +
      `${rolledBack.length} slots won and given back at once (${[...new Set(rolledBack.map((h) => h.outcome))].map((o) => `${o} ${rolledBack.filter((h) => h.outcome === o).length}`).join(', ')})`,
  );
  const perNode = new Map<string, number>();
  for (const m of events.values()) for (const [reason, n] of m) perNode.set(reason, (perNode.get(reason) ?? 0) + n / names.length);
  t.comment(`Events per node: ${[...perNode].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${reason} ${n.toFixed(2)}`).join(', ')}`);
  for (const [who, x] of [['kubelet identities', kubelet], ['coordination identity', coordination]] as const) {
    t.comment(
      `${who}: ${x.requests} requests in ${x.seconds.toFixed(1)} s = ${x.perSecond.toFixed(1)}/s (${(x.requests / names.length).toFixed(1)} per node); ` +
        x.byCall
          .map(([call, c]) => `${call} ${c.requests}${c.refused.size > 0 ? ` (${[...c.refused].map(([code, n]) => `${code}: ${n}`).join(', ')})` : ''}`)
          .join(', '),
    );
  }
  t.ok(coordination.requests > 0 && kubelet.requests > 0, 'both identities were counted');
});
