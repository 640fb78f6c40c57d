// The condition table: every condition type the agent owns, the reports sources make about it, and the
// resulting NodeCondition. One owner per type; several sources of that owner (rules, plugins) may feed
// one type and the worst report wins (True over Unknown over False), so they cannot flap each other
// (NPD issues #566, #664). Hysteresis: the merged status must be seen setAfter times in a row to turn
// True/Unknown and clearAfter times in a row to turn False.
import type { ConditionDeclaration, ConditionReport, ConditionStatus, NodeCondition } from '../types';

/** What survives an agent restart: the published conditions and the reports behind them. */
export interface ConditionSnapshot {
  bootId: string;
  conditions: NodeCondition[];
  reports: ConditionReport[];
}

export class ConditionConflictError extends Error {
  override name = 'ConditionConflictError';
}

interface Entry {
  decl: Required<ConditionDeclaration>;
  reports: Map<string, ConditionReport>;
  current: NodeCondition;
  /** The merged status seen in a row, and how often. */
  streakStatus: ConditionStatus;
  streak: number;
}

const RANK: Record<ConditionStatus, number> = { False: 0, Unknown: 1, True: 2 };

export class ConditionTable {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners: Array<(changed: NodeCondition) => void> = [];

  constructor(private readonly now: () => Date = () => new Date()) {}

  declare(decl: ConditionDeclaration): void {
    const existing = this.entries.get(decl.type);
    if (existing && existing.decl.owner !== decl.owner) {
      throw new ConditionConflictError(
        `condition ${decl.type} is already owned by ${existing.decl.owner}; ${decl.owner} cannot report it too (use another type)`,
      );
    }
    const full = { setAfter: 1, clearAfter: 1, clearOnReboot: false, shared: false, ...decl };
    if (existing) {
      existing.decl = full;
      return;
    }
    this.entries.set(decl.type, {
      decl: full,
      reports: new Map(),
      current: { type: decl.type, status: 'False', reason: decl.reason, message: decl.message, lastTransitionTime: this.now().toISOString() },
      streakStatus: 'False',
      streak: 0,
    });
  }

  /**
   * Makes `declarations` the whole set of owned types (at start and on reload): types no longer declared
   * are dropped; a type that moves to another owner keeps its current state (the new owner's sources
   * speak from now on). Returns the moved declarations and the dropped types, for the log.
   */
  apply(declarations: readonly ConditionDeclaration[]): { moved: ConditionDeclaration[]; gone: string[] } {
    const moved = declarations.filter((d) => {
      const owner = this.ownerOf(d.type);
      return owner !== undefined && owner !== d.owner;
    });
    const kept = moved.flatMap((d) => this.get(d.type) ?? []);
    const movedTypes = new Set(moved.map((d) => d.type));
    const dropped = this.retain(declarations.filter((d) => !movedTypes.has(d.type)).map((d) => d.type));
    for (const d of declarations) this.declare(d);
    for (const c of kept) this.adopt(c);
    return { moved, gone: dropped.filter((t) => !movedTypes.has(t)) };
  }

  /** Forgets types no longer declared (after a reload); returns them so outputs can delete them. */
  retain(types: Iterable<string>): string[] {
    const keep = new Set(types);
    const dropped = [...this.entries.keys()].filter((t) => !keep.has(t));
    for (const t of dropped) this.entries.delete(t);
    return dropped;
  }

  /** Takes over a condition as last published (from the Node or the state file) instead of resetting it. */
  adopt(condition: NodeCondition): void {
    const entry = this.entries.get(condition.type);
    if (!entry) return;
    entry.current = { ...condition };
    entry.streakStatus = condition.status;
    entry.streak = Math.max(entry.decl.setAfter, entry.decl.clearAfter);
  }

  report(report: ConditionReport): void {
    const entry = this.entries.get(report.type);
    if (!entry) throw new ConditionConflictError(`condition ${report.type} was reported by ${report.source} but never declared`);
    entry.reports.set(report.source, report);
    this.evaluate(entry);
  }

  /** Drops the opinions of sources that no longer exist (e.g. a probe disabled by a reload). */
  retainReports(keep: (report: ConditionReport) => boolean): void {
    for (const entry of this.entries.values()) {
      let changed = false;
      for (const [source, r] of entry.reports) {
        if (!keep(r)) changed = entry.reports.delete(source) || changed;
      }
      if (changed) this.evaluate(entry);
    }
  }

  snapshot(bootId: string): ConditionSnapshot {
    const entries = [...this.entries.values()];
    return {
      bootId,
      conditions: entries.map((e) => ({ ...e.current })),
      reports: entries.flatMap((e) => [...e.reports.values()]),
    };
  }

  /**
   * Takes back the state saved before a restart, so conditions are not reset to False before their
   * sources have spoken again (NPD issue #304). After a reboot, types declared clearOnReboot start afresh.
   */
  restore(snapshot: ConditionSnapshot, bootId: string): void {
    const rebooted = snapshot.bootId !== bootId;
    const keep = (type: string): boolean => {
      const entry = this.entries.get(type);
      return entry !== undefined && !(rebooted && entry.decl.clearOnReboot);
    };
    for (const c of snapshot.conditions) if (keep(c.type)) this.adopt(c);
    for (const r of snapshot.reports) if (keep(r.type)) this.entries.get(r.type)?.reports.set(r.source, r);
  }

  onChange(listener: (changed: NodeCondition) => void): void {
    this.listeners.push(listener);
  }

  conditions(): NodeCondition[] {
    return [...this.entries.values()].map((e) => ({ ...e.current }));
  }

  /** The module that owns `type`, if it is declared. */
  ownerOf(type: string): string | undefined {
    return this.entries.get(type)?.decl.owner;
  }

  get(type: string): NodeCondition | undefined {
    const e = this.entries.get(type);
    return e ? { ...e.current } : undefined;
  }

  private evaluate(entry: Entry): void {
    let worst: ConditionReport | undefined;
    for (const r of entry.reports.values()) {
      if (!worst || RANK[r.status] > RANK[worst.status]) worst = r;
    }
    const status: ConditionStatus = worst?.status ?? 'False';
    entry.streak = status === entry.streakStatus ? entry.streak + 1 : 1;
    entry.streakStatus = status;

    const needed = status === 'False' ? entry.decl.clearAfter : entry.decl.setAfter;
    const next =
      status === entry.current.status || entry.streak >= needed
        ? {
            status,
            reason: status === 'False' || !worst ? entry.decl.reason : worst.reason,
            message: status === 'False' || !worst ? entry.decl.message : worst.message,
          }
        : undefined;
    if (!next) return;
    const cur = entry.current;
    if (next.status === cur.status && next.reason === cur.reason && next.message === cur.message) return;
    entry.current = {
      type: cur.type,
      ...next,
      // Only a flip of status is a transition; a new reason or message is not.
      lastTransitionTime: next.status === cur.status ? cur.lastTransitionTime : this.now().toISOString(),
    };
    for (const l of this.listeners) l({ ...entry.current });
  }
}
