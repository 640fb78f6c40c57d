// The latest result of every check, keyed by check and subject: what `status` shows and what the
// outputs will turn into conditions.
import type { CheckResult } from '../types';

export interface RecordedResult extends CheckResult {
  /** When the check last produced this result (ISO 8601). */
  at: string;
}

export class CheckTable {
  private readonly results = new Map<string, RecordedResult[]>();

  /** Replaces everything a check reported last time: a subject that disappeared is gone. */
  record(checkId: string, results: CheckResult[], at: Date = new Date()): void {
    this.results.set(checkId, results.map((r) => ({ ...r, at: at.toISOString() })));
  }

  /** Forgets checks that are no longer configured (after a reload). */
  retain(checkIds: Iterable<string>): void {
    const keep = new Set(checkIds);
    for (const id of this.results.keys()) if (!keep.has(id)) this.results.delete(id);
  }

  all(): RecordedResult[] {
    return [...this.results.values()].flat();
  }
}
