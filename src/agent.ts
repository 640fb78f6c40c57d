// The daemon's wiring: builds the plan, starts the outputs, the engine, every source of the registry
// (src/registry.ts) and the ladder, applies a new plan on SIGHUP without losing state, and stops cleanly
// on SIGTERM. The only module that knows every layer; what they do is theirs.
import { join } from 'node:path';
import type { Config } from './config/schema';
import { Engine } from './engine/engine';
import { messageOf } from './errors';
import { createLogger } from './outputs/log';
import { Outputs } from './outputs/outputs';
import { StatusServer } from './outputs/status/server';
import { DisruptiveRepair } from './repair/ladder/assembly';
import { logRejected, makePlan, restartOnlyChanges, type Plan } from './plan';
import { reportFailuresTo } from './system/background';
import { currentBootId } from './system/boot';
import { DegradedState } from './system/degraded';
import { ensureWritableDir } from './system/files';
import { returnFreedMemory } from './system/memory';
import type { NativeLoader } from './system/native';
import { ServiceManager } from './system/sd-notify';
import type { AgentStatus, Logger, ProblemSink, ReloadOutcome, SourceEnv } from './types';
import { VERSION } from './version';

export interface AgentOptions {
  configDir?: string;
  /** --node-name from the command line. */
  nodeName?: string;
  native: NativeLoader;
}

export class Agent {
  private readonly startedAt = new Date();
  private readonly degraded: DegradedState;
  private readonly engine: Engine;
  private readonly status: StatusServer;
  /** The config the outputs and the ladder were started with (read at start only). */
  private readonly startConfig: Config;
  private readonly bootId: string;
  private outputs: Outputs | undefined;
  private ladder: DisruptiveRepair | undefined;
  private generation = 1;
  private lastReload: ReloadOutcome | undefined;
  private stopping = false;

  private constructor(
    private readonly options: AgentOptions,
    private plan: Plan,
    private readonly log: Logger,
    private readonly manager: ServiceManager,
    /** Forwards to the engine's problems: the plan's sources were built with it before the agent existed. */
    private readonly sink: ProblemSink,
  ) {
    this.startConfig = plan.loaded.config;
    this.bootId = currentBootId(options.native);
    this.degraded = new DegradedState(log);
    this.status = new StatusServer(join(this.startConfig.agent.runtime_dir, 'agent.sock'), () => this.snapshot());
    this.engine = new Engine({
      stateDir: this.startConfig.agent.state_dir,
      bootId: this.bootId,
      log,
      health: this.degraded.for('conditions'),
      changed: (c, all) => {
        this.ladder?.conditionChanged(c);
        this.outputs?.conditionChanged(c, all);
        this.manager.status(this.summary());
      },
      event: (e) => this.outputs?.event(e),
      publish: (all) => this.outputs?.publish(all),
      ran: (id, seconds) => this.outputs?.metrics.recordCheck(id, seconds),
      recorded: () => this.manager.status(this.summary()),
    });
  }

  /**
   * Builds the whole plan, then starts everything; throws AgentError for anything the operator must fix.
   * A start that fails part-way stops all it had started before it throws, so the process can exit.
   */
  static async start(options: AgentOptions): Promise<Agent> {
    let agent: Agent | undefined;
    const sink: ProblemSink = {
      condition: (r) => agent?.engine.problems.condition(r),
      event: (e) => agent?.engine.problems.event(e),
      settle: () => agent?.engine.problems.settle() ?? true,
    };
    // The level comes from the config; errors in it are thrown, not logged.
    const log = createLogger('info', options.native);
    const plan = makePlan(options.configDir, { log, sink, native: options.native });
    const { config } = plan.loaded;
    log.setLevel(config.agent.log_level);
    reportFailuresTo(log);
    ensureWritableDir(config.agent.state_dir);
    agent = new Agent(options, plan, log, new ServiceManager(options.native), sink);
    await agent.status.listen();
    try {
      await agent.startAll();
    } catch (err) {
      await agent.shutdown();
      throw err;
    }
    agent.manager.startWatchdog();
    // Local readiness: the Kubernetes reporter connects in the background and never holds this back.
    agent.manager.ready(agent.summary());
    log.info(`node-health-agent ${VERSION} started`, {
      config_files: plan.loaded.files.join(',') || 'none (defaults)',
      checks: plan.checks.length,
    });
    returnFreedMemory(options.native, log);
    return agent;
  }

