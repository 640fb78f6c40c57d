// Runs the plan's checks on their schedule and takes each run's findings where they go: the check table
// (what `status` shows), the probe's condition (engine/probe-conditions.ts) and the log, one line when
// a finding appears or clears.
import type { Logger, ScheduledCheck } from '../types';
import type { CheckTable } from './check-table';
import type { ConditionTable } from './conditions';
import { probeConditionReport, probeConditionSource } from './probe-conditions';
import { runCheck } from './run-check';
import { Scheduler } from '../system/scheduler';

export interface ProbeRunnerDeps {
  table: CheckTable;
  conditions: ConditionTable;
  log: Logger;
  /** After every run, with its duration (metrics). */
  ran(checkId: string, seconds: number): void;
  /** After every run, once its findings are recorded (the service manager's status line). */
  recorded(): void;
}

export class ProbeRunner {
  private checks = new Map<string, ScheduledCheck>();
  private scheduler = new Scheduler();

  constructor(private readonly deps: ProbeRunnerDeps) {}

  /**
   * Runs `checks` from now on, in place of the ones before (at start and on reload). A check whose
   * settings did not change keeps its instance, and with it its baselines (rates).
   */
  apply(checks: readonly ScheduledCheck[]): void {
    const { table, conditions } = this.deps;
    this.scheduler.stop();
    this.scheduler = new Scheduler();
    const previous = this.checks;
    this.checks = new Map(
      checks.map((s) => {
        const id = checkId(s.check);
        const kept = previous.get(id);
        return [id, kept && kept.settings === s.settings ? kept : s];
      }),
    );
    table.retain(this.checks.keys());
    // A probe disabled, or whose condition was renamed, no longer speaks for its old condition.
    const speaking = new Set([...this.checks].filter(([, s]) => s.condition).map(([id, s]) => `${probeConditionSource(id)}\0${s.condition?.type}`));
    conditions.retainReports((r) => !r.source.startsWith('probe/') || speaking.has(`${r.source}\0${r.type}`));
    this.scheduler.start([...this.checks].map(([id, s]) => ({ name: id, intervalMs: s.intervalMs, run: () => this.run(id, s) })));
  }

  stop(): void {
    this.scheduler.stop();
  }

  private async run(id: string, { check, condition }: ScheduledCheck): Promise<void> {
    const { table, conditions, log } = this.deps;
    const results = await runCheck(check);
    this.deps.ran(id, (results[0]?.durationMs ?? 0) / 1000);
    if (condition) conditions.report(probeConditionReport({ checkId: id, type: condition.type }, results));
    const { appeared, cleared } = table.record(id, results);
    for (const r of appeared) {
      const write = r.status === 'problem' ? log.error : log.warning;
      write(`${id}: ${r.message}`, { check: id, reason: r.reason, subject: r.subject });
    }
    for (const r of cleared) log.info(`${id}: ${r.reason} cleared`, { check: id, reason: r.reason, subject: r.subject });
    this.deps.recorded();
  }
}

function checkId(check: { component: string; name: string }): string {
  return `${check.component}/${check.name}`;
}
