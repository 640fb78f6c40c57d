// Writes the agent's NodeConditions with a strategic-merge PATCH of nodes/<name>/status that carries only
// the condition types the agent owns: status.conditions merges by type, so the kubelet's Ready and
// pressure conditions, written concurrently with the same identity, are left alone.
//
// The writer keeps the latest desired state, not a queue: however many changes arrive while the API
// server is away, one write brings the Node up to date, and memory is bounded by the number of owned
// types. A write happens when the desired state differs from what was written, and at least every
// heartbeat; a token bucket caps how often, back-off with jitter spaces retries.
import { messageOf } from '../../errors';
import type { NodeCondition } from '../../types';
import type { Logger } from '../log';
import { KubeApiError } from './errors';
import { explain, OnceLog, type Identity } from './explain';
import { Backoff, jitter, scheduleClock, TokenBucket } from '../../system/backoff';
import { EKS_CONDITION_TYPES, KUBELET_CONDITION_TYPES, type ApiCondition, type NodeObject, type NodeStatusApi } from './types';
import { background } from '../../system/background';

export interface ConditionWriterOptions {
  heartbeatMs: number;
  burst: number;
  refillMs: number;
  retryMaxMs: number;
  removeStale: boolean;
  fieldManager: string;
  log: Logger;
  identity: () => Identity;
  /** Wall-clock ms for the timestamps written (and, in tests, the schedule: see scheduleClock). */
  now?: () => number;
  random?: () => number;
}

/** Longer messages are cut: a condition is read by people and tools, and the Node object stays small. */
export const MAX_MESSAGE = 1024;
/** Conflicts are retried at once this many times before back-off applies. */
const CONFLICT_RETRIES = 5;

export interface WriterStatus {
  lastWriteAt: string | null;
  lastError: string | null;
  /** Owned types whose desired state is not yet on the Node, plus pending deletions. */
  pending: number;
  writes: number;
}

export class ConditionWriter {
  private desired: Map<string, NodeCondition> | undefined;
  private readonly deletes = new Set<string>();
  /** The Node's conditions as last read or returned by a write. */
  private onNode = new Map<string, ApiCondition>();
  /** Condition types our field manager set on the Node (from managedFields), for stale removal. */
  private managedTypes = new Set<string>();
  private readonly written = new Map<string, string>();
  private adopted = false;
  private staleChecked = false;
  private inFlight = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** A write due now is queued as a microtask; cancel() withdraws it. */
  private queued = false;
  private retryAt = 0;
  private nextHeartbeatAt = 0;
  private conflicts = 0;
  private lastWriteAt: number | null = null;
  private lastError: string | null = null;
  private writes = 0;
  private readonly refused = new Set<string>();
  private readonly bucket: TokenBucket;
  private readonly backoff: Backoff;
  private readonly failures: OnceLog;
  private readonly now: () => number;
  /** Monotonic: retries, heartbeats and the rate limit keep their pace when the wall clock is stepped. */
  private readonly clock: () => number;
  private readonly random: () => number;

  constructor(
    private readonly api: NodeStatusApi,
    private readonly opts: ConditionWriterOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.clock = scheduleClock(opts.now);
    this.random = opts.random ?? Math.random;
    this.bucket = new TokenBucket(opts.burst, opts.refillMs, this.clock);
    this.backoff = new Backoff(1000, opts.retryMaxMs, this.random);
    this.failures = new OnceLog(opts.log, 'writing node conditions');
  }

  /**
   * Takes the Node as read at start: its conditions (for lastTransitionTime) and the types our field
   * manager wrote before (for removing the ones no longer owned). Returns the conditions to adopt: every
   * condition on the Node except the kubelet's.
   */
  adopt(node: NodeObject): NodeCondition[] {
    this.takeNode(node);
    this.managedTypes = managedConditionTypes(node, this.opts.fieldManager);
    this.adopted = true;
    this.kick();
    return [...this.onNode.values()]
      .filter((c) => !KUBELET_CONDITION_TYPES.includes(c.type))
      .map((c) => ({
        type: c.type,
        status: c.status === 'True' || c.status === 'False' ? c.status : 'Unknown',
        reason: c.reason ?? '',
        message: c.message ?? '',
        lastTransitionTime: c.lastTransitionTime ?? new Date(this.now()).toISOString(),
      }));
  }

