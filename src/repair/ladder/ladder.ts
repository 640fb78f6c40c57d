// The ladder's controller: watches the conditions of the [remediate] sections and starts a run when one
// has been True for its `after` (never on one report: gardener#844), inside a maintenance window, with
// no blocking pod on the node, and only when the fleet's gate grants a slot. One run at a time. At start
// it finishes the run a previous start left open: after its own reboot it waits for the node to be
// healthy and uncordons; a run stopped before its reboot is taken up at the step it was in while the
// slot is still this node's, and undone otherwise.
import { formatDuration } from '../../config/values';
import { messageOf } from '../../errors';
import type { NodeCondition, RepairGate, Slot } from '../../types';
import { podName } from './drain';
import type { RunEntry } from './ledger';
import { LadderRun, type RunContext, type RunDeps } from './run';
import { describeWindows, inWindow, nextWindowStart } from './windows';
import type { LadderWaiting, LadderStatus } from '../../types';
export type { LadderWaiting, LadderStatus };

export interface LadderOptions extends RunDeps {
  gate: RepairGate;
  /** How often the Node is read while waiting for it to be healthy (default 5 s). */
  pollMs?: number;
  /** How soon to look again after a refusal that names no time, a blocking pod or an API error (default 5 min). */
  recheckMs?: number;
  now?: () => number;
}

/** Reasons a ladder waits before asking the gate. */
type LocalRefusal = 'MaintenanceWindow' | 'BlockingPods' | 'PodListFailed' | 'GateUnavailable';

const STATUS_RUNS = 5;

interface Deferral {
  since: string;
  reason: string;
  message: string;
  retryAt: number | undefined;
  /** Reasons already told in an Event for this occurrence. */
  told: Set<string>;
}

export class Ladder {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private active: LadderRun | undefined;
  private stopped = false;
  private readonly stopping = new AbortController();
  private readonly deferred = new Map<string, Deferral>();
  private readonly ctx: RunContext;
  private readonly now: () => number;
  private readonly recheckMs: number;

  constructor(private readonly opts: LadderOptions) {
    const { gate: _gate, pollMs = 5000, recheckMs = 5 * 60_000, now = Date.now, ...deps } = opts;
    this.now = now;
    this.recheckMs = recheckMs;
    this.ctx = { ...deps, condition: (type) => opts.condition(type), pollMs, stopping: this.stopping.signal, now };
  }

  /**
   * Finishes or undoes a run a previous start left open (also when the ladder has been disabled since:
   * a node it cordoned must not stay cordoned) in the background, then starts watching.
   */
  start(): void {
    const open = this.opts.ledger.unfinished();
    if (open) this.launch(() => this.recover(open));
    else this.evaluate();
  }

  /** Called by the agent whenever a condition changes. */
  conditionChanged(c: NodeCondition): void {
    if (c.status !== 'True') this.deferred.delete(c.type);
    this.evaluate();
  }

