// The RepairGate: decides whether this node may start a disruptive repair now and, if so, hands it one
// of the k slots. In order, cheapest first, from one list of the namespace's Leases: a slot this node
// still holds is given back to it (checked like a new one); then its reboot lockout, the new-node grace,
// the breaker's storm cooldown, the cluster-wide minimum gap, the slot count and the cordoned-nodes
// marker. Only a node that has won a slot then reads the Leases again and lists the Nodes: for the bound
// on cordoned nodes (cordoned.ts) and for the breaker; then it moves the gap marker forward (a conflict
// means another node started at the same moment: it backs off). So a crowd of waiting nodes never lists
// every Node at once, and a refused node leaves no trace but the marker that spares the others the list.
import { performance } from 'node:perf_hooks';
import type { Config } from '../../config/schema';
import { formatDuration } from '../../config/values';
import { messageOf } from '../../errors';
import { createKubeClient, KubeApiError, type KubeClient, type RequestRecord } from '../../outputs/kubernetes';
import type { Logger, RepairGate, Refusal, Slot } from '../../types';
import { judge, listNodes, type NodeLite } from './breaker';
import { cordonedMessage, markedMessage, markedNodes, orphansOf, type Orphan } from './cordoned';
import { configuredIdentity, CoordinationUnavailable, MANIFEST, verifyIdentity } from './identity';
import {
  ANN,
  BREAKER_LEASE,
  CORDONED_LEASE,
  GAP_LEASE,
  isConflict,
  leaseEnd,
  LeaseApi,
  lockoutName,
  microTime,
  parseTime,
  type Lease,
} from './leases';
import { forceMarker, putMarker } from './markers';
import { freeSlot, Semaphore, type HeldSlot } from './semaphore';
import { background } from '../../system/background';
import type { CoordinationStatus } from '../../types';
export type { CoordinationStatus };

export interface CoordinatorOptions {
  log: Logger;
  /** Called after every API request of the coordination identity (metrics, measurements). */
  onRequest?: (r: RequestRecord) => void;
  random?: () => number;
}

export class Coordinator implements RepairGate {
  private readonly cfg: Config['coordination'];
  private readonly client: KubeClient | undefined;
  private readonly leases: LeaseApi | undefined;
  private readonly sem: Semaphore | undefined;
  private readonly log: Logger;
  private readonly random: () => number;
  private reason: string | null;
  private ready = false;
  private identity = '';
  private nodeCreated: number | undefined;
  /** `checked`: granted by acquire() after the bound on cordoned nodes; a slot resume() took back is not. */
  private held: { slot: HeldSlot; condition: string; checked: boolean } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private startTimer: NodeJS.Timeout | undefined;
  private lastRefusal: CoordinationStatus['lastRefusal'] = null;
  private requests = 0;
  /** A lockout that could not be written to its Lease still holds in this process. */
  private localLockoutUntil = 0;

  /** No I/O: a disabled or misconfigured identity only sets the reason; check() verifies a configured one. */
  constructor(
    config: Config,
    readonly node: string,
    opts: CoordinatorOptions,
  ) {
    this.cfg = config.coordination;
    this.log = opts.log;
    this.random = opts.random ?? Math.random;
    const configured = configuredIdentity(config.coordination, config.kubernetes);
    if ('disabled' in configured) {
      this.reason = configured.disabled;
    } else {
      this.client = createKubeClient(config.kubernetes, {
        kubeconfig: configured.kubeconfig,
        onRequest: (r) => {
          this.requests++;
          opts.onRequest?.(r);
        },
      }).client;
      this.leases = new LeaseApi(this.client, this.cfg.namespace, config.kubernetes.field_manager);
      this.sem = new Semaphore({ api: this.leases, node, slots: this.cfg.slots, ttlMs: this.cfg.lease_ttl, skewMs: this.cfg.max_clock_skew });
      this.reason = 'the coordination identity has not been verified yet';
    }
  }

  /** Why disruptive repairs are not possible now (for status and diagnose); undefined when they are. */
  disabledReason(): string | undefined {
    return this.reason ?? undefined;
  }