  /** The desired state of every owned condition type; types left out are no longer owned. */
  setConditions(conditions: readonly NodeCondition[]): void {
    const next = new Map<string, NodeCondition>();
    for (const c of conditions) {
      if (KUBELET_CONDITION_TYPES.includes(c.type)) {
        this.refuseOnce(c.type, 'error', `condition type ${c.type} belongs to the kubelet; the agent never writes ${KUBELET_CONDITION_TYPES.join(', ')}: give the condition another type`);
        continue;
      }
      if (EKS_CONDITION_TYPES.includes(c.type)) {
        this.refuseOnce(c.type, 'warning', `condition type ${c.type} is one EKS reports itself; on EKS a False value can get the node replaced`);
      }
      next.set(c.type, { ...c, message: c.message.length > MAX_MESSAGE ? `${c.message.slice(0, MAX_MESSAGE - 1)}…` : c.message });
    }
    if (this.desired && this.opts.removeStale) {
      for (const type of this.desired.keys()) if (!next.has(type)) this.deletes.add(type);
    }
    for (const type of next.keys()) this.deletes.delete(type);
    this.desired = next;
    this.kick();
  }

  status(): WriterStatus {
    let pending = this.deletes.size;
    for (const [type, c] of this.desired ?? []) if (this.written.get(type) !== signature(c)) pending++;
    return {
      lastWriteAt: this.lastWriteAt === null ? null : new Date(this.lastWriteAt).toISOString(),
      lastError: this.lastError,
      pending,
      writes: this.writes,
    };
  }

