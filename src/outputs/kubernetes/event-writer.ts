// core/v1 Events about the Node, in namespace `default` (a node's credentials may not write
// events.k8s.io). Repeats of the same event are one Event whose count and lastTimestamp are patched.
// Each reason has its own token bucket; what it holds back is not dropped silently (as client-go's
// recorder does) but counted and reported in one event that says how many were suppressed. Memory is
// bounded: a queue of at most MAX_QUEUE events, counters per reason, a small cache of recent Events.
// Exactly once across outages: each waiting Event gets its name once, so a create whose answer was lost is
// retried under the same name and its 409 AlreadyExists means it was written; a count patch sets an
// absolute count, so repeating it is harmless.
import { randomInt } from 'node:crypto';
import { formatDuration } from '../../config/values';
import type { EventReport } from '../../types';
import type { Logger } from '../log';
import { KubeApiError } from './errors';
import { explain, OnceLog, type Identity } from './explain';
import { Backoff, scheduleClock, TokenBucket } from '../../system/backoff';
import type { EventObject } from './types';
import { background } from '../../system/background';

export interface EventsApi {
  create(event: Record<string, unknown>): Promise<EventObject>;
  /** Strategic-merge PATCH of one Event in the namespace. */
  patch(name: string, body: Record<string, unknown>): Promise<EventObject>;
}

export interface EventWriterOptions {
  burst: number;
  refillMs: number;
  retryMaxMs: number;
  /** source.component and reportingComponent. */
  component: string;
  namespace: string;
  log: Logger;
  identity: () => Identity;
  now?: () => number;
  random?: () => number;
}

export const MAX_QUEUE = 200;
const MAX_CACHE = 256;
const MAX_REASONS = 1000;
/** Event messages longer than this are cut (the limit events.k8s.io sets for a note). */
const MAX_MESSAGE = 1024;
/**
 * How long Events are retried while the server refuses them with 401 or 403 before they are dropped. A
 * restarted API server answers 403 "not yet ready to handle request" (its NamespaceLifecycle admission
 * waits for its namespace cache) and 401 until its authenticators load; the kubelet may be rotating
 * its certificate. Minutes cover those; a refusal that lasts longer is taken as meant.
 */
export const REFUSED_RETRY_MS = 5 * 60_000;

interface Pending {
  report: EventReport;
  count: number;
  /** The Event's name, chosen at its first create and kept for every retry. */
  name?: string;
}

/** What to do after a failed write of one Event. */
type Verdict = 'retry' | 'retry-refused' | 'drop';

/**
 * Which failures are worth retrying: no answer, 5xx, 408, 429 and a 409 Conflict on a patch are the
 * server's state, not the Event's, and are retried for as long as they last (the queue is bounded);
 * 401/403 are retried for REFUSED_RETRY_MS (see there); any other 4xx (400, 404 on a create, 413,
 * 422, …) refuses the Event itself and cannot succeed on a retry.
 */
function verdictOf(err: unknown): Verdict {
  if (!(err instanceof KubeApiError)) return 'retry';
  const s = err.status;
  if (s === 401 || s === 403) return 'retry-refused';
  if (s >= 500 || s === 408 || s === 409 || s === 429) return 'retry';
  return s >= 400 ? 'drop' : 'retry';
}

interface Suppressed {
  count: number;
  since: number;
  last: EventReport;
  warning: boolean;
}

export interface EventWriterStatus {
  /** Events waiting to be sent (at most MAX_QUEUE). */
  queued: number;
  /** Events held back by the rate limit, to be reported in a summary. */
  held: number;
  sent: number;
  suppressed: number;
  failed: number;
}

export class EventWriter {
  private node: { name: string; uid: string } | undefined;
  private readonly queue: Pending[] = [];
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly suppressed = new Map<string, Suppressed>();
  private readonly summaryTimers = new Map<string, NodeJS.Timeout>();
  /** Recently written Events by content, oldest first, for count/lastTimestamp patches. */
  private readonly cache = new Map<string, { name: string; count: number }>();
  /** The Event being written; enqueue() never drops it, sendHead() removes exactly it. */
  private inflight: Pending | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = 0;
  /**
   * Since when (monotonic) every answer has been 401/403; undefined after any other outcome. Past REFUSED_RETRY_MS
   * each refused Event is dropped at its first refusal, so a refusal meant for good cannot hold the
   * queue for minutes per Event.
   */
  private refusedSince: number | undefined;
  private counts = { sent: 0, suppressed: 0, failed: 0 };
  private readonly backoff: Backoff;
  private readonly failures: OnceLog;
  private readonly now: () => number;
  /** Monotonic: retries and the per-reason rate limit keep their pace when the wall clock is stepped. */
  private readonly clock: () => number;

