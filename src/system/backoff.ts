// Pacing shared by every layer: exponential back-off and jitter, so that thousands of nodes neither retry
// in lockstep after an outage (API server, system bus) nor run periodic work in step, and a token bucket
// that keeps API writes out of the system-node-high queue the kubelets' heartbeats share.

/**
 * Exponential back-off with jitter: attempt n waits a random time in [low, high] × min(max, initial × 2ⁿ);
 * [½, 1] unless told otherwise.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
    private readonly spread: { low: number; high: number } = { low: 0.5, high: 1 },
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const { low, high } = this.spread;
    return Math.round(ceiling * (low + (high - low) * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}

/**
 * `burst` tokens, one more every `refillMs`. `now` must be a monotonic clock: with a wall clock stepped
 * back an hour the bucket would owe an hour's tokens and refuse everything until then.
 */
export class TokenBucket {
  private tokens: number;
  private updated: number;

  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.updated = now();
  }

  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until take() can succeed; 0 when it can now. */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.refillMs);
  }

  /** True when the bucket is full again: it holds no information and can be dropped. */
  full(): boolean {
    this.refill();
    return this.tokens >= this.burst;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.updated) / this.refillMs);
    this.updated = t;
  }
}

/**
 * The clock a writer schedules by: monotonic, unless a test gave its own `now` (fake time), which then
 * drives both the schedule and the timestamps.
 */
export function scheduleClock(now: (() => number) | undefined): () => number {
  return now ?? (() => performance.now());
}

/** ±10 % so that periodic work of many nodes does not line up. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (0.9 + 0.2 * random()));
}
