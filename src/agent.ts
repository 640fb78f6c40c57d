// The daemon's wiring: builds checks, outputs and the status socket from the config, starts them,
// reloads on SIGHUP without losing state, and stops cleanly on SIGTERM.
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type LoadedConfig } from './config/load';
import { CheckTable } from './engine/check-table';
import { ConditionStore } from './engine/condition-store';
import { ConditionConflictError, ConditionTable, type ConditionDeclaration } from './engine/conditions';
import { probeConditionReport, probeConditionSource } from './engine/probe-conditions';
import { buildRuleSet, type RuleSet } from './engine/rules/rule-set';
import { Scheduler } from './engine/scheduler';
import { AgentError, messageOf } from './errors';
import { KUBELET_CONDITION_TYPES } from './outputs/kubernetes/types';
import { createLogger, type Logger } from './outputs/log';
import { AgentMetrics, MetricsError, MetricsServer } from './outputs/metrics/server';
import { RuntimeHealth } from './repair/health';
import { Coordinator } from './repair/fleet/coordinator';
import { Ladder } from './repair/ladder/ladder';
import { LadderLedger } from './repair/ladder/ledger';
import { Login1 } from './repair/ladder/login1';
import { NodeApi } from './repair/ladder/node-api';
import { LadderConfigError, ladderSettings, type LadderSettings } from './repair/ladder/settings';
import { KubeClient, type RequestRecord } from './outputs/kubernetes/client';
import { findKubeconfig, loadKubeconfig } from './outputs/kubernetes/kubeconfig';
import { NodeReporter, userAgent } from './outputs/kubernetes/reporter';
import { StatusServer } from './outputs/status/server';
import { runCheck } from './sources/check';
import { enabledChecks, type ScheduledCheck } from './sources/checks';
import { journalDeclarations, JournalMonitor } from './sources/journal/monitor';
import { PluginMonitor } from './sources/plugins/monitor';
import { currentBootId } from './system/boot';
import type { Native } from './system/native';
import { makeDirs } from './system/files';
import { ServiceManager } from './system/sd-notify';
import type { EventReport, NodeCondition, ProblemSink } from './types';
import { VERSION } from './version';

export interface AgentOptions {
  configDir?: string;
  /** --node-name from the command line. */
  nodeName?: string;
  native: () => Native;
}

/** What the configuration builds; made in full before anything running is replaced. */
interface Plan {
  loaded: LoadedConfig;
  rules: RuleSet | undefined;
  declarations: ConditionDeclaration[];
  checks: ScheduledCheck[];
}

const RECENT_EVENTS = 50;

interface ReloadOutcome {
  at: string;
  ok: boolean;
  error?: string;
}

export class Agent {
  private readonly startedAt = new Date();
  private readonly table = new CheckTable();
  private checks = new Map<string, ScheduledCheck>();
  private scheduler = new Scheduler();
  private generation = 1;
  private lastReload: ReloadOutcome | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly status: StatusServer;
  private readonly conditions = new ConditionTable();
  private readonly bootId = currentBootId();
  private readonly store: ConditionStore;
  private readonly recentEvents: Array<EventReport & { at: string }> = [];
  private journal: JournalMonitor | undefined;
  private plugins: PluginMonitor | undefined;
  private runtime: RuntimeHealth | undefined;
  private reporter: NodeReporter | undefined;
  private coordinator: Coordinator | undefined;
  private ladder: Ladder | undefined;
  private ladderClient: KubeClient | undefined;
  private metricsServer: MetricsServer | undefined;
  private readonly metrics = new AgentMetrics();
  private lagTimer: NodeJS.Timeout | undefined;
  private loaded: LoadedConfig;
  private readonly sink: ProblemSink = {
    condition: (r) => this.conditions.report(r),
    event: (e) => this.recordEvent(e),
  };

  private constructor(
    private readonly options: AgentOptions,
    private plan: Plan,
    private readonly log: Logger,
    private readonly manager: ServiceManager,
  ) {
    this.loaded = plan.loaded;
    this.status = new StatusServer(socketPath(plan.loaded), () => this.snapshot());
    this.store = new ConditionStore(
      join(plan.loaded.config.agent.state_dir, 'conditions.json'),
      () => this.conditions.snapshot(this.bootId),
      (message) => this.log.warning(message),
    );
    this.conditions.onChange((c) => this.conditionChanged(c));
    this.metrics.watchChecks(() => this.table.all());
  }