  /** Stops timers; a write in flight completes but nothing new starts. */
  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queued = false;
  }

  private refuseOnce(type: string, level: 'error' | 'warning', message: string): void {
    if (this.refused.has(type)) return;
    this.refused.add(type);
    this.opts.log[level](`kubernetes: ${message}`, { condition: type });
  }

  private dirty(): boolean {
    if (this.deletes.size > 0) return true;
    for (const [type, c] of this.desired ?? []) if (this.written.get(type) !== signature(c)) return true;
    return false;
  }

  /** Schedules the next write at the earliest moment one is due and allowed. */
  private kick(): void {
    if (this.stopped || this.inFlight || !this.adopted || !this.desired) return;
    if (!this.staleChecked) {
      this.staleChecked = true;
      if (this.opts.removeStale) {
        for (const type of this.managedTypes) if (!this.desired.has(type) && !KUBELET_CONDITION_TYPES.includes(type)) this.deletes.add(type);
      }
    }
    const now = this.clock();
    let at: number;
    if (this.dirty()) at = now;
    else if (this.desired.size > 0) at = this.nextHeartbeatAt;
    else return;
    at = Math.max(at, this.retryAt, now + this.bucket.waitMs());
    this.cancel();
    if (at <= now) {
      // Due now: as soon as the code that changed the conditions returns (a batch of journal lines is one
      // write), before any timer or I/O callback. A timer waits at least 1 ms, and timers due meanwhile —
      // the condition store's save with its fsyncs — would go first (measured: up to 7 ms).
      this.queued = true;
      queueMicrotask(() => {
        if (!this.queued) return;
        this.queued = false;
        void background('writing node conditions', () => this.write());
      });
      return;
    }
    this.timer = setTimeout(() => void background('writing node conditions', () => this.write()), at - now);
    this.timer.unref();
  }

  private async write(): Promise<void> {
    this.timer = undefined;
    if (this.stopped || this.inFlight || !this.desired) return;
    if (!this.bucket.take()) {
      this.kick();
      return;
    }
    const now = new Date(this.now()).toISOString();
    const sent = new Map<string, string>();
    const conditions: Array<ApiCondition | { type: string; $patch: 'delete' }> = [];
    for (const [type, c] of this.desired) {
      const current = this.onNode.get(type);
      conditions.push({
        type,
        status: c.status,
        reason: c.reason,
        message: c.message,
        lastHeartbeatTime: now,
        // Only a flip of status moves lastTransitionTime; otherwise the Node's value stands.
        lastTransitionTime: current?.status === c.status && current.lastTransitionTime ? current.lastTransitionTime : c.lastTransitionTime,
      });
      sent.set(type, signature(c));
    }
    const deleting = [...this.deletes];
    for (const type of deleting) conditions.push({ type, $patch: 'delete' });

    this.inFlight = true;
    try {
      const node = await this.api.patchStatus({ status: { conditions } });
      this.writes++;
      this.takeNode(node);
      for (const [type, sig] of sent) this.written.set(type, sig);
      for (const type of [...this.written.keys()]) if (!this.desired.has(type)) this.written.delete(type);
      for (const type of deleting) {
        this.deletes.delete(type);
        this.managedTypes.delete(type);
      }
      if (deleting.length > 0) this.opts.log.info(`kubernetes: removed condition types no longer owned: ${deleting.join(', ')}`);
      this.lastWriteAt = this.now();
      this.lastError = null;
      this.retryAt = 0;
      this.conflicts = 0;
      this.backoff.reset();
      this.failures.recovered();
      this.nextHeartbeatAt = this.clock() + jitter(this.opts.heartbeatMs, this.random);
    } catch (err) {
      this.failed(err);
    } finally {
      this.inFlight = false;
    }
    this.kick();
  }

  private failed(err: unknown): void {
    const who = this.opts.identity();
    const message = explain(err, `write the status of Node ${who.nodeName}`, who);
    this.lastError = message;
    if (err instanceof KubeApiError && err.status === 409 && this.conflicts < CONFLICT_RETRIES) {
      this.conflicts++;
      this.retryAt = this.clock() + Math.round(50 + 200 * this.random());
      return;
    }
    this.conflicts = 0;
    let delay = this.backoff.next();
    if (err instanceof KubeApiError && err.retryAfterSeconds !== undefined) delay = Math.max(delay, err.retryAfterSeconds * 1000);
    this.retryAt = this.clock() + delay;
    this.failures.failed(err, message);
    this.opts.log.debug(`kubernetes: condition write failed, retrying in ${delay} ms: ${messageOf(err)}`);
  }

  private takeNode(node: NodeObject): void {
    this.onNode = new Map((node.status?.conditions ?? []).map((c) => [c.type, c]));
  }
}

function signature(c: NodeCondition): string {
  return `${c.status}\u0000${c.reason}\u0000${c.message}`;
}

/**
 * Condition types the field manager owns on the Node's status, from metadata.managedFields: entries of
 * the form {"f:status": {"f:conditions": {"k:{\"type\":\"X\"}": …}}}.
 */
export function managedConditionTypes(node: NodeObject, manager: string): Set<string> {
  const types = new Set<string>();
  for (const entry of node.metadata.managedFields ?? []) {
    if (entry.manager !== manager || entry.subresource !== 'status') continue;
    const status = entry.fieldsV1?.['f:status'] as Record<string, unknown> | undefined;
    const conditions = status?.['f:conditions'] as Record<string, unknown> | undefined;
    for (const k of Object.keys(conditions ?? {})) {
      if (!k.startsWith('k:')) continue;
      try {
        const keyObj = JSON.parse(k.slice(2)) as { type?: unknown };
        if (typeof keyObj.type === 'string') types.add(keyObj.type);
      } catch {
        // A key we cannot read is not one of ours to remove.
      }
    }
  }
  return types;
}