  constructor(
    private readonly api: EventsApi,
    private readonly opts: EventWriterOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.clock = scheduleClock(opts.now);
    this.backoff = new Backoff(1000, opts.retryMaxMs, opts.random ?? Math.random);
    this.failures = new OnceLog(opts.log, 'writing events');
  }

  /** The Node the events are about (its UID comes from reading it); events wait until it is known. */
  setNode(node: { name: string; uid: string }): void {
    this.node = node;
    this.pump();
  }

  event(report: EventReport): void {
    if (this.stopped) return;
    const count = Math.max(1, Math.floor(report.count ?? 1));
    if (this.bucketFor(report.reason).take()) this.enqueue({ report, count });
    else this.suppress(report, count);
  }

  status(): EventWriterStatus {
    let held = 0;
    for (const s of this.suppressed.values()) held += s.count;
    return { queued: this.queue.length, held, ...this.counts };
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.summaryTimers.values()) clearTimeout(t);
    this.summaryTimers.clear();
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private bucketFor(reason: string): TokenBucket {
    let b = this.buckets.get(reason);
    if (!b) {
      if (this.buckets.size >= MAX_REASONS) {
        // Full buckets carry no state; dropping them keeps the map bounded by reasons seen recently.
        for (const [r, bucket] of this.buckets) if (bucket.full()) this.buckets.delete(r);
      }
      b = new TokenBucket(this.opts.burst, this.opts.refillMs, this.clock);
      if (this.buckets.size < MAX_REASONS) this.buckets.set(reason, b);
    }
    return b;
  }

  private enqueue(p: Pending): void {
    if (this.queue.length >= MAX_QUEUE) {
      // The oldest waiting event gives way; it is counted and reported as suppressed, never lost silently.
      // One being written stays: its write may land, and it must not be counted twice.
      const at = this.queue[0] === this.inflight ? 1 : 0;
      const [dropped] = this.queue.splice(at, 1) as [Pending];
      this.suppress(dropped.report, dropped.count);
    }
    this.queue.push(p);
    this.pump();
  }

  private suppress(report: EventReport, count: number): void {
    this.counts.suppressed += count;
    const s = this.suppressed.get(report.reason);
    if (s) {
      s.count += count;
      s.last = report;
      s.warning ||= report.severity === 'Warning';
    } else {
      if (this.suppressed.size >= MAX_REASONS) return;
      this.suppressed.set(report.reason, { count, since: this.now(), last: report, warning: report.severity === 'Warning' });
    }
    this.scheduleSummary(report.reason);
  }

  private scheduleSummary(reason: string): void {
    if (this.summaryTimers.has(reason) || this.stopped) return;
    const timer = setTimeout(() => {
      this.summaryTimers.delete(reason);
      const s = this.suppressed.get(reason);
      if (!s) return;
      if (!this.bucketFor(reason).take()) {
        this.scheduleSummary(reason);
        return;
      }
      this.suppressed.delete(reason);
      if (s.count === 1) {
        this.enqueue({ report: s.last, count: 1 });
      } else {
        const since = new Date(s.since).toISOString();
        const rate = `${this.opts.burst} at once, then one every ${formatDuration(this.opts.refillMs)}`;
        this.enqueue({
          report: {
            source: s.last.source,
            severity: s.warning ? 'Warning' : 'Normal',
            reason,
            message: `${s.count} ${reason} events suppressed since ${since} (rate limit per reason: ${rate}); the last one: ${s.last.message}`,
          },
          count: s.count,
        });
      }
    }, Math.max(1, this.bucketFor(reason).waitMs()));
    timer.unref();
    this.summaryTimers.set(reason, timer);
  }

