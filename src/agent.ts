// The daemon's wiring: builds checks, outputs and the status socket from the config, starts them,
// reloads on SIGHUP without losing state, and stops cleanly on SIGTERM.
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedConfig } from './config/load';
import type { Config } from './config/schema';
import { CheckTable } from './engine/check-table';
import { ConditionStore } from './engine/condition-store';
import type { AgentStatus, ConditionDeclaration, Logger, EventReport, NodeCondition, ProblemSink, RecordedEvent, ReloadOutcome } from './types';
import { ConditionTable } from './engine/conditions';
import { ProbeRunner } from './engine/probe-runner';
import { AgentError, messageOf } from './errors';
import { createLogger } from './outputs/log';
import { AgentMetrics, MetricsError, MetricsServer } from './outputs/metrics/server';
import { RuntimeHealth } from './repair/health';
import { startLadder, type LadderAssembly } from './repair/ladder/assembly';
import { LadderLedger, LadderLedgerError } from './repair/ladder/ledger';
import { LedgerError } from './repair/ledger';
import { NodeReporter } from './outputs/kubernetes/reporter';
import { StatusServer } from './outputs/status/server';
import { makePlan, type Plan } from './plan';

import { JournalMonitor } from './sources/journal/monitor';
import { runtimeProbes } from './sources/runtime/probes';
import type { PluginMonitor } from './sources/plugins/monitor';
import { background, reportFailuresTo } from './system/background';
import { currentBootId } from './system/boot';
import { DegradedState } from './system/degraded';
import type { NativeLoader } from './system/native';
import { makeDirs } from './system/files';
import { ServiceManager } from './system/sd-notify';
import { VERSION } from './version';

export interface AgentOptions {
  configDir?: string;
  /** --node-name from the command line. */
  nodeName?: string;
  native: NativeLoader;
}

const RECENT_EVENTS = 50;

export class Agent {
  private readonly startedAt = new Date();
  private readonly table = new CheckTable();
  private readonly probes: ProbeRunner;
  private generation = 1;
  private lastReload: ReloadOutcome | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly status: StatusServer;
  private readonly conditions = new ConditionTable();
  private readonly bootId: string;
  private readonly store: ConditionStore;
  private readonly degraded: DegradedState;
  private readonly recentEvents: RecordedEvent[] = [];
  private journal: JournalMonitor | undefined;
  private plugins: PluginMonitor | undefined;
  private runtime: RuntimeHealth | undefined;
  private reporter: NodeReporter | undefined;
  private ladder: LadderAssembly | undefined;
  private ladderLedger: LadderLedger | undefined;
  private metricsServer: MetricsServer | undefined;
  private readonly metrics = new AgentMetrics();
  private lagTimer: NodeJS.Timeout | undefined;
  private loaded: LoadedConfig;
  /** The config the repair module and the outputs were started with (read at start only). */
  private readonly startConfig: Config;
  /** The Node's conditions, when read before the local state was restored; adopted right after it. */
  private nodeConditions: NodeCondition[] | undefined;
  /** Types restored from the state file (they win over the Node's); undefined until restored. */
  private restoredTypes: Set<string> | undefined;
  private readonly sink: ProblemSink;

  private constructor(
    private readonly options: AgentOptions,
    private plan: Plan,
    private readonly log: Logger,
    private readonly manager: ServiceManager,
    sink: ProblemSink,
  ) {
    this.sink = sink;
    this.bootId = currentBootId(options.native);
    this.loaded = plan.loaded;
    this.startConfig = plan.loaded.config;
    this.degraded = new DegradedState(log);
    this.status = new StatusServer(socketPath(plan.loaded), () => this.snapshot());
    this.store = new ConditionStore(
      join(plan.loaded.config.agent.state_dir, 'conditions.json'),
      () => this.conditions.snapshot(this.bootId),
      (message) => this.log.warning(message),
      { health: this.degraded.for('conditions') },
    );
    this.probes = new ProbeRunner({
      table: this.table,
      conditions: this.conditions,
      log,
      ran: (id, seconds) => this.metrics.recordCheck(id, seconds),
      recorded: () => this.manager.status(this.summary()),
    });
    this.conditions.onChange((c) => this.conditionChanged(c));
    this.metrics.watchChecks(() => this.table.all());
    this.metrics.watchDegraded(() => this.degraded.list());
  }

