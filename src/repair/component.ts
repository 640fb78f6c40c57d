// One watched component (containerd, the kubelet, kube-proxy): probed on its interval and re-judged at
// once whenever its unit changes state, so a crash is acted on when systemd announces it. It reports
// its conditions on every verdict; whether to repair is the caller's decision (onVerdict).
import type { Logger, ConditionReport, EventReport, Probe } from '../types';
import type { UnitState } from '../system/systemd/unit-watcher';
import { judge, type Health, type RepairPolicy } from './policy';
import { jitter } from '../system/backoff';
import { background } from '../system/background';

/** How long after an abnormal exit the unit's next state is awaited, to tell whether systemd restarts it. */
const EXIT_SETTLE_MS = 200;

export interface ComponentCondition {
  type: string;
  /** Reason and message while False (node-problem-detector's, so existing tooling keeps working). */
  reason: string;
  message: string;
}

export interface ComponentSpec {
  /** Ledger and event source name: containerd, kubelet, kube-proxy. */
  name: string;
  /** Config section: containerd, kubelet, kube_proxy. */
  section: string;
  /** In reasons: Containerd, Kubelet, KubeProxy. */
  title: string;
  unit?: string;
  intervalMs: number;
  cooldownMs: number;
  condition: ComponentCondition;
  /** Frequent…Restart: starts of the unit within a window. */
  frequent?: ComponentCondition & { count: number; windowMs: number };
  /** Absent: never repaired. */
  policy?: RepairPolicy & { enabled: boolean };
  probe(): Promise<Probe>;
}

export interface ComponentDeps {
  log: Logger;
  condition(report: ConditionReport): void;
  event(report: EventReport): void;
  unitState(unit: string): UnitState | undefined;
  /**
   * Called after every verdict; may start a repair. Returns a replacement for the condition's reason
   * and message (RepairBudgetExhausted), or undefined.
   */
  onVerdict(component: ComponentMonitor): { reason: string; message: string } | undefined;
  now?: () => number;
  /** CLOCK_MONOTONIC in µs, the clock of systemd's *TimestampMonotonic properties. */
  monoNowUs?: () => number;
}

export class ComponentMonitor {
  probe: Probe | undefined;
  health: Health = { state: 'unknown', reason: 'NotProbed', message: 'not probed yet' };
  /** When the current failure began (ms since the epoch). */
  failingSince: number | undefined;
  /** Times of the unit's starts seen within the frequent-restart window. */
  starts: number[] = [];
  private counted: { exitUs: number; nRestarts: number } | undefined;
  /** An abnormal exit being watched: did systemd schedule an automatic restart? */
  private exit: { autoRestart: boolean } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private again = false;
  private stopped = true;
  private readonly now: () => number;
  private readonly monoNowUs: () => number;

  constructor(
    readonly spec: ComponentSpec,
    private readonly deps: ComponentDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.monoNowUs = deps.monoNowUs ?? (() => Number(process.hrtime.bigint() / 1000n));
  }

  get source(): string {
    return `repair/${this.spec.name}`;
  }