  /**
   * Verifies the identity in the background after a random delay of up to `maxDelayMs`, so that status
   * can say early why repairs cannot be coordinated, while a fleet restarting its agents at once does
   * not send every check in the same second. Not needed for acquire(), which verifies when it must.
   */
  start(maxDelayMs = 5 * 60_000): void {
    if (!this.client || this.startTimer) return;
    this.startTimer = setTimeout(() => void background('checking the coordination Leases', () => this.check()), Math.round(maxDelayMs * this.random()));
    this.startTimer.unref();
  }

  /** Verifies the identity against the API server; returns the reason when it cannot coordinate. */
  async check(): Promise<string | undefined> {
    if (!this.client || this.stopped) return this.disabledReason();
    try {
      await this.verify();
    } catch (err) {
      if (err instanceof CoordinationUnavailable) {
        this.ready = false;
        this.reason = err.message;
      } else if (!this.ready) {
        // Unreachable: nothing was verified yet. Once verified, an outage is acquire()'s to report.
        this.reason = `cannot verify the coordination identity: ${messageOf(err)}`;
      }
    }
    return this.disabledReason();
  }

  status(): CoordinationStatus {
    return {
      enabled: this.cfg.enabled,
      ready: this.ready,
      reason: this.reason,
      identity: this.identity,
      credentials: this.client?.credentials.describe() ?? '',
      apiServer: this.client?.server ?? '',
      namespace: this.cfg.namespace,
      slots: this.cfg.slots,
      held: this.held?.slot.name ?? null,
      lastRefusal: this.lastRefusal,
      requests: this.requests,
    };
  }

  acquire(condition: string): Promise<Slot | Refusal> {
    return this.serial(() => this.acquireNow(condition));
  }

  resume(): Promise<Slot | undefined> {
    return this.serial(() => this.resumeNow());
  }

  /** Stops renewing a held slot without giving it back (it outlives a reboot) and closes connections. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.startTimer);
    this.held?.slot.stop();
    this.client?.close();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async verify(): Promise<void> {
    const v = await verifyIdentity(this.client as KubeClient, this.cfg.namespace, this.node);
    if (!this.ready) {
      this.log.info(`coordination: ${v.identity || 'the coordination identity'} may coordinate repairs through Leases in namespace ${this.cfg.namespace}`);
    }
    this.identity = v.identity;
    this.nodeCreated = v.nodeCreated;
    this.ready = true;
    this.reason = null;
  }

  private refuse(reason: string, message: string, retryAt?: number): Refusal {
    this.lastRefusal = { reason, message, at: new Date().toISOString(), retryAt: retryAt === undefined ? null : new Date(retryAt).toISOString() };
    this.log.debug(`coordination: no slot for ${this.node}: ${reason}: ${message}`);
    return retryAt === undefined ? { granted: false, reason, message } : { granted: false, reason, message, retryAt };
  }

  /** When the identity lost its permissions (or the namespace is gone), say so instead of failing. */
  private unavailable(err: unknown): Refusal | undefined {
    if (!(err instanceof KubeApiError)) return undefined;
    const missingNamespace = err.status === 404 && /namespaces? "?[a-z0-9-]+"? not found/i.test(err.serverMessage);
    if (err.status !== 401 && err.status !== 403 && !missingNamespace) return undefined;
    this.ready = false;
    this.reason = missingNamespace
      ? `namespace ${this.cfg.namespace} does not exist (${err.serverMessage}): apply ${MANIFEST} or set [coordination] namespace`
      : `the coordination identity ${this.identity || this.client?.credentials.describe()} was refused (${err.status} ${err.reason}: ${err.serverMessage}): apply ${MANIFEST}`;
    return this.refuse('CoordinationUnavailable', this.reason);
  }

  private retrySoon(now: number): number {
    return now + Math.round(this.cfg.retry_interval * (0.5 + this.random()));
  }

  /**
   * When a refusal lasts until a known time, nodes that were refused together would all ask again at
   * that instant (every node waiting for the gap or the cooldown to end): spread them over half a
   * retry_interval after it.
   */
  private spread(at: number): number {
    return at + Math.round((this.cfg.retry_interval / 2) * this.random());
  }