  /**
   * Builds the whole plan, then starts everything; throws AgentError for anything the operator must fix.
   * A start that fails part-way stops all it had started before it throws, so the process can exit.
   */
  static async start(options: AgentOptions): Promise<Agent> {
    // The plugins' sink is the agent's, which exists only once the plan is valid: reports go through it.
    let agent: Agent | undefined;
    const sink: ProblemSink = {
      condition: (r) => agent?.conditions.report(r),
      event: (e) => agent?.recordEvent(e),
      settle: () => agent?.store.settle() ?? true,
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
      // A ledger that cannot be read is the state directory's problem: one line, exit 2.
      if (err instanceof LedgerError || err instanceof LadderLedgerError) throw new AgentError('STATE_DIR_UNWRITABLE', err.message, { cause: err });
      throw err;
    }
    agent.petWatchdog();
    // Local readiness: the Kubernetes reporter connects in the background and never holds this back.
    agent.manager.ready(agent.summary());
    log.info(`node-health-agent ${VERSION} started`, {
      config_files: agent.loaded.files.join(',') || 'none (defaults)',
      checks: plan.checks.length,
    });
    agent.returnFreedMemory();
    return agent;
  }

  private async startAll(): Promise<void> {
    const { config } = this.loaded;
    await this.startOutputs();
    this.plugins = this.plan.plugins;
    if (config.containerd.enabled || config.kubelet.enabled || config.kube_proxy.enabled) {
      this.runtime = await RuntimeHealth.create(config, this.log, this.sink, config.agent.state_dir, runtimeProbes(config), {
        onAction: (unit, action, result) => this.metrics.countRepair(unit, action, result),
        ledgerHealth: this.degraded.for('repair-ledger'),
      });
      const runtime = this.runtime;
      this.metrics.watchRuntime(() => runtime.status());
    }
    this.applyDeclarations(this.plan.declarations);
    const saved = this.store.load();
    if (saved) this.conditions.restore(saved, this.bootId);
    this.restoredTypes = new Set(saved?.conditions.map((c) => c.type) ?? []);
    if (this.nodeConditions) this.adoptFromNode(this.nodeConditions);
    this.publish();
    this.startSources();
    this.runtime?.start();
    this.probes.apply(this.plan.checks);
    this.startLadder();
  }

  /**
   * Re-reads the config. The whole plan is built and checked first; only a valid one replaces the
   * running one, so a rejected reload leaves everything as it was.
   */
  reload(): void {
    this.manager.reloading();
    let plan: Plan;
    try {
      plan = makePlan(this.options.configDir, { log: this.log, sink: this.sink, native: this.options.native, runtimeConfig: this.startConfig });
    } catch (err) {
      const error = messageOf(err);
      this.lastReload = { at: new Date().toISOString(), ok: false, error };
      for (const line of error.split('\n')) {
        const file = /^([^:]+):\d+:/.exec(line)?.[1];
        this.log.error(`reload rejected, keeping generation ${this.generation}: ${line}`, file ? { file } : {});
      }
      this.manager.ready(this.summary());
      return;
    }
    const next = plan.loaded;
    for (const key of ['state_dir', 'runtime_dir'] as const) {
      if (next.config.agent[key] !== this.loaded.config.agent[key]) {
        this.log.warning(`[agent] ${key} changed to ${next.config.agent[key]}; it takes effect at the next restart`);
      }
    }
    for (const section of ['kubernetes', 'metrics', 'repair', 'containerd', 'kubelet', 'kube_proxy', 'coordination', 'ladder'] as const) {
      if (JSON.stringify(next.config[section]) !== JSON.stringify(this.loaded.config[section])) {
        this.log.warning(`[${section}] changed; it takes effect at the next restart (systemctl restart node-health-agent)`);
      }
    }
    if (JSON.stringify([...next.config.named.remediate]) !== JSON.stringify([...this.loaded.config.named.remediate])) {
      this.log.warning('[remediate "…"] changed; it takes effect at the next restart (systemctl restart node-health-agent)');
    }
    // Nothing below throws on a valid plan: the swap is applied whole.
    this.stopSources();
    this.plan = plan;
    this.loaded = next;
    this.generation++;
    this.log.setLevel(next.config.agent.log_level);
    this.plugins = plan.plugins;
    this.applyDeclarations(plan.declarations);
    this.publish();
    this.startSources();
    this.probes.apply(plan.checks);
    this.lastReload = { at: new Date().toISOString(), ok: true };
    this.log.info(`configuration reloaded (generation ${this.generation})`);
    this.manager.ready(this.summary());
    this.returnFreedMemory();
  }

