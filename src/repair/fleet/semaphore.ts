// The k-semaphore: k slot Leases named node-health-repair-0 … k-1. A node takes a slot by creating its
// Lease or by replacing a free or run-out one under a resourceVersion precondition (409: another node
// won the race, try the next), renews it every TTL/3 while it holds it, and gives it back by clearing
// holderIdentity; the Lease stays, with the release time and outcome as annotations.
import { performance } from 'node:perf_hooks';
import { messageOf } from '../../errors';
import { Backoff } from '../../system/backoff';
import {
  ANN,
  heldBy,
  isConflict,
  isNotFound,
  LABEL_KIND,
  microTime,
  newLease,
  slotName,
  type Lease,
  type LeaseApi,
} from './leases';
import { background } from '../../system/background';

export interface SemaphoreOptions {
  api: LeaseApi;
  /** The holder identity: this node's name. */
  node: string;
  slots: number;
  ttlMs: number;
  skewMs: number;
}

/** What a list of the namespace's Leases says about the slots. */
export interface SlotView {
  /** A slot Lease naming this node as holder, run out or not: nobody has taken it over. */
  ours?: Lease;
  /** Slots held by other nodes and not run out (any index: a lowered `slots` still counts them). */
  holders: string[];
  /** Slots 0 … k-1 that may be taken, with their Lease when it exists. */
  free: Array<{ index: number; lease?: Lease }>;
}

const SLOT_RE = /^node-health-repair-(\d+)$/;

export class Semaphore {
  readonly durationSeconds: number;

  constructor(readonly opts: SemaphoreOptions) {
    this.durationSeconds = Math.ceil(opts.ttlMs / 1000);
  }

  view(leases: readonly Lease[], now: number): SlotView {
    const view: SlotView = { holders: [], free: [] };
    const byIndex = new Map<number, Lease>();
    for (const l of leases) {
      const m = SLOT_RE.exec(l.metadata.name);
      if (!m || l.metadata.labels?.[LABEL_KIND] !== 'slot') continue;
      byIndex.set(Number(m[1]), l);
      if (l.spec.holderIdentity === this.opts.node) {
        view.ours = l;
        continue;
      }
      const holder = heldBy(l, now, this.opts.skewMs);
      if (holder !== undefined) view.holders.push(holder);
    }
    for (let i = 0; i < this.opts.slots; i++) {
      const lease = byIndex.get(i);
      if (lease && (lease === view.ours || heldBy(lease, now, this.opts.skewMs) !== undefined)) continue;
      view.free.push(lease ? { index: i, lease } : { index: i });
    }
    return view;
  }

  /** Takes one free slot; undefined when another node took it first. */
  async claim(slot: { index: number; lease?: Lease }, condition: string): Promise<Lease | undefined> {
    const { api, node } = this.opts;
    const time = microTime(Date.now());
    const spec = { holderIdentity: node, leaseDurationSeconds: this.durationSeconds, acquireTime: time, renewTime: time };
    try {
      if (!slot.lease) {
        return await api.create(newLease(api.namespace, slotName(slot.index), 'slot', { ...spec, leaseTransitions: 0 }, { [ANN.condition]: condition }));
      }
      const old = slot.lease;
      return await api.update({
        ...old,
        metadata: { ...old.metadata, annotations: { ...old.metadata.annotations, [ANN.condition]: condition } },
        spec: { ...spec, leaseTransitions: (old.spec.leaseTransitions ?? 0) + 1 },
      });
    } catch (err) {
      if (isConflict(err)) return undefined;
      throw err;
    }
  }

  /** Starts renewing a slot this node holds; `sentAt` is the monotonic time its last write was sent. */
  hold(lease: Lease, sentAt: number, onLost: (why: string) => void): HeldSlot {
    return new HeldSlot(this, lease, sentAt, onLost);
  }
}

const FREE_ATTEMPTS = 4;

/**
 * Clears holderIdentity if this node still holds the Lease (re-reading it after a conflict). Returns
 * false when another node holds it by now. Retries transient errors a few times, then throws.
 */