  private async acquireNow(condition: string): Promise<Slot | Refusal> {
    if (this.stopped) throw new Error('coordination: stopped; no more slots are handed out');
    if (!this.client || !this.leases || !this.sem) return this.refuse('CoordinationDisabled', this.reason ?? '');
    if (this.held?.checked && !this.held.slot.wasLost) return this.slotOf(this.held.slot, this.held.condition);
    if (!this.ready) {
      try {
        await this.verify();
      } catch (err) {
        if (err instanceof CoordinationUnavailable) {
          this.reason = err.message;
          return this.refuse('CoordinationUnavailable', err.message);
        }
        throw err;
      }
    }
    try {
      const held = this.held && !this.held.slot.wasLost ? this.held : undefined;
      if (held) return await this.checkResumed(held, this.leases, this.client);
      return await this.decide(condition, this.leases, this.client, this.sem);
    } catch (err) {
      const refusal = this.unavailable(err);
      if (refusal) return refusal;
      throw new Error(`coordination: cannot decide on a slot for ${this.node} to repair ${condition}: ${messageOf(err)}`, { cause: err });
    }
  }

  private async decide(condition: string, leases: LeaseApi, client: KubeClient, sem: Semaphore): Promise<Slot | Refusal> {
    const cfg = this.cfg;
    const skew = cfg.max_clock_skew;
    const list = await leases.list();
    const now = Date.now();
    const byName = new Map(list.map((l) => [l.metadata.name, l]));
    const view = sem.view(list, now);
    if (view.ours) {
      // Its agent restarted without resume(), or lost the slot and asks again: whether or not the Lease ran
      // out meanwhile, a new run will cordon, so it is checked like a claim.
      const renewed = await this.renewLease(view.ours);
      if (!renewed) return this.refuse('SlotsBusy', 'the slot this node held was taken by another node a moment ago', this.retrySoon(now));
      let bound: Awaited<ReturnType<Coordinator['checkBound']>>;
      try {
        bound = await this.checkBound(leases, client, list);
      } catch (err) {
        await freeSlot(leases, renewed.lease, this.node, 'error').catch(() => undefined);
        throw err;
      }
      if ('blocked' in bound) {
        const until = await this.markCordoned(leases, bound.blocked);
        await freeSlot(leases, renewed.lease, this.node, 'cordoned-nodes');
        return this.refuseCordoned(bound.blocked, bound.holders, until);
      }
      return this.take(renewed.lease, renewed.sentAt, condition, true);
    }

    const lockout = byName.get(lockoutName(this.node));
    const lockedUntil = Math.max(this.localLockoutUntil, lockout?.spec.holderIdentity === this.node ? (leaseEnd(lockout.spec) ?? 0) : 0);
    if (now < lockedUntil) {
      return this.refuse(
        'RebootLockout',
        `a reboot of ${this.node} did not help; it takes no repair slot until ${iso(lockedUntil)} (Lease ${cfg.namespace}/${lockoutName(this.node)}, [coordination] reboot_lockout = ${formatDuration(cfg.reboot_lockout)})`,
        this.spread(lockedUntil),
      );
    }
    if (this.nodeCreated !== undefined && now < this.nodeCreated + cfg.new_node_grace) {
      return this.refuse(
        'NewNodeGrace',
        `Node ${this.node} was created at ${iso(this.nodeCreated)}; nodes younger than ${formatDuration(cfg.new_node_grace)} are not repaired ([coordination] new_node_grace)`,
        this.spread(this.nodeCreated + cfg.new_node_grace),
      );
    }
    const breaker = byName.get(BREAKER_LEASE);
    const breakerEnd = breaker ? leaseEnd(breaker.spec) : undefined;
    if (breakerEnd !== undefined && now < breakerEnd + skew) {
      const what = breaker?.metadata.annotations?.[ANN.unhealthy] ?? 'too many nodes were unhealthy';
      return this.refuse(
        'UnhealthyBreaker',
        `the breaker tripped at ${breaker?.spec.renewTime ?? '?'} (${what}); no repair starts before ${iso(breakerEnd + skew)} ([coordination] storm_cooldown)`,
        this.spread(breakerEnd + skew),
      );
    }
    const gap = byName.get(GAP_LEASE);
    const last = parseTime(gap?.spec.renewTime);
    // A spacing policy, not exclusion: judged without the clock-skew margin.
    if (cfg.min_gap > 0 && last !== undefined && now < last + cfg.min_gap) {
      return this.refuse(
        'MinimumGap',
        `the last repair in the cluster ${gap?.metadata.annotations?.[ANN.outcome] ?? 'started or finished'} at ${iso(last)} on ${gap?.spec.holderIdentity ?? '?'}; the next may start ${formatDuration(cfg.min_gap)} later ([coordination] min_gap)`,
        this.spread(last + cfg.min_gap),
      );
    }
    if (view.holders.length >= cfg.slots || view.free.length === 0) {
      return this.refuse('SlotsBusy', `all ${cfg.slots} repair slots are held (by ${view.holders.join(', ') || 'nodes with a higher slot count'})`, this.retrySoon(now));
    }
    // A node refused a moment ago for nodes left cordoned said so in a marker: the others wait for it to
    // run out instead of each claiming a slot and listing every Node to find the same. Only ever a refusal.
    const marker = byName.get(CORDONED_LEASE);
    const markerEnd = marker ? leaseEnd(marker.spec) : undefined;
    if (marker && markerEnd !== undefined && now < markerEnd) {
      const orphans = markedNodes(marker).filter((n) => n !== this.node && !view.holders.includes(n));
      if (orphans.length > 0 && view.holders.length + orphans.length >= cfg.slots) {
        return this.refuse('CordonedNodes', markedMessage(orphans, view.holders, cfg.slots, marker, `${cfg.namespace}/${CORDONED_LEASE}`), this.spread(markerEnd));
      }
    }

    const free = [...view.free];
    for (let i = free.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [free[i], free[j]] = [free[j] as (typeof free)[number], free[i] as (typeof free)[number]];
    }
    let claimed: Lease | undefined;
    let sentAt = 0;
    for (const slot of free) {
      sentAt = performance.now();
      claimed = await sem.claim(slot, condition);
      if (claimed) break;
    }
    if (!claimed) return this.refuse('SlotsBusy', 'other nodes took the free repair slots first', this.retrySoon(Date.now()));

    // The slot is ours, but nothing has been disrupted yet: any refusal from here gives it back.
    const rollback = (outcome: string) => freeSlot(leases, claimed as Lease, this.node, outcome);
    try {
      const bound = await this.checkBound(leases, client, list);
      if ('blocked' in bound) {
        // Before the slot is free: a node that then sees it free also sees why it may not take it.
        const until = await this.markCordoned(leases, bound.blocked);
        await rollback('cordoned-nodes');
        return this.refuseCordoned(bound.blocked, bound.holders, until);
      }
      const verdict = judge(
        bound.nodes,
        { maxNodes: cfg.breaker_max_nodes, maxPercent: cfg.breaker_max_percent, conditions: [condition, ...cfg.breaker_conditions], graceMs: cfg.new_node_grace },
        new Set(bound.holders),
        Date.now(),
      );
      if (verdict.tripped) {
        const shown = verdict.unhealthy.slice(0, 10).join(', ') + (verdict.unhealthy.length > 10 ? ', …' : '');
        const what = `${verdict.unhealthy.length} of ${verdict.total} nodes unhealthy (${shown}), more than the ${verdict.allowed} allowed`;
        // Without a cooldown the breaker is judged again at the next request.
        const until = cfg.storm_cooldown > 0 ? Date.now() + cfg.storm_cooldown + skew : Date.now();
        if (cfg.storm_cooldown > 0) {
          await forceMarker(leases, { name: BREAKER_LEASE, kind: 'breaker', holder: this.node, durationMs: cfg.storm_cooldown, annotations: { [ANN.unhealthy]: what } }).catch(
            (err: unknown) => this.log.warning(`coordination: cannot record the tripped breaker in Lease ${cfg.namespace}/${BREAKER_LEASE}: ${messageOf(err)}`),
          );
        }
        await rollback('breaker');
        this.log.warning(`coordination: breaker tripped: ${what}; no repair starts before ${iso(until)}`);
        return this.refuse(
          'UnhealthyBreaker',
          `${what} ([coordination] breaker_max_nodes, breaker_max_percent); no repair starts before ${iso(until)}`,
          cfg.storm_cooldown > 0 ? this.spread(until) : this.retrySoon(until),
        );
      }
      if (cfg.min_gap > 0) {
        try {
          await putMarker(leases, { name: GAP_LEASE, kind: 'gap', holder: this.node, durationMs: cfg.min_gap, annotations: { [ANN.outcome]: 'started', [ANN.condition]: condition } }, gap);
        } catch (err) {
          if (!isConflict(err)) throw err;
          await rollback('gap-conflict');
          return this.refuse('MinimumGap', 'another node started or finished a repair at the same moment', this.spread(Date.now() + cfg.min_gap));
        }
      }
    } catch (err) {
      await rollback('error').catch(() => undefined);
      throw err;
    }
    if (lockout?.spec.holderIdentity === this.node) {
      // Run out (checked above): remove it so the namespace does not collect one Lease per node.
      await leases.delete(lockout).catch(() => undefined);
    }
    return this.take(claimed, sentAt, condition, true);
  }