  /**
   * Building and starting a plan (the config, the rules, V8's compilers, whose zones live on malloc)
   * leaves freed C-heap memory that glibc would keep for good in an idle daemon: 2 MiB with the kernel
   * library (docs/benchmarks.md). Hands it back.
   */
  private returnFreedMemory(): void {
    try {
      this.options.native().trimMemory();
    } catch (err) {
      this.log.warning(`returning freed memory to the kernel: ${messageOf(err)}`);
    }
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
    this.probes.stop();
    this.stopSources();
    await this.runtime?.stop();
    // A run in progress stays open in the ladder's ledger and the slot is kept: both must outlive our reboot.
    await this.ladder?.stop();
    this.ladderLedger?.close();
    // Before the saved state was restored the table holds only defaults: saving them would lose it.
    if (this.restoredTypes) this.store.flush();
    this.store.close();
    await this.stopOutputs();
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    await this.status.close();
  }

  /** Declares the condition types the plan's sources own (ConditionTable.apply) and logs what changed hands. */
  private applyDeclarations(declarations: ConditionDeclaration[]): void {
    const { moved, gone } = this.conditions.apply(declarations);
    for (const d of moved) this.log.info(`condition ${d.type} is now reported by ${d.owner} settings`, { condition: d.type });
    if (gone.length > 0) this.log.info(`conditions no longer configured: ${gone.join(', ')}`);
  }

  private startSources(): void {
    const { rules, loaded } = this.plan;
    if (rules && rules.sources.length > 0) {
      const journal = new JournalMonitor(rules, loaded.config.journal, {
        stateDir: loaded.config.agent.state_dir,
        sink: this.sink,
        log: this.log,
        native: this.options.native,
        cursorHealth: this.degraded.for('journal-cursor'),
      });
      this.journal = journal;
      try {
        journal.start();
        this.degraded.for('journal').recovered();
      } catch (err) {
        // A state directory gone bad since start: the journal waits for the next reload or restart.
        this.degraded.for('journal').failed(err);
      }
    }
    this.plugins?.start();
  }

  private stopSources(): void {
    this.journal?.stop();
    this.journal = undefined;
    const plugins = this.plugins;
    void background('stopping the plugins', () => plugins?.stop());
  }

  private async startOutputs(): Promise<void> {
    const { config } = this.loaded;
    if (config.metrics.enabled) {
      try {
        this.metricsServer = await MetricsServer.start(config.metrics, this.metrics, this.log);
      } catch (err) {
        if (!(err instanceof MetricsError)) throw err;
        this.log.error(`metrics are not served: ${err.message}`);
      }
    }
    if (config.kubernetes.enabled) {
      // Connects in the background: an API server that is slow or away never holds back READY.
      const reporter = NodeReporter.start(config.kubernetes, this.log, {
        nodeName: this.options.nodeName,
        onRequest: (r) => this.metrics.recordApiRequest(r),
        onAdopted: (conditions) => {
          if (this.restoredTypes) this.adoptFromNode(conditions);
          else this.nodeConditions = conditions;
        },
      });
      this.reporter = reporter;
      this.metrics.watchReporter(() => reporter.status());
    }
    this.lagTimer = setInterval(() => {
      const lags = (this.journal?.status() ?? []).map((j) => j.lagMs ?? 0);
      if (lags.length > 0) this.metrics.setJournalLag(Math.max(...lags) / 1000);
    }, 5000);
    this.lagTimer.unref();
  }

  private async stopOutputs(): Promise<void> {
    if (this.lagTimer) clearInterval(this.lagTimer);
    await this.reporter?.stop();
    await this.metricsServer?.stop();
  }

  /**
   * The Node's current state of our condition types is adopted instead of reset (NPD resets them on
   * every restart); the state saved locally before a restart is newer, so it wins for its types. Called
   * by the reporter as it reads the Node, before its first write, or after the local restore when the
   * Node was read sooner.
   */
  private adoptFromNode(conditions: NodeCondition[]): void {
    const skip = this.restoredTypes ?? new Set<string>();
    for (const c of conditions) if (!skip.has(c.type)) this.conditions.adopt(c);
    this.nodeConditions = undefined;
    this.publish();
  }

  /** Hands the whole desired state to the Kubernetes writer (it writes only what changed). */
  private publish(): void {
    this.reporter?.setConditions(this.conditions.conditions());
  }

  private conditionChanged(c: NodeCondition): void {
    const text = `condition ${c.type} is now ${c.status}: ${c.reason}${c.message ? ` (${c.message})` : ''}`;
    if (c.status === 'False') this.log.info(text, { condition: c.type, reason: c.reason });
    else this.log.warning(text, { condition: c.type, reason: c.reason });
    this.store.schedule();
    this.ladder?.ladder.conditionChanged(c);
    this.metrics.setCondition(c);
    if (c.status === 'True') this.metrics.countProblem(c.reason);
    this.publish();
    this.manager.status(this.summary());
  }