  private pump(): void {
    if (this.inflight || this.stopped || !this.node || this.queue.length === 0) return;
    const wait = this.retryAt - this.clock();
    if (wait > 0) {
      if (!this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, wait);
        this.retryTimer.unref();
      }
      return;
    }
    const head = this.queue[0] as Pending;
    this.inflight = head;
    void background('sending an event', () => this.sendHead(head)).finally(() => {
      this.inflight = undefined;
      this.pump();
    });
  }

  private settle(head: Pending): void {
    const at = this.queue.indexOf(head);
    if (at >= 0) this.queue.splice(at, 1);
  }

  private async sendHead(head: Pending): Promise<void> {
    const node = this.node as { name: string; uid: string };
    const { report } = head;
    const message = report.message.length > MAX_MESSAGE ? `${report.message.slice(0, MAX_MESSAGE - 1)}…` : report.message;
    const key = `${report.severity}\u0000${report.reason}\u0000${message}`;
    const now = new Date(this.now()).toISOString();
    try {
      const cached = this.cache.get(key);
      let written: EventObject | undefined;
      if (cached) {
        try {
          written = await this.api.patch(cached.name, { count: cached.count + head.count, lastTimestamp: now });
        } catch (err) {
          // Expired (events live an hour by default): write a new one.
          if (!(err instanceof KubeApiError && err.status === 404)) throw err;
          this.cache.delete(key);
        }
      }
      if (!written) {
        head.name ??= `${node.name}.${eventSuffix(this.now())}`;
        written = await this.create(head.name, {
          involvedObject: { apiVersion: 'v1', kind: 'Node', name: node.name, uid: node.uid },
          reason: report.reason,
          message,
          type: report.severity,
          count: head.count,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: this.opts.component, host: node.name },
          reportingComponent: this.opts.component,
          reportingInstance: node.name,
        }, head.count);
      }
      this.cache.delete(key);
      this.cache.set(key, { name: written.metadata.name, count: written.count ?? head.count });
      if (this.cache.size > MAX_CACHE) this.cache.delete(this.cache.keys().next().value as string);
      this.settle(head);
      this.counts.sent++;
      this.retryAt = 0;
      this.refusedSince = undefined;
      this.backoff.reset();
      this.failures.recovered();
    } catch (err) {
      const who = this.opts.identity();
      const text = explain(err, `write Event ${report.reason} about Node ${node.name} in namespace ${this.opts.namespace}`, who);
      this.failures.failed(err, text);
      const verdict = verdictOf(err);
      if (verdict === 'retry-refused') this.refusedSince ??= this.clock();
      else this.refusedSince = undefined;
      if (verdict === 'drop' || (this.refusedSince !== undefined && this.clock() - this.refusedSince >= REFUSED_RETRY_MS)) {
        const status = err instanceof KubeApiError ? err.status : 0;
        const why = verdict === 'drop' ? 'a retry cannot succeed' : `refused for ${formatDuration(REFUSED_RETRY_MS)}`;
        this.opts.log.error(`kubernetes: dropped Event ${report.reason} (count ${head.count}) after ${status}, ${why}: ${text}`, {
          code: 'EVENT_DROPPED',
          status,
          reason: report.reason,
        });
        this.settle(head);
        this.counts.failed += head.count;
        this.retryAt = 0;
        return;
      }
      let delay = this.backoff.next();
      if (err instanceof KubeApiError && err.retryAfterSeconds !== undefined) delay = Math.max(delay, err.retryAfterSeconds * 1000);
      this.retryAt = this.clock() + delay;
    }
  }

  /** POST under a name chosen once; AlreadyExists means an earlier attempt whose answer was lost stored it. */
  private async create(name: string, body: Record<string, unknown>, count: number): Promise<EventObject> {
    const metadata = { name, namespace: this.opts.namespace };
    try {
      return await this.api.create({ apiVersion: 'v1', kind: 'Event', metadata, ...body });
    } catch (err) {
      // The name is this node's and this instant's with a random tail: only our own earlier attempt has it.
      if (err instanceof KubeApiError && err.status === 409 && err.reason === 'AlreadyExists') return { metadata, count };
      throw err;
    }
  }
}

/** client-go names events <object>.<unix nanoseconds in hex>; a random tail keeps two in one ms apart. */
function eventSuffix(ms: number): string {
  return (BigInt(ms) * 1_000_000n + BigInt(randomInt(1_000_000))).toString(16);
}
