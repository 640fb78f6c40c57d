// Container runtime and kubelet health with repair: the components (containerd, kubelet, kube-proxy),
// the systemd unit watcher they share, the ledger, and the one place that decides and performs repairs
// — one at a time, only on allowed units, within back-off and budget, recorded before and after.
import type { Config } from '../config/schema';
import type { ConditionDeclaration, ConditionReport, EventReport, Logger, ProblemSink, RuntimeProbes } from '../types';
import { background } from '../system/background';
import type { WriteHealth } from '../system/degraded';
import { SystemdBus } from '../system/systemd/systemd-bus';
import { UnitWatcher, type UnitState } from '../system/systemd/unit-watcher';
import { restartOrStart, retireLegacyUnit, type ActionResult } from './actions';
import { ComponentMonitor, type ComponentSpec } from './component';
import { LedgerError, RepairLedger, type LedgerEntry, type UnitSnapshot } from './ledger';
import { budget, decide, type Budget, type Health, type RepairPolicy } from './policy';
import type { ComponentStatus, RuntimeHealthStatus } from '../types';
export type { ComponentStatus, RuntimeHealthStatus };

/** Actions shown by `status`. */
export const STATUS_ACTIONS = 20;
export interface RuntimeHealthOptions {
  /** D-Bus address of the system bus (tests); default the system bus. */
  busAddress?: string;
  /** Told of every repair action once its result is known (metrics). */
  onAction?: (unit: string, action: string, result: string) => void;
  /** Where ledger writes that fail are reported (the agent's degraded state); outcomes are then retried. */
  ledgerHealth?: WriteHealth;
}

export class RuntimeHealth {
  private readonly bus: SystemdBus;
  private readonly watcher: UnitWatcher;
  private readonly components: ComponentMonitor[] = [];
  private readonly byUnit = new Map<string, ComponentMonitor>();
  private readonly busy = new Set<string>();
  private readonly notified = new Set<string>();
  private readonly actionsTotal: Record<string, number> = {};
  private readonly rejudge = new Map<string, NodeJS.Timeout>();
  private queue: Promise<void> = Promise.resolve();
  /** Dangling intents are resolved before anything new is done. */
  private resolved = false;
  private stopped = false;