  private async startAll(): Promise<void> {
    const config = this.startConfig;
    const outputs = await Outputs.start(config, this.log, {
      nodeName: this.options.nodeName,
      onNodeRead: (conditions) => this.engine.problems.nodeRead(conditions),
      checks: () => this.engine.table.all(),
      degraded: () => this.degraded.list(),
      sources: () => this.engine.sourcesStatus(),
    });
    this.outputs = outputs;
    await this.engine.apply(this.plan, this.sourceEnv());
    this.ladder = new DisruptiveRepair({
      config,
      settings: this.plan.ladder,
      ledgerHealth: this.degraded.for('ladder-ledger'),
      reporter: outputs.reporter,
      log: this.log,
      bootId: this.bootId,
      event: (e) => this.engine.problems.event(e),
      condition: (type) => this.engine.problems.get(type),
      onRequest: (r) => outputs.apiRequest(r),
      stopping: () => this.stopping,
      started: (ladder) => outputs.metrics.watchLadder(() => ladder.status()),
    });
  }

  /**
   * Re-reads the config. The whole plan is built and checked first; only a valid one replaces the
   * running one, so a rejected reload leaves everything as it was.
   */
  async reload(): Promise<void> {
    this.manager.reloading();
    let plan: Plan;
    try {
      plan = makePlan(this.options.configDir, { log: this.log, sink: this.sink, native: this.options.native, running: this.plan });
    } catch (err) {
      const error = messageOf(err);
      this.lastReload = { at: new Date().toISOString(), ok: false, error };
      logRejected(this.log, error, this.generation);
      this.manager.ready(this.summary());
      return;
    }
    for (const warning of restartOnlyChanges(this.plan.loaded.config, plan.loaded.config)) this.log.warning(warning);
    // Nothing below throws on a valid plan: the swap is applied whole.
    this.plan = plan;
    this.generation++;
    this.log.setLevel(plan.loaded.config.agent.log_level);
    await this.engine.apply(plan, this.sourceEnv());
    this.lastReload = { at: new Date().toISOString(), ok: true };
    this.log.info(`configuration reloaded (generation ${this.generation})`);
    this.manager.ready(this.summary());
    returnFreedMemory(this.options.native, this.log);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.manager.stopping();
    await this.shutdown();
    this.log.info('node-health-agent stopped');
    this.log.close();
  }

  /** Stops whatever is running; used by stop() and by a start that failed part-way. */
  private async shutdown(): Promise<void> {
    this.stopping = true;
    await this.engine.stopSources();
    await this.ladder?.stop();
    this.engine.stop();
    await this.outputs?.stop();
    this.manager.stopWatchdog();
    await this.status.close();
  }

  /** The service manager's status line. */
  private summary(): string {
    return this.engine.summary(this.generation);
  }

  /** What the plan's sources are given as they open: they write to the current plan's state directory. */
  private sourceEnv(): SourceEnv {
    return {
      sink: this.sink,
      log: this.log,
      stateDir: this.plan.loaded.config.agent.state_dir,
      health: (component) => this.degraded.for(component),
      repaired: (unit, action, result) => this.outputs?.metrics.countRepair(unit, action, result),
    };
  }

  private snapshot(): AgentStatus {
    const { checks, problems, conditions, recentEvents } = this.engine.status();
    const sources = this.engine.sourcesStatus();
    return {
      version: VERSION,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      // The process's own monotonic uptime: a stepped wall clock would make startedAt's difference wrong.
      uptimeSeconds: Math.round(process.uptime()),
      config: { generation: this.generation, files: this.plan.loaded.files, lastReload: this.lastReload ?? null },
      checks,
      problems,
      conditions,
      recentEvents,
      degraded: this.degraded.list(),
      journal: sources.journal,
      kubernetes: this.outputs?.reporter?.status() ?? null,
      plugins: sources.plugins,
      runtime: sources.runtime,
      coordination: this.ladder?.coordinationStatus() ?? null,
      ladder: this.ladder?.ladderStatus() ?? null,
    };
  }
}