  /**
   * The bound on cordoned nodes, once this node has written its claim: the Leases read again (the claims
   * of others up to now), then the Nodes. Why this order and this moment keep the bound: cordoned.ts.
   */
  private async checkBound(
    leases: LeaseApi,
    client: KubeClient,
    before: readonly Lease[] = [],
  ): Promise<{ nodes: NodeLite[]; holders: string[] } | { blocked: Orphan[]; holders: string[] }> {
    const list = await leases.list();
    const holders = (this.sem as Semaphore).view(list, Date.now()).holders;
    const nodes = await listNodes(client);
    const orphans = orphansOf(nodes, [...list, ...before], new Set(holders), this.node);
    if (orphans.length > 0 && holders.length + orphans.length >= this.cfg.slots) return { blocked: orphans, holders };
    return { nodes, holders };
  }

  /** Tells the other waiting nodes, for one retry_interval, which nodes hold the slots up; returns when that ends. */
  private async markCordoned(leases: LeaseApi, orphans: readonly Orphan[]): Promise<number | undefined> {
    const cfg = this.cfg;
    try {
      const marker = await forceMarker(leases, {
        name: CORDONED_LEASE,
        kind: 'cordoned',
        holder: this.node,
        durationMs: cfg.retry_interval,
        annotations: { [ANN.cordonedNodes]: orphans.map((o) => o.node).join(',') },
      });
      return leaseEnd(marker.spec);
    } catch (err) {
      this.log.warning(`coordination: cannot record the nodes left cordoned in Lease ${cfg.namespace}/${CORDONED_LEASE}: ${messageOf(err)}`);
      return undefined;
    }
  }