  private constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly sink: ProblemSink,
    private readonly ledger: RepairLedger,
    private readonly probes: RuntimeProbes,
    private readonly options: RuntimeHealthOptions,
  ) {
    this.bus = new SystemdBus(options.busAddress ? { address: options.busAddress } : {});
    for (const spec of RuntimeHealth.specs(config, probes)) {
      const c = new ComponentMonitor(spec, {
        log,
        condition: (r) => this.condition(r),
        event: (e) => this.event(e),
        unitState: (unit) => this.watcher.get(unit),
        onVerdict: (component) => this.onVerdict(component),
      });
      this.components.push(c);
      if (spec.unit) this.byUnit.set(spec.unit, c);
    }
    const units = [...this.byUnit.keys(), ...config.repair.legacy_units.filter((u) => !this.byUnit.has(u))];
    this.watcher = new UnitWatcher(this.bus, units);
  }

  /** Opens the repair ledger in `stateDir` (throws LedgerError naming the file when it cannot be read). */
  static async create(
    config: Config,
    log: Logger,
    sink: ProblemSink,
    stateDir: string,
    /** The components' probes (sources/runtime/probes.ts runtimeProbes); closed by stop(). */
    probes: RuntimeProbes,
    options: RuntimeHealthOptions = {},
  ): Promise<RuntimeHealth> {
    const ledger = RepairLedger.open(stateDir, options.ledgerHealth);
    for (const w of ledger.warnings) log.warning(w, { code: 'LEDGER_LINE_SKIPPED', file: ledger.path });
    return new RuntimeHealth(config, log, sink, ledger, probes, options);
  }

  /**
   * The condition types to declare for the components `config` enables; nothing is connected or opened.
   * Frequent…Restart types are shared: the journal rules of that name may own them.
   */
  static conditionDeclarations(config: Config): ConditionDeclaration[] {
    return RuntimeHealth.specs(config, undefined).flatMap((spec): ConditionDeclaration[] => [
      { type: spec.condition.type, reason: spec.condition.reason, message: spec.condition.message, owner: 'repair' },
      ...(spec.frequent ? [{ type: spec.frequent.type, reason: spec.frequent.reason, message: spec.frequent.message, owner: 'repair', shared: true }] : []),
    ]);
  }

  start(): void {
    this.watcher.on('change', (state, previous) => this.onUnit(state, previous));
    this.watcher.on('unknown', (reason) => {
      this.log.warning(`systemd unit state unknown: ${reason}; reconnecting to the system bus`, { component: 'systemd' });
      for (const c of this.components) c.onUnit(undefined, undefined);
    });
    this.bus.on('ready', () => {
      this.log.info('watching units over D-Bus', { units: this.watcher.units.join(',') });
      // The watcher re-reads every unit on "ready"; resolve the ledger and look for legacy units after that.
      void background('resolving the repair ledger after D-Bus came up', () => this.watcher.refreshAll().then(() => this.afterReady()));
    });
    this.watcher.start();
    this.bus.start();
    for (const c of this.components) c.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.rejudge.values()) clearTimeout(timer);
    for (const c of this.components) c.stop();
    this.watcher.stop();
    this.bus.stop();
    this.probes.close();
    // An action still running is left to the ledger: its intent is resolved at the next start.
    await Promise.race([this.queue, new Promise((r) => setTimeout(r, 2000).unref())]);
    this.ledger.close();
  }

  status(): RuntimeHealthStatus {
    const now = Date.now();
    return {
      mode: this.config.repair.mode,
      bus: { connected: this.bus.ready, lastError: this.bus.lastError },
      components: this.components.map((c) => {
        const unit = c.spec.unit;
        const b = c.spec.policy ? this.budgetOf(c, now) : undefined;
        return {
          name: c.spec.name,
          unit: unit ?? null,
          health: c.health,
          failingSince: c.failingSince ? new Date(c.failingSince).toISOString() : null,
          unitState: (unit && this.watcher.get(unit)) || null,
          findings: c.probe?.findings ?? [],
          repair:
            c.spec.policy && b
              ? {
                  enabled: c.spec.policy.enabled && this.config.repair.mode !== 'off',
                  allowed: unit !== undefined && this.config.repair.allowed_units.includes(unit),
                  used: b.used,
                  max: c.spec.policy.maxRepairs,
                  nextAllowedAt: Number.isFinite(b.allowedAt) && b.allowedAt > now ? new Date(b.allowedAt).toISOString() : null,
                  exhausted: b.exhausted,
                }
              : null,
          restartsInWindow: c.spec.frequent ? c.recentStarts().length : null,
        };
      }),
      legacyUnits: this.config.repair.legacy_units.flatMap((unit) => {
        const s = this.watcher.get(unit);
        return s && s.loadState !== 'not-found'
          ? [{ unit, loadState: s.loadState, activeState: s.activeState, unitFileState: s.unitFileState }]
          : [];
      }),
      lastActions: this.ledger.recent(STATUS_ACTIONS),
      actionsTotal: { ...this.actionsTotal },
    };
  }

  // ── components ─────────────────────────────────────────────────────────────────────────────────

  private static specs(config: Config, probes: RuntimeProbes | undefined): ComponentSpec[] {
    const { containerd, kubelet, kube_proxy } = config;
    const policyOf = (cfg: Config['containerd'] | Config['kubelet']): RepairPolicy & { enabled: boolean } => ({
      enabled: cfg.repair,
      failureDurationMs: cfg.failure_duration,
      cooldownMs: cfg.cooldown,
      backoffMs: cfg.backoff,
      backoffMaxMs: cfg.backoff_max,
      maxRepairs: cfg.max_repairs,
      windowMs: cfg.repair_window,
    });
    const specs: ComponentSpec[] = [];
    if (containerd.enabled) {
      specs.push({
        name: 'containerd',
        section: 'containerd',
        title: 'Containerd',
        unit: containerd.unit,
        intervalMs: containerd.interval,
        cooldownMs: containerd.cooldown,
        condition: {
          type: 'ContainerRuntimeUnhealthy',
          reason: 'ContainerRuntimeIsHealthy',
          message: 'Container runtime on the node is functioning properly',
        },
        frequent: {
          type: 'FrequentContainerdRestart',
          reason: 'NoFrequentContainerdRestart',
          message: 'containerd is functioning properly',
          count: containerd.restarts,
          windowMs: containerd.restarts_window,
        },
        policy: policyOf(containerd),
        probe: () => (probes as RuntimeProbes).containerd(),
      });
    }
    if (kubelet.enabled) {
      specs.push({
        name: 'kubelet',
        section: 'kubelet',
        title: 'Kubelet',
        unit: kubelet.unit,
        intervalMs: kubelet.interval,
        cooldownMs: kubelet.cooldown,
        condition: { type: 'KubeletUnhealthy', reason: 'KubeletIsHealthy', message: 'kubelet on the node is functioning properly' },
        frequent: {
          type: 'FrequentKubeletRestart',
          reason: 'NoFrequentKubeletRestart',
          message: 'kubelet is functioning properly',
          count: kubelet.restarts,
          windowMs: kubelet.restarts_window,
        },
        policy: policyOf(kubelet),
        probe: () => (probes as RuntimeProbes).kubelet(),
      });
    }
    if (kube_proxy.enabled) {
      specs.push({
        name: 'kube-proxy',
        section: 'kube_proxy',
        title: 'KubeProxy',
        intervalMs: kube_proxy.interval,
        cooldownMs: 0,
        condition: { type: 'KubeProxyUnhealthy', reason: 'KubeProxyIsHealthy', message: 'kube-proxy on the node is functioning properly' },
        probe: () => (probes as RuntimeProbes).kubeProxy(),
      });
    }
    return specs;
  }

  private onUnit(state: UnitState, previous: UnitState | undefined): void {
    this.byUnit.get(state.name)?.onUnit(state, previous);
    if (this.config.repair.legacy_units.includes(state.name) && this.resolved) this.checkLegacy(state);
  }

  // ── repair decisions ───────────────────────────────────────────────────────────────────────────

  private budgetOf(c: ComponentMonitor, now: number): Budget {
    const policy = c.spec.policy as RepairPolicy;
    const dry = this.config.repair.mode === 'dry-run';
    return budget(policy, this.ledger.actionTimes(c.spec.name, dry, now - policy.windowMs), now);
  }

  private onVerdict(c: ComponentMonitor): { reason: string; message: string } | undefined {
    const { policy, unit, name } = c.spec;
    const health = c.health;
    if (!policy || !unit || health.state !== 'failing' || !health.remedy) {
      this.notified.delete(`${name}/exhausted`);
      return undefined;
    }
    const mode = this.config.repair.mode;
    if (mode === 'off' || !policy.enabled) return undefined;
    if (!this.config.repair.allowed_units.includes(unit)) {
      this.once(`${name}/not-allowed`, () =>
        this.log.warning(`${unit} needs repair but is not in [repair] allowed_units; it is reported, never touched`, {
          component: name,
          unit,
        }),
      );
      return undefined;
    }
    if (!this.bus.ready || !this.resolved || this.busy.has(name) || this.stopped) return undefined;
    const now = Date.now();
    const b = this.budgetOf(c, now);
    const d = decide({ health, failingSince: c.failingSince, now, policy, budget: b });
    if ('exhausted' in d) {
      const window = `${Math.round(policy.windowMs / 60_000)}m`;
      const message =
        `${health.message}. ${b.used} repairs within ${window} did not help; the agent stops repairing until ` +
        `${new Date(b.allowedAt).toISOString()} ([${c.spec.section}] max_repairs = ${policy.maxRepairs}, repair_window = ${window}). ` +
        `Investigate: journalctl -u ${unit}`;
      this.once(`${name}/exhausted`, () => {
        this.log.error(`${name}: repair budget exhausted: ${message}`, { component: name, unit, reason: 'RepairBudgetExhausted' });
        this.event({ source: c.source, severity: 'Warning', reason: 'RepairBudgetExhausted', message });
      });
      return { reason: 'RepairBudgetExhausted', message };
    }
    this.notified.delete(`${name}/exhausted`);
    if (d.act) this.enqueue(name, () => this.repair(c, d.action, health));
    else if (d.until !== undefined) this.judgeAgainAt(c, d.until);
    return undefined;
  }

  /** Judges `c` again when a wait ends, instead of at its next probe (up to an interval later). */
  private judgeAgainAt(c: ComponentMonitor, at: number): void {
    clearTimeout(this.rejudge.get(c.spec.name));
    const timer = setTimeout(() => {
      this.rejudge.delete(c.spec.name);
      if (!this.stopped) c.evaluate();
    }, Math.max(0, at - Date.now()) + 10);
    timer.unref();
    this.rejudge.set(c.spec.name, timer);
  }

  private enqueue(name: string, job: () => Promise<void>): void {
    this.busy.add(name);
    this.queue = this.queue.then(job).catch((err: unknown) => {
      this.log.error(`repair of ${name} failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`, { component: name });
    }).finally(() => this.busy.delete(name));
  }

  private async repair(c: ComponentMonitor, action: 'restart' | 'start', health: Health): Promise<void> {
    if (this.stopped) return;
    const unit = c.spec.unit as string;
    const dryRun = this.config.repair.mode === 'dry-run';
    const fields = { action, unit, component: c.spec.name, reason: health.reason };
    let entry: LedgerEntry;
    try {
      entry = this.ledger.intent({
        component: c.spec.name,
        unit,
        action,
        dryRun,
        reason: health.reason,
        message: health.message,
        before: snapshot(this.watcher.get(unit)),
      });
    } catch (err) {
      this.log.error(`not repairing ${unit}: ${err instanceof LedgerError ? err.message : String(err)}`, fields);
      return;
    }
    if (dryRun) {
      const detail = `dry-run: would ${action} ${unit} (${health.reason}: ${health.message})`;
      this.ledger.outcome(entry.id, { result: 'skipped', detail, durationMs: 0 });
      this.log.warning(detail, { ...fields, dry_run: true });
      this.event({ source: c.source, severity: 'Normal', reason: 'RepairDryRun', message: detail });
      this.count(c.spec.name, unit, action, 'skipped');
      return;
    }
    this.log.warning(`${action === 'restart' ? 'restarting' : 'starting'} ${unit}: ${health.reason}: ${health.message}`, fields);
    const started = Date.now();
    const r = await restartOrStart(this.bus, unit, action, {
      jobTimeoutMs: this.config.repair.job_timeout,
      current: () => this.watcher.get(unit),
      refresh: () => this.watcher.refresh(unit),
    });
    this.finish(c, entry, r, Date.now() - started, '');
    c.probeSoon();
  }

  private finish(c: ComponentMonitor, entry: LedgerEntry, r: ActionResult | { result: 'completed-while-down' | 'interrupted'; detail: string }, durationMs: number, note: string): void {
    const after = snapshot(this.watcher.get(entry.unit));
    try {
      this.ledger.outcome(entry.id, { result: r.result, detail: r.detail, durationMs, ...(after ? { after } : {}) });
    } catch (err) {
      this.log.error(`${entry.unit}: the outcome could not be recorded: ${err instanceof Error ? err.message : String(err)}`, { unit: entry.unit });
    }
    this.count(entry.component, entry.unit, entry.action, r.result);
    const ok = r.result === 'done' || r.result === 'escalated' || r.result === 'completed-while-down';
    const pids = `main PID ${entry.before?.mainPid || '-'} → ${after?.mainPid || '-'}`;
    const verb = entry.action === 'restart' ? 'restarted' : 'started';
    const message = ok
      ? `${verb} ${entry.unit}${note} after ${entry.reason} (${pids}, ${(durationMs / 1000).toFixed(1)}s): ${r.detail}`
      : `${entry.action} of ${entry.unit}${note} ${r.result}: ${r.detail}`;
    const fields = {
      action: entry.action,
      unit: entry.unit,
      component: entry.component,
      result: r.result,
      duration_ms: durationMs,
      main_pid: after?.mainPid ?? 0,
    };
    if (ok) this.log.warning(message, fields);
    else this.log.error(message, fields);
    const reason = ok ? `${c.spec.title}${entry.action === 'restart' ? 'Restarted' : 'Started'}` : `${c.spec.title}RepairFailed`;
    this.event({ source: c.source, severity: 'Warning', reason, message });
  }

  // ── after (re)connecting: the ledger's loose ends, legacy monitors ────────────────────────────

  private async afterReady(): Promise<void> {
    if (!this.resolved) {
      await this.resolveDangling();
      this.resolved = true;
    }
    for (const unit of this.config.repair.legacy_units) {
      const state = this.watcher.get(unit);
      if (state) this.checkLegacy(state);
    }
    for (const c of this.components) c.evaluate();
  }

  /**
   * Actions a previous run did not see to the end. A job still running is waited for (and escalated
   * like any hung job); then the unit's start time tells whether the action took effect. Either way it
   * counts as a repair, so back-off and budget apply and it is not repeated blindly.
   */
  private async resolveDangling(): Promise<void> {
    for (const entry of this.ledger.dangling()) {
      const c = this.components.find((x) => x.spec.name === entry.component);
      if (entry.dryRun || !c) {
        // A dry-run did nothing; a legacy monitor is looked at again right after this.
        const result = entry.dryRun ? 'skipped' : 'interrupted';
        this.ledger.outcome(entry.id, { result, detail: `the agent stopped during the ${entry.action}; looked at again now`, durationMs: 0 });
        continue;
      }
      const started = Date.now();
      await this.watcher.refresh(entry.unit);
      let state = this.watcher.get(entry.unit);
      let waited = '';
      if (state && state.jobId !== 0) {
        const remaining = Math.max(1000, this.config.repair.job_timeout - (Date.now() - Date.parse(entry.at)));
        await this.untilIdle(entry.unit, remaining);
        state = this.watcher.get(entry.unit);
        waited = `; waited for the job the agent had queued`;
        if (state && state.jobId !== 0) {
          // Hung like any job past job_timeout: the same escalation as a live repair.
          await this.bus.killUnit(entry.unit, 'main', 9).catch(() => undefined);
          await this.untilIdle(entry.unit, this.config.repair.job_timeout);
          waited += '; it was still running after job_timeout: KillUnit main SIGKILL';
          state = this.watcher.get(entry.unit);
          if (state && state.activeState !== 'active' && state.jobId === 0) {
            const r = await restartOrStart(this.bus, entry.unit, 'start', {
              jobTimeoutMs: this.config.repair.job_timeout,
              current: () => this.watcher.get(entry.unit),
              refresh: () => this.watcher.refresh(entry.unit),
            });
            waited += `; ${r.detail}`;
            state = this.watcher.get(entry.unit);
          }
        }
      }
      const restartedAt =
        state && entry.before && state.inactiveExitUs !== entry.before.inactiveExitUs && state.activeState === 'active'
          ? state.inactiveExitUs
          : undefined;
      const r = restartedAt !== undefined
        ? {
            result: 'completed-while-down' as const,
            detail: `the agent stopped during the ${entry.action}; ${entry.unit} started again at ${new Date(restartedAt / 1000).toISOString()}${waited}`,
          }
        : {
            result: 'interrupted' as const,
            detail:
              `the agent stopped during the ${entry.action}; ${entry.unit} shows no start since (${state ? `${state.activeState}/${state.subState}` : 'state unknown'})` +
              `${waited}; not repeated now: back-off and budget decide the next repair`,
          };
      this.finish(c, entry, r, Date.now() - started, ' (resolved after an agent restart)');
    }
  }

  private untilIdle(unit: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.watcher.off('change', onChange);
        resolve();
      };
      const onChange = (s: UnitState) => {
        if (s.name === unit && s.jobId === 0) done();
      };
      const timer = setTimeout(done, timeoutMs);
      this.watcher.on('change', onChange);
      if (this.watcher.get(unit)?.jobId === 0) done();
    });
  }

  /** A legacy monitor that is installed and not masked: report it, and with legacy_monitors = mask retire it. */
  private checkLegacy(state: UnitState): void {
    const unit = state.name;
    if (state.loadState !== 'loaded' || state.unitFileState === 'masked' || this.byUnit.has(unit)) return;
    const mask = this.config.repair.legacy_monitors === 'mask' && this.config.repair.mode !== 'off';
    const found =
      `legacy monitor ${unit} is installed (${state.activeState}, ${state.unitFileState || 'no unit file state'}); it restarts ` +
      `the runtime or the kubelet by itself, so two repairers may fight`;
    this.once(`legacy/${unit}`, () => {
      this.log.warning(`${found}; ${mask ? 'stopping and masking it' : 'set [repair] legacy_monitors = mask to retire it'}`, { unit, component: 'legacy' });
      this.event({ source: 'repair/legacy', severity: 'Warning', reason: 'LegacyMonitorFound', message: found });
    });
    if (!mask || this.busy.has(`legacy/${unit}`)) return;
    // At most one retirement per hour per unit, so an operator who unmasks it is not fought in a loop.
    const dryRun = this.config.repair.mode === 'dry-run';
    const now = Date.now();
    if (this.ledger.actionTimes(`legacy/${unit}`, dryRun, now - 3_600_000).length > 0) return;
    this.enqueue(`legacy/${unit}`, async () => {
      const entry = this.ledger.intent({
        component: `legacy/${unit}`,
        unit,
        action: 'mask',
        dryRun,
        reason: 'LegacyMonitorFound',
        message: found,
        before: snapshot(state),
      });
      const started = Date.now();
      const r: ActionResult | { result: 'skipped'; detail: string } = dryRun
        ? { result: 'skipped', detail: `dry-run: would stop and mask ${unit}` }
        : await retireLegacyUnit(this.bus, unit, this.config.repair.job_timeout);
      const after = snapshot(this.watcher.get(unit));
      this.ledger.outcome(entry.id, { result: r.result, detail: r.detail, durationMs: Date.now() - started, ...(after ? { after } : {}) });
      this.count(`legacy/${unit}`, unit, 'mask', r.result);
      const fields = { action: 'mask', unit, component: 'legacy', result: r.result };
      if (r.result === 'failed') this.log.error(`retiring ${unit} failed: ${r.detail}`, fields);
      else this.log.warning(`${unit}: ${r.detail}`, fields);
      this.event({
        source: 'repair/legacy',
        severity: r.result === 'skipped' ? 'Normal' : 'Warning',
        reason: r.result === 'skipped' ? 'RepairDryRun' : r.result === 'failed' ? 'LegacyMonitorRetireFailed' : 'LegacyMonitorMasked',
        message: `${unit}: ${r.detail}`,
      });
    });
  }

  // ── outputs ────────────────────────────────────────────────────────────────────────────────────

  private condition(report: ConditionReport): void {
    try {
      this.sink.condition(report);
    } catch (err) {
      this.once(`sink/${report.type}`, () =>
        this.log.error(`condition ${report.type} could not be reported: ${err instanceof Error ? err.message : String(err)}`, {
          condition: report.type,
        }),
      );
    }
  }

  private event(report: EventReport): void {
    try {
      this.sink.event(report);
    } catch (err) {
      this.log.error(`event ${report.reason} could not be reported: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private count(component: string, unit: string, action: string, result: string): void {
    const key = `${component}/${action}/${result}`;
    this.actionsTotal[key] = (this.actionsTotal[key] ?? 0) + 1;
    this.options.onAction?.(unit, action, result);
  }

  /** Runs `fn` once per `key` until the key is cleared (for things said once per episode). */
  private once(key: string, fn: () => void): void {
    if (this.notified.has(key)) return;
    this.notified.add(key);
    fn();
  }
}

function snapshot(s: UnitState | undefined): UnitSnapshot | undefined {
  return s ? { activeState: s.activeState, subState: s.subState, mainPid: s.mainPid, inactiveExitUs: s.inactiveExitUs } : undefined;
}