  /** Stops watching; a run in progress leaves its ledger entry open for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopping.abort('the agent is stopping');
    await this.running;
  }

  status(): LadderStatus {
    const s = this.opts.settings;
    const run = this.active;
    return {
      enabled: s.enabled,
      dryRun: s.dryRun,
      conditions: [...s.conditions.keys()],
      active: run
        ? { run: run.run.id, condition: run.run.condition, lease: run.run.lease, step: run.current?.step ?? null, stepSince: run.current?.since ?? null }
        : null,
      waiting: [...this.deferred].map(([condition, d]) => ({
        condition,
        reason: d.reason,
        message: d.message,
        retryAt: d.retryAt === undefined ? null : new Date(d.retryAt).toISOString(),
      })),
      lastRuns: this.opts.ledger.recent(STATUS_RUNS),
    };
  }

  private launch(work: () => Promise<void>): void {
    this.running = work()
      .catch((err: unknown) => this.opts.log.error(`ladder: ${messageOf(err)}`, { action: 'ladder' }))
      .finally(() => {
        this.running = undefined;
        this.active = undefined;
        this.evaluate();
      });
  }

  /** Starts a run for the condition that is due, or sets a timer for when one will be. */
  private evaluate(): void {
    if (this.stopped || this.running || !this.opts.settings.enabled) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    let next = Infinity;
    let due: { type: string; since: string; at: number } | undefined;
    for (const [type, rc] of this.opts.settings.conditions) {
      const c = this.opts.condition(type);
      const since = c ? Date.parse(c.lastTransitionTime) : NaN;
      if (c?.status !== 'True' || Number.isNaN(since)) continue;
      let at = since + rc.afterMs;
      const last = this.opts.ledger.lastRun(type);
      if (last?.end && sameInstant(last.since, c.lastTransitionTime)) {
        // One ladder per occurrence, unless it failed before disrupting anything: then after `retry`.
        if (last.end.result !== 'failed' && last.end.result !== 'interrupted') continue;
        at = Math.max(at, Date.parse(last.end.at) + this.opts.settings.retryMs);
      }
      const d = this.deferred.get(type);
      if (d && d.since === c.lastTransitionTime) at = Math.max(at, d.retryAt ?? Infinity);
      if (at > now) next = Math.min(next, at);
      else if (!due || at < due.at) due = { type, since: c.lastTransitionTime, at };
    }
    if (due) {
      const { type, since } = due;
      this.launch(() => this.attempt(type, since));
    } else if (Number.isFinite(next)) {
      // Timers cannot wait longer than about 24.8 days; evaluating again early is harmless.
      this.timer = setTimeout(() => this.evaluate(), Math.min(next - now, 2 ** 31 - 1));
      this.timer.unref();
    }
  }

  private async attempt(type: string, since: string): Promise<void> {
    const s = this.opts.settings;
    const now = this.now();
    if (!inWindow(s.windows, new Date(now))) {
      const at = nextWindowStart(s.windows, new Date(now));
      this.defer(type, since, 'MaintenanceWindow', `outside the maintenance windows (${describeWindows(s.windows)})`, at?.getTime());
      return;
    }
    if (s.blockingPods !== '') {
      let blocking: string[];
      try {
        const pods = await this.opts.node.listPods(s.blockingPods);
        blocking = pods.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed').map(podName);
      } catch (err) {
        this.defer(type, since, 'PodListFailed', `cannot list the pods on the node to look for blocking pods: ${messageOf(err)}`, now + this.recheckMs);
        return;
      }
      if (blocking.length > 0) {
        this.defer(type, since, 'BlockingPods', `pods matching blocking_pods (${s.blockingPods}) are on the node: ${blocking.join(', ')}`, now + this.recheckMs);
        return;
      }
    }
    let answer: Awaited<ReturnType<RepairGate['acquire']>>;
    try {
      answer = await this.opts.gate.acquire(type);
    } catch (err) {
      this.defer(type, since, 'GateUnavailable', `cannot ask for a repair slot: ${messageOf(err)}`, now + this.recheckMs);
      return;
    }
    if (!answer.granted) {
      this.defer(type, since, answer.reason, answer.message, answer.retryAt ?? now + this.recheckMs);
      return;
    }
    const slot = answer;
    const c = this.opts.condition(type);
    if (this.stopped || c?.status !== 'True' || !sameInstant(c.lastTransitionTime, since)) {
      // It cleared (or the agent stops) while the gate was asked.
      await slot.release({ repaired: false });
      return;
    }
    this.deferred.delete(type);
    const rc = s.conditions.get(type);
    const run = this.opts.ledger.begin({
      condition: type,
      since,
      dryRun: s.dryRun,
      steps: [...(rc?.steps ?? ['cordon'])],
      lease: slot.lease,
      bootId: this.opts.bootId,
    });
    this.active = new LadderRun(this.ctx, run, slot);
    await this.active.walk();
  }

