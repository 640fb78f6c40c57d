// The latest result of every check, keyed by check and subject: what `status` shows and what the
// outputs will turn into conditions.
import type { CheckResult, NodeCondition } from '../types';
import type { RecordedResult } from '../types';
export type { RecordedResult };

export interface Transitions {
  appeared: CheckResult[];
  cleared: CheckResult[];
}

export class CheckTable {
  private readonly results = new Map<string, RecordedResult[]>();

  /**
   * Replaces everything a check reported last time (a subject that disappeared is gone) and returns
   * the findings that turned bad and those that recovered, so callers log changes, not every run.
   */
  record(checkId: string, results: CheckResult[], at: Date = new Date()): Transitions {
    const bad = (list: readonly CheckResult[]): Map<string, CheckResult> =>
      new Map(list.filter((r) => r.status !== 'ok').map((r) => [`${r.subject ?? ''}\0${r.reason}`, r]));
    const before = bad(this.results.get(checkId) ?? []);
    const now = bad(results);
    this.results.set(checkId, results.map((r) => ({ ...r, at: at.toISOString() })));
    return {
      appeared: [...now].filter(([k]) => !before.has(k)).map(([, r]) => r),
      cleared: [...before].filter(([k]) => !now.has(k)).map(([, r]) => r),
    };
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

/** One line of what the daemon sees, for the service manager's STATUS=. */
export function statusLine(generation: number, results: readonly CheckResult[], conditions: readonly NodeCondition[]): string {
  const bad = results.filter((r) => r.status === 'problem').length;
  const warn = results.filter((r) => r.status === 'warning').length;
  const active = conditions.filter((c) => c.status !== 'False').length;
  return `config generation ${generation}; ${results.length} findings, ${bad} problems, ${warn} warnings; ${active} conditions set`;
}
