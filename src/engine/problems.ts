// Where the sources' reports go (the agent's ProblemSink): the condition table with its owners, the state
// saved across restarts and the Node's adopted one, and the recent events. What changes is logged and
// handed on to the outputs and the ladder.
import { join } from 'node:path';
import type { WriteHealth } from '../system/degraded';
import type { ConditionDeclaration, ConditionReport, EventReport, Logger, NodeCondition, ProblemSink, RecordedEvent } from '../types';
import { ConditionStore } from './condition-store';
import { ConditionTable } from './conditions';

const RECENT_EVENTS = 50;

export interface ProblemsDeps {
  stateDir: string;
  /** This boot (types that clear on reboot are not restored from another). */
  bootId: string;
  log: Logger;
  /** Where failed saves of the conditions are reported. */
  health: WriteHealth;
  /** A condition changed (after it was logged and its save scheduled); `all` is the whole desired state. */
  changed(c: NodeCondition, all: NodeCondition[]): void;
  /** An event, before it is kept among the recent ones and logged. */
  event(e: EventReport): void;
  /** The whole desired state, for the Kubernetes writer (it writes only what changed). */
  publish(all: NodeCondition[]): void;
}

export class Problems implements ProblemSink {
  readonly table = new ConditionTable();
  private readonly store: ConditionStore;
  private readonly recent: RecordedEvent[] = [];
  /** The Node's conditions, when read before the local state was restored; adopted right after it. */
  private nodeConditions: NodeCondition[] | undefined;
  /** Types restored from the state file (they win over the Node's); undefined until restored. */
  private restoredTypes: Set<string> | undefined;

  constructor(private readonly deps: ProblemsDeps) {
    this.store = new ConditionStore(
      join(deps.stateDir, 'conditions.json'),
      () => this.table.snapshot(deps.bootId),
      (message) => deps.log.warning(message),
      { health: deps.health },
    );
    this.table.onChange((c) => this.changed(c));
  }

  condition(report: ConditionReport): void {
    this.table.report(report);
  }

  event(e: EventReport): void {
    this.deps.event(e);
    this.recent.push({ ...e, at: new Date().toISOString() });
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
    const log = e.severity === 'Warning' ? this.deps.log.warning : this.deps.log.info;
    log(`${e.reason}: ${e.message}${e.count && e.count > 1 ? ` (${e.count} times)` : ''}`, {
      event: e.reason,
      source: e.source,
    });
  }

  settle(): boolean {
    return this.store.settle();
  }

  /** Declares the condition types the plan's sources own (ConditionTable.apply) and logs what changed hands. */
  apply(declarations: readonly ConditionDeclaration[]): void {
    const { moved, gone } = this.table.apply(declarations);
    for (const d of moved) this.deps.log.info(`condition ${d.type} is now reported by ${d.owner} settings`, { condition: d.type });
    if (gone.length > 0) this.deps.log.info(`conditions no longer configured: ${gone.join(', ')}`);
  }

  /** Takes back the state saved before a restart, then the Node's if it was read already (declare first). */
  restore(): void {
    const saved = this.store.load();
    if (saved) this.table.restore(saved, this.deps.bootId);
    this.restoredTypes = new Set(saved?.conditions.map((c) => c.type) ?? []);
    if (this.nodeConditions) this.adoptFromNode(this.nodeConditions);
  }

  /**
   * The Node's current state of our condition types is adopted instead of reset (NPD resets them on
   * every restart); the state saved locally before a restart is newer, so it wins for its types. Called
   * by the reporter as it reads the Node, before its first write; kept until the local restore when the
   * Node was read sooner.
   */
  nodeRead(conditions: NodeCondition[]): void {
    if (this.restoredTypes) this.adoptFromNode(conditions);
    else this.nodeConditions = conditions;
  }

  publish(): void {
    this.deps.publish(this.table.conditions());
  }

  conditions(): NodeCondition[] {
    return this.table.conditions();
  }

  get(type: string): NodeCondition | undefined {
    return this.table.get(type);
  }

  recentEvents(): RecordedEvent[] {
    return this.recent;
  }

  /** Saves what waits and closes the store. */
  stop(): void {
    // Before the saved state was restored the table holds only defaults: saving them would lose it.
    if (this.restoredTypes) this.store.flush();
    this.store.close();
  }

  private adoptFromNode(conditions: NodeCondition[]): void {
    const skip = this.restoredTypes ?? new Set<string>();
    for (const c of conditions) if (!skip.has(c.type)) this.table.adopt(c);
    this.nodeConditions = undefined;
    this.publish();
  }

  private changed(c: NodeCondition): void {
    const text = `condition ${c.type} is now ${c.status}: ${c.reason}${c.message ? ` (${c.message})` : ''}`;
    if (c.status === 'False') this.deps.log.info(text, { condition: c.type, reason: c.reason });
    else this.deps.log.warning(text, { condition: c.type, reason: c.reason });
    this.store.schedule();
    this.deps.changed(c, this.table.conditions());
  }
}
