// Persists the condition table in the state directory (crash-safe), so a restarted agent resumes the
// conditions it owned instead of resetting them. A save that fails is retried from the table in memory
// (always the latest state) until it works; meanwhile `health` shows the store as degraded.
import { readFileSync } from 'node:fs';
import { messageOf } from '../errors';
import type { WriteHealth } from '../system/degraded';
import { writeFileAtomic } from '../system/files';
import type { ConditionSnapshot } from './conditions';

export interface ConditionStoreOptions {
  /** Changes within this long are saved as one write. */
  delayMs?: number;
  /** A failed save is tried again after this long. */
  retryMs?: number;
  health?: WriteHealth;
}

export class ConditionStore {
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => ConditionSnapshot,
    private readonly onError: (message: string) => void,
    private readonly opts: ConditionStoreOptions = {},
  ) {}

  /** The saved snapshot, or undefined when there is none; a damaged file is reported and ignored. */
  load(): ConditionSnapshot | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onError(`${this.path}: cannot read saved conditions: ${messageOf(err)}`);
      return undefined;
    }
    try {
      const snap = JSON.parse(text) as ConditionSnapshot;
      if (typeof snap.bootId !== 'string' || !Array.isArray(snap.conditions) || !Array.isArray(snap.reports)) throw new Error('unexpected shape');
      return snap;
    } catch (err) {
      this.onError(`${this.path}: saved conditions are damaged (${messageOf(err)}); starting from the sources' reports`);
      return undefined;
    }
  }

  /** Saves soon; many changes in a burst become one write. */
  schedule(): void {
    this.arm(this.opts.delayMs ?? 1000);
  }

  /** Saves now if a change waits to be saved (or retried); false when that save failed. */
  settle(): boolean {
    return this.timer ? this.flush() : true;
  }

  /** Saves now; false when that failed (a retry is then scheduled). */
  flush(): boolean {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      writeFileAtomic(this.path, JSON.stringify(this.snapshot()));
    } catch (err) {
      const e = new Error(`${this.path}: cannot save conditions: ${messageOf(err)}`, { cause: err });
      if (this.opts.health) this.opts.health.failed(e);
      else this.onError(e.message);
      this.failing = true;
      this.arm(this.opts.retryMs ?? 5000);
      return false;
    }
    if (this.failing) this.opts.health?.recovered();
    this.failing = false;
    return true;
  }

  /** Stops retrying (at stop, after the last flush). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), ms);
    this.timer.unref();
  }
}