  /** Loads the config and starts everything; throws AgentError for anything the operator must fix. */
  static async start(options: AgentOptions): Promise<Agent> {
    const plan = makePlan(options.configDir);
    const loaded = plan.loaded;
    ensureWritableDir(loaded.config.agent.state_dir);
    const log = createLogger(loaded.config.agent.log_level, options.native);
    const agent = new Agent(options, plan, log, new ServiceManager(options.native));
    await agent.status.listen();
    try {
      await agent.startOutputs();
      agent.plugins = agent.makePlugins(plan);
      const { config } = loaded;
      if (config.containerd.enabled || config.kubelet.enabled || config.kube_proxy.enabled) {
        agent.runtime = await RuntimeHealth.create(config, log, agent.sink, config.agent.state_dir, {
          onAction: (unit, action, result) => agent.metrics.countRepair(unit, action, result),
        });
        const runtime = agent.runtime;
        agent.metrics.watchRuntime(() => runtime.status());
      }
      agent.applyDeclarations(agent.plugins);
      const saved = agent.store.load();
      if (saved) agent.conditions.restore(saved, agent.bootId);
      agent.adoptFromNode(saved?.conditions.map((c) => c.type) ?? []);
      agent.publish();
      agent.startSources();
      agent.runtime?.start();
      agent.schedule();
      agent.startLadder();
    } catch (err) {
      await agent.status.close();
      await agent.stopOutputs();
      throw err;
    }
    agent.petWatchdog();
    agent.manager.ready(agent.summary());
    log.info(`node-health-agent ${VERSION} started`, {
      config_files: loaded.files.join(',') || 'none (defaults)',
      checks: plan.checks.length,
    });
    return agent;
  }

  /** Re-reads the config; a bad one is rejected and the daemon keeps running on the old one. */
  reload(): void {
    this.manager.reloading();
    try {
      const plan = makePlan(this.options.configDir);
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
      // Everything new is built before anything running is replaced: a bad config changes nothing.
      const plugins = this.makePlugins(plan);
      this.declarationsFor(plan, plugins);
      this.stopSources();
      this.plan = plan;
      this.loaded = next;
      this.generation++;
      this.log.setLevel(next.config.agent.log_level);
      this.plugins = plugins;
      this.applyDeclarations(plugins);
      this.publish();
      this.startSources();
      this.scheduler.stop();
      this.scheduler = new Scheduler();
      this.schedule();
      this.lastReload = { at: new Date().toISOString(), ok: true };
      this.log.info(`configuration reloaded (generation ${this.generation})`);
    } catch (err) {
      const error = messageOf(err);
      this.lastReload = { at: new Date().toISOString(), ok: false, error };
      for (const line of error.split('\n')) {
        const file = /^([^:]+):\d+:/.exec(line)?.[1];
        this.log.error(`reload rejected, keeping generation ${this.generation}: ${line}`, file ? { file } : {});
      }
    }
    this.manager.ready(this.summary());
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.manager.stopping();
    this.scheduler.stop();
    this.stopSources();
    await this.runtime?.stop();
    // A run in progress stays open in the ladder's ledger and the slot is kept: both must outlive our reboot.
    await this.ladder?.stop();
    this.coordinator?.stop();
    this.ladderClient?.close();
    this.store.flush();
    await this.stopOutputs();
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    await this.status.close();
    this.log.info('node-health-agent stopped');
    this.log.close();
  }

  private makePlugins(plan: Plan): PluginMonitor | undefined {
    return plan.loaded.config.plugins.enabled ? PluginMonitor.create(plan.loaded, this.log, this.sink) : undefined;
  }

