// The engine as the daemon runs it: the plan's sources, the checks they schedule, the table of the
// checks' latest results and the problems (conditions and events). `apply` puts a plan in place in the
// one order that keeps the saved state: the sources opened (a ledger that cannot be read fails here,
// before anything changed), their condition types declared, at start the saved conditions restored,
// the whole state published, then the sources and the checks started.
import type { AgentStatus, ConditionDeclaration, PlannedSource, ScheduledCheck, SourceEnv, SourcesStatus } from '../types';
import { CheckTable, statusLine } from './check-table';
import { ProbeRunner, type ProbeRunnerDeps } from './probe-runner';
import { Problems, type ProblemsDeps } from './problems';
import { RunningSources } from './sources';

/** What the engine runs of a plan. */
export interface EnginePlan {
  readonly sources: ReadonlyMap<string, PlannedSource>;
  readonly declarations: readonly ConditionDeclaration[];
  readonly checks: readonly ScheduledCheck[];
}

export type EngineDeps = ProblemsDeps & Pick<ProbeRunnerDeps, 'ran' | 'recorded'>;

export class Engine {
  readonly table = new CheckTable();
  readonly problems: Problems;
  private readonly probes: ProbeRunner;
  private readonly sources = new RunningSources();
  private restored = false;

  constructor(deps: EngineDeps) {
    this.problems = new Problems(deps);
    this.probes = new ProbeRunner({ table: this.table, conditions: this.problems.table, log: deps.log, ran: deps.ran, recorded: deps.recorded });
  }

  /** Runs `plan` from now on, at start and on reload; throws (before changing anything) when a source cannot open. */
  async apply(plan: EnginePlan, env: SourceEnv): Promise<void> {
    const start = await this.sources.replace(plan.sources, env);
    this.problems.apply(plan.declarations);
    if (!this.restored) this.problems.restore();
    this.restored = true;
    this.problems.publish();
    start();
    this.probes.apply(plan.checks);
  }

  /** Stops the checks and the sources and waits for them; the problems stay open for what follows. */
  async stopSources(): Promise<void> {
    this.probes.stop();
    await this.sources.stop();
  }

  /** Saves the conditions and closes their store: after everything that reports has stopped. */
  stop(): void {
    this.problems.stop();
  }

  /** The service manager's status line. */
  summary(generation: number): string {
    return statusLine(generation, this.table.all(), this.problems.conditions());
  }

  /** The sources' parts of the status snapshot. */
  sourcesStatus(): SourcesStatus {
    return this.sources.status();
  }

  /** The checks' results and the problems, as the status snapshot shows them. */
  status(): Pick<AgentStatus, 'checks' | 'problems' | 'conditions' | 'recentEvents'> {
    const results = this.table.all();
    return {
      checks: results,
      problems: results.filter((r) => r.status !== 'ok'),
      conditions: this.problems.conditions(),
      recentEvents: this.problems.recentEvents(),
    };
  }
}