  private refuseCordoned(orphans: readonly Orphan[], holders: readonly string[], until: number | undefined): Refusal {
    return this.refuse('CordonedNodes', cordonedMessage(orphans, holders, this.cfg.slots), until !== undefined ? this.spread(until) : this.retrySoon(Date.now()));
  }

  /** A slot resume() took back, now asked for by a new run: it may cordon only within the bound. */
  private async checkResumed(held: NonNullable<Coordinator['held']>, leases: LeaseApi, client: KubeClient): Promise<Slot | Refusal> {
    const bound = await this.checkBound(leases, client);
    if ('blocked' in bound) {
      const until = await this.markCordoned(leases, bound.blocked);
      if (this.held === held) this.held = undefined;
      await held.slot.free('cordoned-nodes');
      return this.refuseCordoned(bound.blocked, bound.holders, until);
    }
    held.checked = true;
    return this.slotOf(held.slot, held.condition);
  }

  private async resumeNow(): Promise<Slot | undefined> {
    if (this.stopped || !this.client || !this.leases || !this.sem) return undefined;
    if (this.held && !this.held.slot.wasLost) return this.slotOf(this.held.slot, this.held.condition);
    if (!this.ready) {
      try {
        await this.verify();
      } catch (err) {
        if (err instanceof CoordinationUnavailable) {
          this.reason = err.message;
          this.log.error(`coordination: cannot take back a slot this node may hold: ${err.message}`);
          return undefined;
        }
        throw err;
      }
    }
    const ours = this.sem.view(await this.leases.list(), Date.now()).ours;
    if (!ours) return undefined;
    const renewed = await this.renewLease(ours);
    // Not checked: it only finishes the run it was held for (no new cordon); acquire() checks it.
    return renewed ? this.take(renewed.lease, renewed.sentAt, ours.metadata.annotations?.[ANN.condition] ?? '', false) : undefined;
  }