  private recordEvent(e: EventReport): void {
    this.reporter?.event(e);
    if (e.severity === 'Warning') this.metrics.countProblem(e.reason, e.count ?? 1);
    this.recentEvents.push({ ...e, at: new Date().toISOString() });
    if (this.recentEvents.length > RECENT_EVENTS) this.recentEvents.shift();
    const log = e.severity === 'Warning' ? this.log.warning : this.log.info;
    log(`${e.reason}: ${e.message}${e.count && e.count > 1 ? ` (${e.count} times)` : ''}`, {
      event: e.reason,
      source: e.source,
    });
  }

  /**
   * The disruptive ladder runs with the Node known (after the reporter adopted it). It also starts when
   * disabled if its ledger holds an unfinished run: a reboot it asked for must still be followed up.
   */
  private startLadder(): void {
    const { config } = this.loaded;
    const settings = this.plan.ladder;
    const ledger = LadderLedger.open(config.agent.state_dir, this.degraded.for('ladder-ledger'));
    this.ladderLedger = ledger;
    for (const w of ledger.warnings) this.log.warning(w, { code: 'LEDGER_LINE_SKIPPED', file: ledger.path });
    if (!settings.enabled && !ledger.unfinished()) return;
    const reporter = this.reporter;
    if (!reporter) {
      this.log.warning('[ladder] is enabled but [kubernetes] is not: the ladder needs the Node, so it does not run');
      return;
    }
    for (const type of settings.conditions.keys()) {
      if (!this.conditions.get(type)) this.log.warning(`[remediate "${type}"]: this agent reports no condition ${type}, so it never starts a ladder`, { condition: type });
    }
    void background('starting the ladder', async () => {
      await reporter.whenAdopted();
      if (this.stopping) return;
      const started = startLadder({
        config,
        settings,
        node: reporter.status().nodeName,
        ledger,
        log: this.log,
        bootId: this.bootId,
        event: (e) => this.recordEvent(e),
        eventsQueued: () => reporter.status().events.queued,
        condition: (type) => this.conditions.get(type),
        onRequest: (r) => this.metrics.recordApiRequest(r),
      });
      this.ladder = started;
      this.metrics.watchLadder(() => started.ladder.status());
    });
  }

  /** Petting from a timer on the main loop: a blocked or stopped loop stops the pets and systemd restarts us. */
  private petWatchdog(): void {
    const every = this.manager.watchdogIntervalMs();
    if (every <= 0) return;
    this.watchdogTimer = setInterval(() => this.manager.watchdog(), every);
    this.watchdogTimer.unref();
  }

  private summary(): string {
    const results = this.table.all();
    const bad = results.filter((r) => r.status === 'problem').length;
    const warn = results.filter((r) => r.status === 'warning').length;
    const active = this.conditions.conditions().filter((c) => c.status !== 'False').length;
    return `config generation ${this.generation}; ${results.length} findings, ${bad} problems, ${warn} warnings; ${active} conditions set`;
  }

  private snapshot(): AgentStatus {
    const results = this.table.all();
    return {
      version: VERSION,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      // The process's own monotonic uptime: a stepped wall clock would make startedAt's difference wrong.
      uptimeSeconds: Math.round(process.uptime()),
      config: {
        generation: this.generation,
        files: this.loaded.files,
        lastReload: this.lastReload ?? null,
      },
      checks: results,
      problems: results.filter((r) => r.status !== 'ok'),
      conditions: this.conditions.conditions(),
      recentEvents: this.recentEvents,
      degraded: this.degraded.list(),
      journal: this.journal?.status() ?? [],
      kubernetes: this.reporter?.status() ?? null,
      plugins: this.plugins?.status() ?? [],
      runtime: this.runtime?.status() ?? null,
      coordination: this.ladder?.coordinator.status() ?? null,
      ladder: this.ladder?.ladder.status() ?? null,
    };
  }
}

function socketPath(loaded: LoadedConfig): string {
  return join(loaded.config.agent.runtime_dir, 'agent.sock');
}

/** Creates the state directory and proves it takes writes (a read-only filesystem fails even for root). */
function ensureWritableDir(dir: string): void {
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    makeDirs(dir, 0o700);
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (err) {
    throw new AgentError(
      'STATE_DIR_UNWRITABLE',
      `${dir}: state directory is not writable (${messageOf(err)}); fix it or set [agent] state_dir`,
    );
  }
}