  /**
   * Every condition type the sources will report, each with one owner. Shared types join an owner
   * that already declares them: the repair module's Frequent…Restart types (when journal rules own
   * them) and the read-only probe's ReadonlyFilesystem (the journal rule of that name sees the same fact).
   */
  private declarationsFor(plan: Plan, plugins: PluginMonitor | undefined): ConditionDeclaration[] {
    const probes = plan.checks.flatMap(({ section, condition: c }) =>
      c ? [{ shared: c.shared, decl: { type: c.type, owner: `[${section}]`, reason: c.reason, message: c.message, setAfter: c.setAfter, clearAfter: c.clearAfter } }] : [],
    );
    const runtime = (this.runtime?.conditionDeclarations() ?? []).map((d) => ({
      shared: d.shared,
      decl: { type: d.type, owner: d.owner, reason: d.reason, message: d.message },
    }));
    const candidates = [
      ...[...plan.declarations, ...(plugins?.declarations() ?? [])].map((decl) => ({ shared: false, decl })),
      ...probes.filter((p) => !p.shared),
      ...runtime.filter((r) => !r.shared),
      ...probes.filter((p) => p.shared),
      ...runtime.filter((r) => r.shared),
    ];
    const all: ConditionDeclaration[] = [];
    const owners = new Map<string, string>();
    for (const { shared, decl: d } of candidates) {
      if (KUBELET_CONDITION_TYPES.includes(d.type)) {
        throw new AgentError('CONFIG_INVALID', `condition ${d.type} (${d.owner} settings) belongs to the kubelet; give it another type`);
      }
      const owner = owners.get(d.type);
      if (owner !== undefined && shared) continue;
      if (owner !== undefined && owner !== d.owner) {
        throw new AgentError(
          'CONFIG_INVALID',
          `condition ${d.type} is reported by both ${owner} and ${d.owner} settings; give one of them another type or disable it`,
        );
      }
      owners.set(d.type, d.owner);
      all.push(d);
    }
    return all;
  }

  /** Declares the condition types the configured sources own; types no longer configured are dropped. */
  private applyDeclarations(plugins: PluginMonitor | undefined): void {
    const declarations = this.declarationsFor(this.plan, plugins);
    const dropped = this.conditions.retain(declarations.map((d) => d.type));
    try {
      for (const d of declarations) this.conditions.declare(d);
    } catch (err) {
      if (err instanceof ConditionConflictError) throw new AgentError('CONFIG_INVALID', err.message);
      throw err;
    }
    if (dropped.length > 0) this.log.info(`conditions no longer configured: ${dropped.join(', ')}`);
  }

  private startSources(): void {
    const { rules, loaded } = this.plan;
    if (rules && rules.sources.length > 0) {
      this.journal = new JournalMonitor(rules, loaded.config.journal, loaded.config.agent.state_dir, this.sink, this.log);
      this.journal.start();
    }
    this.plugins?.start();
  }

