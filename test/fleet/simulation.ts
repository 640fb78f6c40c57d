// The racing simulation: many in-process coordinators (the real Coordinator, each with its own node
// name, all with the ServiceAccount's token as every node would have it) ask for a slot at once, hold it
// for a random short time and release it; some crash while holding (they stop renewing without
// releasing) and come back later. An admin watch records every version of every Lease, and the analysis
// judges the run from that history, not from what the coordinators believe:
//   - holds: who held which slot from when to when; a holder that was taken over is counted as holding
//     until its own renewTime + leaseDurationSeconds, so a takeover before that shows as an overlap;
//   - at no instant more than k distinct holders; no takeover before the Lease ran out (+ skew);
//   - each coordinator's belief (acquire granted → release, loss or crash) lies inside a hold of its
//     node on that Lease; every start kept min_gap from the gap marker before it;
//   - every node finished a repair (no starvation), and crashed holders were taken over only by TTL.
import { readFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import type { RequestRecord } from '../../src/outputs/kubernetes/client';
import { Coordinator } from '../../src/repair/fleet/coordinator';
import { recordingLogger } from '../kubernetes/support';
import type { Cluster } from '../helpers/cluster';
import { addNodes, NAMESPACE, sleep, type Fleet, type LeaseView } from './support';
import { seededRandom } from '../helpers/random';

export interface SimOptions {
  nodes: number;
  slots: number;
  ttlMs: number;
  skewMs: number;
  minGapMs: number;
  retryMs: number;
  /** A holder keeps its slot this long (uniform). */
  holdMs: [number, number];
  /**
   * Share of nodes whose agent crashes while holding (once): it is back after 0.1–0.4 × TTL (and takes
   * its slot back with resume) or after 1.5–2.5 × TTL (the slot ran out meanwhile), half and half.
   */
  crashRate: number;
  seed: number;
  /** Give up (and fail) after this long. */
  timeoutMs: number;
  condition?: string;
  /** Prefix of the node names, so several runs can share a cluster. */
  prefix?: string;
}

export interface LeaseEvent {
  at: number;
  type: string;
  lease: LeaseView;
}

export interface Belief {
  node: string;
  lease: string;
  from: number;
  to: number;
  how: 'released' | 'lost' | 'crashed';
}

export interface Crash {
  node: string;
  lease: string;
  at: number;
  backAfterMs: number;
  resumed: boolean;
}

type Phase = 'waiting' | 'holding' | 'down' | 'done';

export interface PhaseCost {
  requests: number;
  /** Node-seconds spent in the phase. */
  nodeSeconds: number;
}

export interface SimResult {
  options: SimOptions;
  startedAt: number;
  /** When the last node finished its repair (ms from start); undefined when some never did. */
  allDoneMs: number | undefined;
  finished: Map<string, number>;
  history: LeaseEvent[];
  watchError: string | undefined;
  beliefs: Belief[];
  crashes: Crash[];
  requests: Array<RequestRecord & { at: number; phase: Phase }>;
  phases: Record<Phase, PhaseCost>;
  /** Every gate call with the API requests it made (a node makes no others while waiting). */
  calls: Call[];
  /** Slots granted (acquire or resume). */
  grants: number;
}

export interface Call {
  node: string;
  kind: 'check' | 'acquire' | 'resume' | 'release';
  /** "granted", a refusal reason, "none" (resume found nothing) or "done". */
  outcome: string;
  requests: number;
}

/** Watches the namespace's Leases as the admin and records every event with the time it arrived. */
export class LeaseWatch {
  readonly events: LeaseEvent[] = [];
  /** A watch error the API server sent; the history is incomplete then. */
  error: string | undefined;
  private req: ClientRequest | undefined;
  private closed = false;

  private constructor(private readonly cluster: Cluster) {}

  static async start(cluster: Cluster): Promise<LeaseWatch> {
    const w = new LeaseWatch(cluster);
    const list = await cluster.admin<{ metadata: { resourceVersion: string }; items: LeaseView[] }>(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`,
    );
    const now = Date.now();
    for (const l of list.body.items) w.events.push({ at: now, type: 'EXISTING', lease: l });
    await w.open(list.body.metadata.resourceVersion);
    return w;
  }

  private open(resourceVersion: string): Promise<void> {
    const url = new URL(`${this.cluster.server}/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`);
    url.searchParams.set('watch', '1');
    url.searchParams.set('resourceVersion', resourceVersion);
    url.searchParams.set('allowWatchBookmarks', 'false');
    return new Promise((resolve, reject) => {
      const req = request(url, {
        ca: readFileSync(this.cluster.caFile),
        cert: readFileSync(join(this.cluster.dir, 'pki/admin.crt')),
        key: readFileSync(join(this.cluster.dir, 'pki/admin.key')),
        headers: { Accept: 'application/json' },
      });
      this.req = req;
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`watch Leases: ${res.statusCode}`));
          return;
        }
        resolve();
        let buffered = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (line.trim() === '') continue;
            const e = JSON.parse(line) as { type: string; object: LeaseView & { metadata: { resourceVersion: string } } };
            if (e.type === 'ERROR') {
              this.error = line;
              continue;
            }
            this.events.push({ at: Date.now(), type: e.type, lease: e.object });
          }
        });
        res.on('end', () => {
          // The API server ends watches after a while; carry on from the last version seen.
          if (this.closed) return;
          const last = this.events[this.events.length - 1]?.lease.metadata.resourceVersion ?? resourceVersion;
          void this.open(last);
        });
      });
      req.on('error', (err) => {
        if (!this.closed) reject(err);
      });
      req.end();
    });
  }

  stop(): void {
    this.closed = true;
    this.req?.destroy();
  }
}

/** Runs the simulation on a fleet whose namespace holds no Leases of an earlier run. */
export async function simulate(fleet: Fleet, o: SimOptions): Promise<SimResult> {
  const random = seededRandom(o.seed);
  const prefix = o.prefix ?? 'sim';
  const names = Array.from({ length: o.nodes }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  await addNodes(fleet.cluster, names);
  const condition = o.condition ?? 'SimulatedProblem';
  const config = fleet.config({
    slots: o.slots,
    lease_ttl: o.ttlMs,
    max_clock_skew: o.skewMs,
    min_gap: o.minGapMs,
    retry_interval: o.retryMs,
    new_node_grace: 0,
    reboot_lockout: 0,
    // Every node is Ready and none has the condition: the breaker lists the Nodes for every grant and passes.
    storm_cooldown: 0,
  });
  const watch = await LeaseWatch.start(fleet.cluster);
  const startedAt = Date.now();
  const result: SimResult = {
    options: o,
    startedAt,
    allDoneMs: undefined,
    finished: new Map(),
    history: watch.events,
    watchError: undefined,
    beliefs: [],
    crashes: [],
    requests: [],
    phases: { waiting: { requests: 0, nodeSeconds: 0 }, holding: { requests: 0, nodeSeconds: 0 }, down: { requests: 0, nodeSeconds: 0 }, done: { requests: 0, nodeSeconds: 0 } },
    calls: [],
    grants: 0,
  };
  const made = new Map<string, number>();
  const call = async <T>(node: string, kind: Call['kind'], fn: () => Promise<T>, outcome: (v: T) => string): Promise<T> => {
    const before = made.get(node) ?? 0;
    const v = await fn();
    result.calls.push({ node, kind, outcome: outcome(v), requests: (made.get(node) ?? 0) - before });
    return v;
  };
  const phase = new Map<string, { phase: Phase; since: number }>();
  const enter = (node: string, p: Phase) => {
    const now = Date.now();
    const cur = phase.get(node);
    if (cur) result.phases[cur.phase].nodeSeconds += (now - cur.since) / 1000;
    phase.set(node, { phase: p, since: now });
  };
  const deadline = startedAt + o.timeoutMs;
  const crashing = new Set(names.filter(() => random() < o.crashRate));
  const coordinators = new Set<Coordinator>();

  const make = (node: string) => {
    const c = new Coordinator(config, node, {
      log: recordingLogger(),
      random,
      onRequest: (r) => {
        made.set(node, (made.get(node) ?? 0) + 1);
        const p = phase.get(node)?.phase ?? 'waiting';
        result.phases[p].requests++;
        result.requests.push({ ...r, at: Date.now(), phase: p });
      },
    });
    coordinators.add(c);
    return c;
  };

  const agent = async (node: string): Promise<void> => {
    let c = make(node);
    let done = false;
    enter(node, 'waiting');
    // As the agent does at start: verify the identity once.
    await call(node, 'check', () => c.check(), (why) => why ?? 'verified');
    while (!done && Date.now() < deadline) {
      const slot = await call(node, 'acquire', () => c.acquire(condition), (r) => (r.granted ? 'granted' : r.reason));
      if (!slot.granted) {
        await sleep(Math.max(0, Math.min(slot.retryAt ?? Date.now() + o.retryMs, deadline) - Date.now()));
        continue;
      }
      result.grants++;
      const from = Date.now();
      enter(node, 'holding');
      const hold = o.holdMs[0] + random() * (o.holdMs[1] - o.holdMs[0]);
      if (crashing.has(node)) {
        crashing.delete(node);
        await sleep(hold * random());
        c.stop();
        coordinators.delete(c);
        const at = Date.now();
        result.beliefs.push({ node, lease: slot.lease, from, to: at, how: 'crashed' });
        enter(node, 'down');
        const backAfterMs = random() < 0.5 ? o.ttlMs * (0.1 + 0.3 * random()) : o.ttlMs * (1.5 + random());
        const crash: Crash = { node, lease: slot.lease, at, backAfterMs, resumed: false };
        result.crashes.push(crash);
        await sleep(backAfterMs);
        c = make(node);
        enter(node, 'waiting');
        await call(node, 'check', () => c.check(), (why) => why ?? 'verified');
        const back = await call(node, 'resume', () => c.resume(), (s) => (s ? 'granted' : 'none'));
        if (back) {
          crash.resumed = true;
          result.grants++;
          // The repair carries on where it stopped.
          const resumedAt = Date.now();
          enter(node, 'holding');
          await sleep(hold / 2);
          result.beliefs.push({ node, lease: back.lease, from: resumedAt, to: Date.now(), how: 'released' });
          await call(node, 'release', () => back.release({ repaired: true }), () => 'done');
          done = true;
        }
        continue;
      }
      const outcome = await Promise.race([sleep(hold).then(() => 'held' as const), slot.lost.then(() => 'lost' as const)]);
      const to = Date.now();
      if (outcome === 'lost') {
        result.beliefs.push({ node, lease: slot.lease, from, to, how: 'lost' });
        enter(node, 'waiting');
        continue;
      }
      result.beliefs.push({ node, lease: slot.lease, from, to, how: 'released' });
      await call(node, 'release', () => slot.release({ repaired: true }), () => 'done');
      done = true;
    }
    if (done) result.finished.set(node, Date.now() - startedAt);
    enter(node, 'done');
  };

  try {
    await Promise.all(names.map((n) => agent(n)));
  } finally {
    for (const c of coordinators) c.stop();
    // Let the last watch events arrive.
    await sleep(300);
    watch.stop();
    result.watchError = watch.error;
  }
  if (result.finished.size === names.length) result.allDoneMs = Math.max(...result.finished.values());
  return result;
}

export interface Hold {
  node: string;
  lease: string;
  start: number;
  /** Released: the release time; taken over or still open: renewTime + leaseDurationSeconds. */
  end: number;
  how: 'released' | 'expired' | 'open';
  outcome?: string;
  /** Started by the holder renewing its own run-out Lease (resume), not by a claim. */
  resumed: boolean;
}

export interface Takeover {
  lease: string;
  from: string;
  to: string;
  at: number;
  /** When the previous holder's Lease ran out by its own renewTime + leaseDurationSeconds. */
  fromEnd: number;
}

const ms = (s: string | undefined): number => Date.parse(s ?? '');

/** Who held which slot from when to when, from the Lease versions alone (times as written in them). */
export function holdsOf(history: readonly LeaseEvent[]): { holds: Hold[]; takeovers: Takeover[]; gapBumps: number[] } {
  const holds: Hold[] = [];
  const takeovers: Takeover[] = [];
  const gapBumps: number[] = [];
  const current = new Map<string, { hold: Hold; promise: number }>();
  const seen = new Set<string>();
  for (const e of history) {
    const l = e.lease;
    const key = `${l.metadata.name}@${l.metadata.resourceVersion}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const name = l.metadata.name;
    if (name === 'node-health-repair-gap') {
      gapBumps.push(ms(l.spec.renewTime));
      continue;
    }
    if (!/^node-health-repair-\d+$/.test(name)) continue;
    const holder = l.spec.holderIdentity ?? '';
    const promise = ms(l.spec.renewTime) + (l.spec.leaseDurationSeconds ?? 0) * 1000;
    const cur = current.get(name);
    if (cur && holder === cur.hold.node) {
      if (ms(l.spec.renewTime) > cur.promise) {
        // It had run out and nobody took it; the holder renewed it again (resume).
        cur.hold.end = cur.promise;
        cur.hold.how = 'expired';
        const hold: Hold = { node: holder, lease: name, start: ms(l.spec.renewTime), end: promise, how: 'open', resumed: true };
        holds.push(hold);
        current.set(name, { hold, promise });
      } else {
        cur.promise = promise;
        cur.hold.end = promise;
      }
      continue;
    }
    if (cur && holder === '') {
      cur.hold.end = ms(l.metadata.annotations?.['node-health-agent/released-at']);
      cur.hold.how = 'released';
      const outcome = l.metadata.annotations?.['node-health-agent/outcome'];
      if (outcome) cur.hold.outcome = outcome;
      current.delete(name);
      continue;
    }
    if (cur) {
      cur.hold.end = cur.promise;
      cur.hold.how = 'expired';
      takeovers.push({ lease: name, from: cur.hold.node, to: holder, at: ms(l.spec.acquireTime), fromEnd: cur.promise });
      current.delete(name);
    }
    if (holder !== '') {
      const hold: Hold = { node: holder, lease: name, start: ms(l.spec.acquireTime), end: promise, how: 'open', resumed: false };
      holds.push(hold);
      current.set(name, { hold, promise });
    }
  }
  return { holds, takeovers, gapBumps: gapBumps.sort((a, b) => a - b) };
}

/** The most distinct nodes holding at one instant, and when. */
export function maxConcurrent(holds: readonly Hold[]): { max: number; at: number } {
  const points = holds.flatMap((h) => [
    { t: h.start, d: 1, node: h.node },
    { t: h.end, d: -1, node: h.node },
  ]);
  // Ends before starts at the same instant: [start, end) intervals.
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  const active = new Map<string, number>();
  let best = { max: 0, at: 0 };
  for (const p of points) {
    active.set(p.node, (active.get(p.node) ?? 0) + p.d);
    if ((active.get(p.node) ?? 0) <= 0) active.delete(p.node);
    if (active.size > best.max) best = { max: active.size, at: p.t };
  }
  return best;
}

export const ROLLBACKS = new Set(['gap-conflict', 'breaker', 'cordoned-nodes', 'error']);

export interface Costs {
  seconds: number;
  requests: number;
  qps: number;
  byCall: Record<string, number>;
  /** Mean API requests of one gate call of each kind and outcome. */
  perCall: Record<string, { calls: number; requests: number }>;
  /** Requests no gate call made: the renewals of held slots. */
  renewals: number;
  /** Mean nodes waiting for a slot, and how often each asked (refused acquire calls per node-second). */
  meanWaiting: number;
  pollsPerWaitingNodeSecond: number;
  renewalsPerHoldingNodeSecond: number;
}

/** Where the requests of a run went: the inputs of the extrapolation in the benchmark. */
export function costs(r: SimResult): Costs {
  const end = r.allDoneMs ?? r.options.timeoutMs;
  const byCall: Record<string, number> = {};
  for (const q of r.requests) byCall[`${q.verb} ${q.resource}`] = (byCall[`${q.verb} ${q.resource}`] ?? 0) + 1;
  const perCall: Costs['perCall'] = {};
  for (const c of r.calls) {
    const k = `${c.kind} ${c.kind === 'acquire' && c.outcome !== 'granted' ? 'refused' : c.outcome === 'verified' || c.outcome === 'done' ? '' : c.outcome}`.trim();
    const e = (perCall[k] ??= { calls: 0, requests: 0 });
    e.calls++;
    e.requests += c.requests;
  }
  for (const e of Object.values(perCall)) e.requests /= e.calls;
  const inCalls = r.calls.reduce((n, c) => n + c.requests, 0);
  const renewals = r.requests.length - inCalls;
  const polls = r.calls.filter((c) => c.kind === 'acquire' && c.outcome !== 'granted').length;
  return {
    seconds: end / 1000,
    requests: r.requests.length,
    qps: r.requests.length / (end / 1000),
    byCall,
    perCall,
    renewals,
    meanWaiting: r.phases.waiting.nodeSeconds / (end / 1000),
    pollsPerWaitingNodeSecond: polls / r.phases.waiting.nodeSeconds,
    renewalsPerHoldingNodeSecond: renewals / r.phases.holding.nodeSeconds,
  };
}
