// The journal position that survives restarts: the cursor of the last entry handed on, saved in the state
// directory so a restarted agent resumes after it instead of replaying old lines as new events.
// Saving costs two fsyncs, so it happens at most every N entries or T ms; a cursor not yet saved is
// written when T has passed even if no further entry comes, so a crash replays at most T ms of entries.
// A save that fails (full disk, read-only remount) never throws at the reader: the latest cursor stays in
// memory, the failure goes to `health`, and the save is retried every T (at least 1 s) until it works.
import { readFileSync } from 'node:fs';
import { AgentError, messageOf } from '../../errors';
import type { WriteHealth } from '../../system/degraded';
import { writeFileAtomic } from '../../system/files';

export interface CursorStoreOptions {
  /** Save after this many entries since the last save. */
  everyEntries: number;
  /** Save when this many ms have passed since the last save (with a one-shot timer when entries stop). */
  everyMs: number;
  /** Told of each failed save and of the first save that works again. */
  health?: WriteHealth;
  /**
   * Makes durable what the entries read so far changed (the saved conditions); false when it could not.
   * Called before each save, which is put off while it fails: a crash must never leave the position past
   * an entry whose effect was not kept.
   */
  before?: () => boolean;
}

// s=<seqnum id>;i=<seqnum>;b=<boot id>;m=<monotonic>;t=<realtime>;x=<xor hash>, all hex.
const CURSOR = /^s=[0-9a-f]{32};i=[0-9a-f]+;b=[0-9a-f]{32};m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+$/;

export class CursorStore {
  /** Why the last load or save failed, for status and logs; null when the last one worked. */
  lastError: string | null = null;
  private pending: string | undefined;
  private pendingEntries = 0;
  /** Monotonic: a wall clock stepped back must not put the next timed save off until it catches up. */
  private lastSaveMs = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly opts: CursorStoreOptions,
  ) {
    if (!Number.isInteger(opts.everyEntries) || opts.everyEntries < 1) {
      throw new RangeError(`CursorStore: everyEntries must be a whole number ≥ 1, got ${opts.everyEntries}`);
    }
    if (!Number.isFinite(opts.everyMs) || opts.everyMs < 0) {
      throw new RangeError(`CursorStore: everyMs must be a number of ms ≥ 0, got ${opts.everyMs}`);
    }
  }

  /** The saved cursor; undefined when none was saved or the file does not hold a journal cursor. */
  load(): string | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AgentError(
        'STATE_DIR_UNWRITABLE',
        `cannot read the journal cursor ${this.path}: ${messageOf(err)}; check the state directory's permissions`,
        { cause: err },
      );
    }
    const cursor = text.trim();
    if (!CURSOR.test(cursor)) {
      this.lastError = `${this.path} does not hold a journal cursor; ignored (reading starts at the start point)`;
      return undefined;
    }
    return cursor;
  }

  /** `cursor` is the position after `entriesSinceLast` more entries; saved when the limits say so. */
  offer(cursor: string, entriesSinceLast: number): void {
    this.pending = cursor;
    this.pendingEntries += entriesSinceLast;
    if (this.lastError !== null && this.timer) return; // failing: the retry timer saves the latest
    const elapsed = performance.now() - this.lastSaveMs;
    if (this.pendingEntries >= this.opts.everyEntries || elapsed >= this.opts.everyMs) {
      this.trySave();
      return;
    }
    this.arm(this.opts.everyMs - elapsed);
  }

  /** Saves a cursor not yet saved (on stop) and cancels the timer; false when that save failed. */
  flush(): boolean {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.trySave(false);
  }

  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.trySave();
    }, ms);
    this.timer.unref();
  }

  private trySave(retry = true): boolean {
    if (this.opts.before && !this.opts.before()) {
      if (retry) this.arm(Math.max(this.opts.everyMs, 1000));
      return false;
    }
    try {
      const failing = this.lastError !== null;
      this.save();
      if (failing) this.opts.health?.recovered();
      return true;
    } catch (err) {
      this.opts.health?.failed(err);
      if (retry) this.arm(Math.max(this.opts.everyMs, 1000));
      return false;
    }
  }

  // writeFileAtomic: after a crash the file holds either the old cursor or the new one, never a torn
  // write, and the rename itself is durable.
  private save(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const cursor = this.pending;
    if (cursor === undefined) return;
    try {
      writeFileAtomic(this.path, `${cursor}\n`);
    } catch (err) {
      const e = new AgentError(
        'STATE_DIR_UNWRITABLE',
        `cannot save the journal cursor to ${this.path}: ${messageOf(err)}; check that the state directory is writable`,
        { cause: err },
      );
      this.lastError = e.message;
      throw e;
    }
    this.lastError = null;
    this.pending = undefined;
    this.pendingEntries = 0;
    this.lastSaveMs = performance.now();
  }
}