  private stopSources(): void {
    this.journal?.stop();
    this.journal = undefined;
    void this.plugins?.stop();
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
      const reporter = await NodeReporter.create(config.kubernetes, this.log, {
        nodeName: this.options.nodeName,
        onRequest: (r) => this.metrics.recordApiRequest(r),
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
   * every restart); the state saved locally before a restart is newer, so it wins for its types.
   */
  private adoptFromNode(savedTypes: string[]): void {
    const reporter = this.reporter;
    if (!reporter) return;
    const skip = new Set(savedTypes);
    const adopt = (conditions: NodeCondition[]): void => {
      for (const c of conditions) if (!skip.has(c.type)) this.conditions.adopt(c);
      skip.clear();
      for (const c of conditions) skip.add(c.type);
      this.publish();
    };
    const now = reporter.adopted();
    if (now.length > 0) adopt(now);
    else void reporter.whenAdopted().then(adopt);
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
    this.ladder?.conditionChanged(c);
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
    let settings: LadderSettings;
    try {
      settings = ladderSettings(config, config.named.remediate);
    } catch (err) {
      if (err instanceof LadderConfigError) throw new AgentError('CONFIG_INVALID', err.message);
      throw err;
    }
    const ledger = LadderLedger.open(config.agent.state_dir);
    for (const w of ledger.warnings) this.log.warning(w, { file: ledger.path });
    if (!settings.enabled && !ledger.unfinished()) return;
    const reporter = this.reporter;
    if (!reporter) {
      this.log.warning('[ladder] is enabled but [kubernetes] is not: the ladder needs the Node, so it does not run');
      return;
    }
    for (const type of settings.conditions.keys()) {
      if (!this.conditions.get(type)) this.log.warning(`[remediate "${type}"]: this agent reports no condition ${type}, so it never starts a ladder`, { condition: type });
    }
    void reporter.whenAdopted().then(() => {
      if (this.stopping) return;
      const node = reporter.status().nodeName;
      const onRequest = (r: RequestRecord): void => this.metrics.recordApiRequest(r);
      this.ladderClient = new KubeClient(loadKubeconfig(findKubeconfig(config.kubernetes.kubeconfig_paths)), {
        userAgent: userAgent(config.kubernetes.field_manager),
        timeoutMs: config.kubernetes.request_timeout,
        onRequest,
      });
      this.coordinator = new Coordinator(config, node, { log: this.log, onRequest });
      this.coordinator.start();
      this.ladder = new Ladder({
        settings,
        gate: this.coordinator,
        node: new NodeApi(this.ladderClient, node, config.kubernetes.field_manager),
        rebooter: new Login1(),
        ledger,
        events: {
          event: (e) => this.recordEvent(e),
          // Before a reboot: give the step's Event a moment to reach the API server.
          flush: async (ms) => {
            const until = Date.now() + ms;
            while (Date.now() < until && reporter.status().events.queued > 0) await new Promise((r) => setTimeout(r, 50));
          },
        },
        condition: (type) => this.conditions.get(type),
        log: this.log,
        bootId: this.bootId,
      });
      const ladder = this.ladder;
      this.metrics.watchLadder(() => ladder.status());
      this.ladder.start();
    });
  }

  private schedule(): void {
    // A check whose settings did not change keeps its instance, and with it its baselines (rates).
    const previous = this.checks;
    this.checks = new Map(
      this.plan.checks.map((s) => {
        const id = checkId(s.check);
        const kept = previous.get(id);
        return [id, kept && kept.settings === s.settings ? kept : s];
      }),
    );
    this.table.retain(this.checks.keys());
    // A probe disabled, or whose condition was renamed, no longer speaks for its old condition.
    const speaking = new Set([...this.checks].filter(([, s]) => s.condition).map(([id, s]) => `${probeConditionSource(id)}\0${s.condition?.type}`));
    this.conditions.retainReports((r) => !r.source.startsWith('probe/') || speaking.has(`${r.source}\0${r.type}`));
    this.scheduler.start(
      [...this.checks].map(([id, { check, intervalMs, condition }]) => ({
        name: id,
        intervalMs,
        run: async () => {
          const results = await runCheck(check);
          this.metrics.recordCheck(id, (results[0]?.durationMs ?? 0) / 1000);
          if (condition) this.conditions.report(probeConditionReport({ checkId: id, type: condition.type }, results));
          const { appeared, cleared } = this.table.record(id, results);
          for (const r of appeared) {
            const log = r.status === 'problem' ? this.log.error : this.log.warning;
            log(`${id}: ${r.message}`, { check: id, reason: r.reason, subject: r.subject });
          }
          for (const r of cleared) this.log.info(`${id}: ${r.reason} cleared`, { check: id, reason: r.reason, subject: r.subject });
          this.manager.status(this.summary());
        },
      })),
    );
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

  private snapshot(): unknown {
    const results = this.table.all();
    return {
      version: VERSION,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      config: {
        generation: this.generation,
        files: this.loaded.files,
        lastReload: this.lastReload ?? null,
      },
      checks: results,
      problems: results.filter((r) => r.status !== 'ok'),
      conditions: this.conditions.conditions(),
      recentEvents: this.recentEvents,
      journal: this.journal?.status() ?? [],
      kubernetes: this.reporter?.status() ?? null,
      plugins: this.plugins?.status() ?? [],
      runtime: this.runtime?.status() ?? null,
      coordination: this.coordinator?.status() ?? null,
      ladder: this.ladder?.status() ?? null,
    };
  }
}

function makePlan(configDir: string | undefined): Plan {
  const loaded = loadConfig(configDir, { required: configDir !== undefined });
  const rules = loaded.config.journal.enabled ? buildRuleSet(loaded) : undefined;
  return { loaded, rules, declarations: rules ? journalDeclarations(rules) : [], checks: enabledChecks(loaded.config) };
}

function checkId(check: { component: string; name: string }): string {
  return `${check.component}/${check.name}`;
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