  /** Renews a slot Lease that still names this node; undefined when another node took it first. */
  private async renewLease(lease: Lease): Promise<{ lease: Lease; sentAt: number } | undefined> {
    const leases = this.leases as LeaseApi;
    const sem = this.sem as Semaphore;
    const sentAt = performance.now();
    try {
      const renewed = await leases.update({
        ...lease,
        spec: { ...lease.spec, holderIdentity: this.node, leaseDurationSeconds: sem.durationSeconds, renewTime: microTime(Date.now()) },
      });
      return { lease: renewed, sentAt };
    } catch (err) {
      if (isConflict(err)) return undefined;
      throw err;
    }
  }

  private take(lease: Lease, sentAt: number, condition: string, checked: boolean): Slot {
    const slot = (this.sem as Semaphore).hold(lease, sentAt, (why) => {
      this.log.warning(`coordination: lost repair slot ${this.cfg.namespace}/${lease.metadata.name}: ${why}; disruptive steps must stop`, {
        condition,
      });
      if (this.held?.slot === slot) this.held = undefined;
    });
    this.held = { slot, condition, checked };
    this.log.info(`coordination: ${this.node} holds repair slot ${this.cfg.namespace}/${lease.metadata.name} to repair ${condition || 'a condition'}`, { condition });
    return this.slotOf(slot, condition);
  }

  private slotOf(slot: HeldSlot, condition: string): Slot {
    return {
      granted: true,
      lease: slot.name,
      lost: slot.lost,
      release: (outcome) => this.serial(() => this.release(slot, condition, outcome)),
    };
  }

  private async release(slot: HeldSlot, condition: string, outcome: { repaired: boolean; rebootFailed?: boolean }): Promise<void> {
    const cfg = this.cfg;
    const leases = this.leases as LeaseApi;
    if (this.held?.slot === slot) this.held = undefined;
    let lockoutError: unknown;
    if (outcome.rebootFailed && cfg.reboot_lockout > 0) {
      // Before the slot is given back: a lockout lost in between would let the node reboot again at once.
      this.localLockoutUntil = Date.now() + cfg.reboot_lockout;
      try {
        await forceMarker(leases, {
          name: lockoutName(this.node),
          kind: 'lockout',
          holder: this.node,
          durationMs: cfg.reboot_lockout,
          annotations: { [ANN.condition]: condition, [ANN.outcome]: 'reboot-failed' },
        });
      } catch (err) {
        lockoutError = err;
      }
    }
    const text = outcome.rebootFailed ? 'reboot-failed' : outcome.repaired ? 'repaired' : 'not-repaired';
    if (cfg.min_gap > 0 && !slot.wasLost) {
      // Before the slot is free: a node that then sees it free also sees the gap it must keep.
      await forceMarker(leases, { name: GAP_LEASE, kind: 'gap', holder: this.node, durationMs: cfg.min_gap, annotations: { [ANN.outcome]: 'finished', [ANN.condition]: condition } }).catch(
        (err: unknown) => this.log.warning(`coordination: cannot record the end of the repair in Lease ${cfg.namespace}/${GAP_LEASE}: ${messageOf(err)}`),
      );
    }
    await slot.free(text);
    this.log.info(`coordination: ${this.node} gave back repair slot ${cfg.namespace}/${slot.name} (${text})`, { condition });
    if (lockoutError !== undefined) {
      throw new Error(
        `coordination: cannot record the reboot lockout of ${this.node} in Lease ${cfg.namespace}/${lockoutName(this.node)}: ${messageOf(lockoutError)}; ` +
          `it holds in this process only, until ${iso(this.localLockoutUntil)}`,
        { cause: lockoutError },
      );
    }
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Verifies the coordination identity once (for diagnose): the reason disruptive repairs are off, if any. */
export async function coordinationReadiness(config: Config, node: string, opts: CoordinatorOptions): Promise<CoordinationStatus> {
  const c = new Coordinator(config, node, opts);
  try {
    await c.check();
    return c.status();
  } finally {
    c.stop();
  }
}
