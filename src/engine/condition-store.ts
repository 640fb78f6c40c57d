// Persists the condition table in the state directory (crash-safe), so a restarted agent resumes the
// conditions it owned instead of resetting them.
import { readFileSync } from 'node:fs';
import { messageOf } from '../errors';
import { writeFileAtomic } from '../system/files';
import type { ConditionSnapshot } from './conditions';

export class ConditionStore {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => ConditionSnapshot,
    private readonly onError: (message: string) => void,
    private readonly delayMs = 1000,
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
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.delayMs);
    this.timer.unref();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      writeFileAtomic(this.path, JSON.stringify(this.snapshot()));
    } catch (err) {
      this.onError(`${this.path}: cannot save conditions: ${messageOf(err)}`);
    }
  }
}
