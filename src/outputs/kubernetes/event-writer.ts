// core/v1 Events about the Node, in namespace `default` (a node's credentials may not write
// events.k8s.io). Repeats of the same event are one Event whose count and lastTimestamp are patched.
// Each reason has its own token bucket; what it holds back is not dropped silently (as client-go's
// recorder does) but counted and reported in one event that says how many were suppressed. Memory is
// bounded: a queue of at most MAX_QUEUE events, counters per reason, a small cache of recent Events.
import { randomInt } from 'node:crypto';
import { formatDuration } from '../../config/values';
import type { EventReport } from '../../types';
import type { Logger } from '../log';
import { KubeApiError } from './errors';
import { explain, OnceLog, type Identity } from './explain';
import { Backoff, scheduleClock, TokenBucket } from './rate';
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

interface Pending {
  report: EventReport;
  count: number;
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
  private sending = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = 0;
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
      const dropped = this.queue.shift() as Pending;
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
    if (this.sending || this.stopped || !this.node || this.queue.length === 0) return;
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
    this.sending = true;
    void background('sending an event', () => this.sendHead()).finally(() => {
      this.sending = false;
      this.pump();
    });
  }

  private async sendHead(): Promise<void> {
    const head = this.queue[0] as Pending;
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
        written = await this.api.create({
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: `${node.name}.${eventSuffix(this.now())}`, namespace: this.opts.namespace },
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
        });
      }
      this.cache.delete(key);
      this.cache.set(key, { name: written.metadata.name, count: written.count ?? head.count });
      if (this.cache.size > MAX_CACHE) this.cache.delete(this.cache.keys().next().value as string);
      this.queue.shift();
      this.counts.sent++;
      this.retryAt = 0;
      this.backoff.reset();
      this.failures.recovered();
    } catch (err) {
      const who = this.opts.identity();
      const text = explain(err, `write Event ${report.reason} about Node ${node.name} in namespace ${this.opts.namespace}`, who);
      this.failures.failed(err, text);
      if (err instanceof KubeApiError && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 409 && err.status !== 429) {
        // Refused for what it is (forbidden, invalid): retrying the same event cannot succeed.
        this.queue.shift();
        this.counts.failed++;
        return;
      }
      let delay = this.backoff.next();
      if (err instanceof KubeApiError && err.retryAfterSeconds !== undefined) delay = Math.max(delay, err.retryAfterSeconds * 1000);
      this.retryAt = this.clock() + delay;
    }
  }
}

/** client-go names events <object>.<unix nanoseconds in hex>; a random tail keeps two in one ms apart. */
function eventSuffix(ms: number): string {
  return (BigInt(ms) * 1_000_000n + BigInt(randomInt(1_000_000))).toString(16);
}