  private async recover(open: RunEntry): Promise<void> {
    const reboot = open.done.find((x) => x.step === 'reboot');
    const rebooted = !open.dryRun && reboot !== undefined && reboot.bootId !== this.opts.bootId && reboot.outcome?.result !== 'failed';
    const slot = await this.resume(rebooted);
    const run = new LadderRun(this.ctx, open, slot);
    this.active = run;
    if (!rebooted || !reboot) {
      // Stopped before its reboot (a crash, a restart, an upgrade) with the node cordoned: take it up
      // where it was while the slot is still this node's and the ladder still wants it; undoing it would
      // uncordon a drained node and start it all again after `retry`. Without the slot nothing more may
      // be disrupted; and a cordon not yet on record needs a new grant (a slot taken back is not checked
      // against the gate's bound on cordoned nodes): undo.
      const s = this.opts.settings;
      const cordoned = open.done.some((x) => x.step === 'cordon' && x.outcome?.result === 'done');
      const why = !slot
        ? 'the repair slot could not be taken back'
        : !s.enabled || !s.conditions.has(open.condition)
          ? `the ladder is off for ${open.condition} now`
          : open.dryRun
            ? 'a dry run is not taken up again'
            : !cordoned
              ? 'its cordon was not on record yet, and a new cordon needs a new grant'
              : undefined;
      if (why === undefined) await run.resume();
      else await run.undo(why);
      return;
    }
    if (!reboot.outcome) {
      this.opts.ledger.outcome(open.id, 'reboot', {
        result: 'done',
        detail: `the node booted again (boot ${this.opts.bootId}, was ${reboot.bootId})`,
        durationMs: this.now() - Date.parse(reboot.at),
      });
      this.opts.events.event({
        source: `ladder/${open.condition}`,
        severity: 'Normal',
        reason: 'LadderRebooted',
        message: `the node rebooted to repair ${open.condition}; waiting up to ${formatDuration(this.opts.settings.afterBootTimeoutMs)} for the Node Ready and ${open.condition} False`,
      });
    }
    await run.afterBoot(Date.parse(reboot.at));
  }

  /**
   * The slot this node still holds. Right after a boot the API server may not be reachable yet: keep
   * asking for a while (the run finishes without the slot if it cannot be had, its TTL frees it).
   */
  private async resume(patient: boolean): Promise<Slot | undefined> {
    const deadline = this.now() + (patient ? this.opts.settings.afterBootTimeoutMs : 0);
    for (;;) {
      try {
        return await this.opts.gate.resume();
      } catch (err) {
        if (this.now() >= deadline || this.stopping.signal.aborted) {
          this.opts.log.warning(`ladder: cannot take back the repair slot: ${messageOf(err)}; finishing the run without it (its TTL frees it)`, { action: 'ladder' });
          return undefined;
        }
        await new Promise((r) => setTimeout(r, Math.min(this.ctx.pollMs, 5000)));
      }
    }
  }

  private defer(type: string, since: string, reason: string | LocalRefusal, message: string, retryAt: number | undefined): void {
    const previous = this.deferred.get(type);
    const told = previous?.since === since ? previous.told : new Set<string>();
    this.deferred.set(type, { since, reason, message, retryAt, told });
    const when = retryAt === undefined ? 'when something changes' : `at ${new Date(retryAt).toISOString()}`;
    // One event per reason and occurrence: a ladder waiting for hours must not fill the Node's events,
    // also when the gate's answer alternates (SlotsBusy, MinimumGap, SlotsBusy, … while others repair).
    if (told.has(reason)) return;
    told.add(reason);
    this.opts.events.event({
      source: `ladder/${type}`,
      severity: 'Normal',
      reason: 'LadderDeferred',
      message: `${this.opts.settings.dryRun ? 'dry-run: ' : ''}not starting the repair ladder for ${type} yet: ${reason}: ${message}; looking again ${when}`,
    });
  }
}

/** API times have second precision; the agent's own have milliseconds. */
function sameInstant(a: string, b: string): boolean {
  return Math.abs(Date.parse(a) - Date.parse(b)) < 1000;
}