  start(): void {
    this.stopped = false;
    // Spread the first probes over a second so components do not probe in one burst.
    this.schedule(Math.random() * 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Probes now (after a repair, say) instead of at the next interval. */
  probeSoon(): void {
    if (this.stopped) return;
    if (this.probing) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  /** The unit changed: count starts, note crashes, judge again at once. */
  onUnit(state: UnitState | undefined, previous: UnitState | undefined): void {
    if (state) {
      this.countStart(state);
      this.noteExit(state, previous);
    }
    this.evaluate();
  }

  /** Judges the component from its unit and its last probe, reports its conditions, lets the caller act. */
  evaluate(): void {
    const { spec } = this;
    const unit = spec.unit ? this.deps.unitState(spec.unit) : undefined;
    const previous = this.health;
    this.health = judge({
      title: spec.title,
      unitName: spec.unit ?? spec.name,
      section: spec.section,
      unit,
      probe: this.probe?.result,
      cooldownMs: spec.cooldownMs,
      monoNowUs: this.monoNowUs(),
    });
    if (this.health.state === 'failing') this.failingSince ??= this.now();
    else if (this.health.state === 'healthy' || this.health.state === 'absent') this.failingSince = undefined;
    this.logTransition(previous);

    const override = this.deps.onVerdict(this);
    const state = this.health.state;
    if (state === 'failing') {
      this.report(spec.condition, 'True', override?.reason ?? this.health.reason, override?.message ?? this.health.message);
    } else if (state === 'healthy' || state === 'absent') {
      this.report(spec.condition, 'False', spec.condition.reason, spec.condition.message);
    }
    // settling and unknown: the condition keeps its last value until there is something to judge.
    if (spec.frequent) this.reportFrequent(spec.frequent);
  }

  /** Starts within the frequent-restart window. */
  recentStarts(): number[] {
    if (!this.spec.frequent) return [];
    const since = this.now() - this.spec.frequent.windowMs;
    this.starts = this.starts.filter((t) => t > since);
    return this.starts;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void background(`probing ${this.spec.name}`, () => this.runProbe()), delayMs);
    this.timer.unref();
  }

  private async runProbe(): Promise<void> {
    if (this.stopped) return;
    this.probing = true;
    try {
      this.probe = await this.spec.probe();
    } catch (err) {
      const message = `probe failed: ${err instanceof Error ? err.message : String(err)}`;
      this.probe = { result: { ok: false, reason: `${this.spec.title}ProbeFailed`, message, at: this.now() }, findings: [] };
    } finally {
      this.probing = false;
    }
    if (this.stopped) return;
    this.evaluate();
    if (this.again) {
      this.again = false;
      this.schedule(0);
    } else {
      // ±10 % jitter keeps components with equal intervals from probing in step.
      this.schedule(jitter(this.spec.intervalMs));
    }
  }

  private report(spec: ComponentCondition, status: 'True' | 'False', reason: string, message: string): void {
    this.deps.condition({ source: this.source, type: spec.type, status, reason, message });
  }

  private reportFrequent(f: NonNullable<ComponentSpec['frequent']>): void {
    const starts = this.recentStarts();
    if (starts.length >= f.count) {
      const minutes = Math.round(f.windowMs / 60_000);
      this.report(
        f,
        'True',
        f.type,
        `${this.spec.unit} started ${starts.length} times within ${minutes}m (threshold ${f.count}), last at ` +
          `${new Date(starts[starts.length - 1] as number).toISOString()}; see journalctl -u ${this.spec.unit}`,
      );
    } else {
      this.report(f, 'False', f.reason, f.message);
    }
  }

  /**
   * A start is the unit becoming active with a new InactiveExitTimestamp (a reload keeps it). Restarts
   * systemd made while the agent could not watch show up as a larger NRestarts step.
   */
  private countStart(state: UnitState): void {
    if (!this.spec.frequent || state.activeState !== 'active' || state.inactiveExitUs === 0) return;
    const counted = this.counted;
    if (counted && counted.exitUs === state.inactiveExitUs) return;
    const now = this.now();
    if (!counted) {
      const startedAt = state.inactiveExitUs / 1000;
      if (startedAt > now - this.spec.frequent.windowMs) this.starts.push(startedAt);
    } else {
      const n = Math.max(1, state.nRestarts - counted.nRestarts);
      for (let i = 0; i < n; i++) this.starts.push(now);
    }
    this.counted = { exitUs: state.inactiveExitUs, nRestarts: state.nRestarts };
  }

  private noteExit(state: UnitState, previous: UnitState | undefined): void {
    if (this.exit && state.subState === 'auto-restart') this.exit.autoRestart = true;
    if (!previous || state.result === previous.result || state.result === 'success' || state.result === '') return;
    // systemd sets the result and moves to failed, then (Restart=) to auto-restart within the same
    // moment: watch the next states briefly to say which it is.
    const exit = { autoRestart: state.subState === 'auto-restart' };
    this.exit = exit;
    const timer = setTimeout(() => {
      if (this.exit === exit) this.exit = undefined;
      const message =
        `${state.name} ended abnormally (Result=${state.result}, main PID was ${previous.mainPid || 'unknown'}); ` +
        (exit.autoRestart ? 'systemd restarts it' : 'systemd will not restart it by itself');
      this.deps.log.warning(message, { unit: state.name, component: this.spec.name, result: state.result });
      this.deps.event({ source: this.source, severity: 'Warning', reason: `${this.spec.title}Exited`, message });
    }, EXIT_SETTLE_MS);
    timer.unref();
  }

  private logTransition(previous: Health): void {
    const now = this.health;
    if (now.state === previous.state && now.reason === previous.reason) return;
    const fields = { component: this.spec.name, condition: this.spec.condition.type, reason: now.reason };
    if (now.state === 'failing') this.deps.log.error(`${this.spec.name}: ${now.message}`, fields);
    else if (now.state === 'healthy' && previous.state === 'failing') this.deps.log.info(`${this.spec.name} is healthy again: ${now.message}`, fields);
    else if (now.state === 'settling' || now.state === 'absent') this.deps.log.info(`${this.spec.name}: ${now.message}`, fields);
  }
}