export async function freeSlot(api: LeaseApi, lease: Lease, node: string, outcome: string): Promise<boolean> {
  const backoff = new Backoff(200, 2000);
  let current = lease;
  for (let attempt = 1; ; attempt++) {
    const now = Date.now();
    const { holderIdentity: _holder, ...kept } = current.spec;
    try {
      await api.update({
        ...current,
        metadata: {
          ...current.metadata,
          annotations: {
            ...current.metadata.annotations,
            [ANN.releasedAt]: microTime(now),
            [ANN.lastHolder]: node,
            [ANN.outcome]: outcome,
          },
        },
        spec: { ...kept, renewTime: microTime(now) },
      });
      return true;
    } catch (err) {
      if (attempt >= FREE_ATTEMPTS) {
        throw new Error(
          `cannot release slot Lease ${api.namespace}/${current.metadata.name}: ${messageOf(err)}; it frees itself when its TTL runs out`,
          { cause: err },
        );
      }
      if (isNotFound(err)) return false;
      if (isConflict(err)) {
        try {
          current = await api.get(current.metadata.name);
        } catch (getErr) {
          if (isNotFound(getErr)) return false;
        }
        if (current.spec.holderIdentity !== node) return false;
        continue;
      }
      await new Promise((r) => setTimeout(r, backoff.next()));
    }
  }
}

/** A slot this node holds: renewed every TTL/3; lost when no renewal succeeded for TTL − skew. */
export class HeldSlot {
  readonly lost: Promise<void>;
  private resolveLost!: () => void;
  private lease: Lease;
  private renewTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private isLost = false;
  private readonly backoff = new Backoff(500, 10_000);

  constructor(
    private readonly sem: Semaphore,
    lease: Lease,
    sentAt: number,
    private readonly onLost: (why: string) => void,
  ) {
    this.lease = lease;
    this.lost = new Promise((r) => {
      this.resolveLost = r;
    });
    this.confirmed(sentAt);
  }

  get name(): string {
    return this.lease.metadata.name;
  }

  get wasLost(): boolean {
    return this.isLost;
  }

  /** Stops renewing without giving the slot back (the agent stops; the slot outlives a reboot). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    clearTimeout(this.deadlineTimer);
  }

  /** Stops renewing and gives the slot back; false when another node held it by then. */
  async free(outcome: string): Promise<boolean> {
    this.stop();
    return freeSlot(this.sem.opts.api, this.lease, this.sem.opts.node, outcome);
  }

  /** A renewal (or the claim) sent at monotonic `sentAt` was accepted: the Lease is good until sentAt + TTL. */
  private confirmed(sentAt: number): void {
    const { ttlMs, skewMs } = this.sem.opts;
    clearTimeout(this.deadlineTimer);
    const left = sentAt + ttlMs - skewMs - performance.now();
    this.deadlineTimer = setTimeout(() => this.markLost(`no renewal succeeded within ${ttlMs / 1000}s (the Lease's TTL less the clock-skew margin)`), Math.max(0, left));
    this.deadlineTimer.unref();
    this.schedule(ttlMs / 3);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void background('renewing the repair slot', () => this.renew()), ms);
    this.renewTimer.unref();
  }

  private markLost(why: string): void {
    if (this.isLost || this.stopped) return;
    this.isLost = true;
    this.stop();
    this.onLost(why);
    this.resolveLost();
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const { api, node } = this.sem.opts;
    const sentAt = performance.now();
    try {
      const renewed = await api.update({
        ...this.lease,
        spec: { ...this.lease.spec, holderIdentity: node, leaseDurationSeconds: this.sem.durationSeconds, renewTime: microTime(Date.now()) },
      });
      if (this.stopped) return;
      this.lease = renewed;
      this.backoff.reset();
      this.confirmed(sentAt);
    } catch (err) {
      if (this.stopped) return;
      if (isConflict(err) || isNotFound(err)) {
        // Someone else wrote the Lease: it is still ours only if it still names us.
        try {
          const current = await api.get(this.lease.metadata.name);
          if (current.spec.holderIdentity !== node) {
            this.markLost(`Lease ${api.namespace}/${this.name} is held by ${current.spec.holderIdentity || 'nobody'} now`);
            return;
          }
          this.lease = current;
          this.schedule(0);
          return;
        } catch (getErr) {
          if (isNotFound(getErr)) {
            this.markLost(`Lease ${api.namespace}/${this.name} was deleted`);
            return;
          }
        }
      }
      // Transient: retry soon; the deadline timer decides when it is too late.
      this.schedule(this.backoff.next());
    }
  }
}
