// One walk of the ladder for one condition, while holding a slot of the fleet's gate: cordon → drain →
// reboot → (after the boot) wait for the Node Ready and the condition False → uncordon → give the slot
// back. Every step is written to the ledger before it acts and after, and is an Event on the Node. A
// failure before the reboot undoes the cordon (unless configured otherwise) and gives the slot back; a
// reboot that did not help gives it back with rebootFailed, which starts the node's lockout.
import type { LadderStep } from '../../config/sections/ladder';
import { formatDuration } from '../../config/values';
import { messageOf } from '../../errors';
import type { Logger, EventReport, NodeCondition, Slot } from '../../types';
import { cordon, uncordon, CORDONED_BY_AGENT, type CordonResult } from './cordon';
import { drain, drainPlan, podName } from './drain';
import type { LadderLedger, RunEntry, RunResult, StepName, StepResult } from './ledger';
import type { Rebooter } from './login1';
import type { NodeApi } from './node-api';
import type { LadderSettings } from './settings';
import { sleep } from './sleep';
import { background } from '../../system/background';

/** Where the ladder's events go: the Node's Events (through the agent's event writer), metrics, the log. */
export interface LadderEvents {
  event(e: EventReport): void;
  /** Resolves once the events given so far are sent, or after `timeoutMs`; called before the reboot. */
  flush?(timeoutMs: number): Promise<void>;
}

/** What the agent gives the ladder for its runs. */
export interface RunDeps {
  settings: LadderSettings;
  node: NodeApi;
  rebooter: Rebooter;
  ledger: LadderLedger;
  events: LadderEvents;
  /** The agent's current view of a condition it owns (the condition table). */
  condition(type: string): NodeCondition | undefined;
  log: Logger;
  /** This boot's ID: a reboot step recorded under another boot has happened. */
  bootId: string;
}

export interface RunContext extends RunDeps {
  /** How often the Node is read while waiting for it to be healthy. */
  pollMs: number;
  /** Aborted when the agent stops: a run then leaves its ledger entry open for the next start. */
  stopping: AbortSignal;
  now(): number;
}

/** How a walk ended; `stopped`: the agent is stopping (or the machine going down) and the run stays open. */
export type WalkResult = RunResult | 'stopped';

interface Outcome {
  result: StepResult;
  detail: string;
}

const FLUSH_BEFORE_REBOOT_MS = 5000;

export class LadderRun {
  /** The step being taken, for status. */
  current: { step: StepName; since: string } | undefined;
  private readonly abort = new AbortController();
  private readonly onStopping = () => this.abort.abort('the agent is stopping');
  private slotLost = false;
  private cordonResult: CordonResult | undefined;

  constructor(
    private readonly ctx: RunContext,
    readonly run: RunEntry,
    private readonly slot: Slot | undefined,
  ) {
    if (ctx.stopping.aborted) this.onStopping();
    else ctx.stopping.addEventListener('abort', this.onStopping, { once: true });
    void background('watching the repair slot', async () => {
      if (!slot) return;
      await slot.lost;
      this.slotLost = true;
      this.abort.abort(`the slot ${slot.lease} was lost (not renewed before its TTL ran out)`);
    });
  }

  private get dry(): boolean {
    return this.run.dryRun;
  }

  private has(step: LadderStep): boolean {
    return this.run.steps.includes(step);
  }

  /** A new run, from the cordon on. */
  async walk(): Promise<WalkResult> {
    return this.walkFrom(false);
  }

  /**
   * A run a previous start of the agent left open before its reboot, its slot taken back: steps it
   * finished are not taken again, the one it was in is taken again (each is safe to repeat) within the
   * deadline it had, and the run goes on from there.
   */
  async resume(): Promise<WalkResult> {
    return this.walkFrom(true);
  }

  private async walkFrom(resumed: boolean): Promise<WalkResult> {
    try {
      return await this.walkSteps(resumed);
    } catch (err) {
      return this.abandon(err);
    } finally {
      this.ctx.stopping.removeEventListener('abort', this.onStopping);
    }
  }

  /** The run whose reboot this start of the agent follows: verify, uncordon, release. */
  async afterBoot(rebootAt: number): Promise<WalkResult> {
    try {
      return await this.finish(rebootAt);
    } catch (err) {
      return this.abandon(err);
    } finally {
      this.ctx.stopping.removeEventListener('abort', this.onStopping);
    }
  }

  /** A run a previous start of the agent left open before its reboot that cannot go on (`why`): undo it. */
  async undo(why: string): Promise<void> {
    const during = this.stoppedDuring();
    try {
      const undone = await this.unwind(false);
      this.end('interrupted', `the agent stopped ${during}; ${why}; ${undone}`);
      this.emit('LadderFailed', 'Warning', `the repair ladder for ${this.run.condition} was interrupted ${during} (the agent stopped; ${why}); ${undone}`);
    } catch (err) {
      this.ctx.log.error(`ladder: cannot undo the interrupted run for ${this.run.condition}: ${messageOf(err)}`, { condition: this.run.condition, action: 'ladder' });
    } finally {
      this.ctx.stopping.removeEventListener('abort', this.onStopping);
    }
  }

  private stoppedDuring(): string {
    const last = this.run.done[this.run.done.length - 1];
    return last ? `during the ${last.step} step` : 'before its first step';
  }

  /** The outcome recorded for `name` in this run (by a previous start of the agent, when resuming). */
  private recorded(name: StepName): Outcome | undefined {
    return this.ctx.ledger.step(this.run.id, name)?.outcome;
  }

  private async walkSteps(resumed: boolean): Promise<WalkResult> {
    const r = this.run;
    const s = this.ctx.settings;
    const ladder = [...r.steps, 'uncordon'].join(' → ');
    if (resumed) {
      this.emit('LadderResumed', 'Normal', `the agent stopped ${this.stoppedDuring()} and started again: taking the repair ladder for ${r.condition} up there, holding ${r.lease}`);
    } else {
      this.emit('LadderStarted', 'Normal', `${r.condition} has been True since ${r.since}: ${this.dry ? 'would walk' : 'walking'} the repair ladder ${ladder} holding ${r.lease}`);
    }

    const mark = `${r.condition}, run ${r.id}, ${new Date(this.ctx.now()).toISOString()}`;
    let cordoned = this.recorded('cordon');
    if (cordoned?.result === 'done') {
      // Cordoned before the restart: whose cordon it is decides the uncordon at the end (a read, and a
      // patch only if someone lifted the cordon meanwhile).
      this.cordonResult = await cordon(this.ctx.node, mark);
    } else if (cordoned?.result !== 'skipped') {
      cordoned = await this.step('cordon', async () => {
        if (this.dry) return { result: 'skipped', detail: `would cordon the node (spec.unschedulable=true, annotation ${CORDONED_BY_AGENT})` };
        this.cordonResult = await cordon(this.ctx.node, mark);
        if (this.cordonResult === 'already-by-operator') return { result: 'done', detail: 'the node was cordoned already, not by this agent: it stays cordoned after the ladder' };
        return { result: 'done', detail: this.cordonResult === 'cordoned' ? 'cordoned the node' : "the agent's own cordon was in place" };
      });
      this.emit(cordoned.result === 'failed' ? 'LadderFailed' : 'LadderCordoned', cordoned.result === 'failed' ? 'Warning' : 'Normal', cordoned.detail);
    }
    if (cordoned.result === 'failed') return this.fail(`cordon failed: ${cordoned.detail}`);

    const drainedBefore = this.recorded('drain');
    if (this.has('drain') && drainedBefore?.result === 'failed') return this.fail(`drain failed: ${drainedBefore.detail}`);
    if (this.has('drain') && drainedBefore === undefined) {
      // A drain taken up again keeps the deadline of the first attempt.
      const begun = r.done.find((x) => x.step === 'drain');
      const timeoutMs = begun ? Math.max(0, s.drainTimeoutMs - (this.ctx.now() - Date.parse(begun.at))) : s.drainTimeoutMs;
      const drained = await this.step('drain', async () => {
        if (this.dry) {
          const plan = drainPlan(await this.ctx.node.listPods());
          const left = plan.skip.map((x) => `${podName(x.pod)} (${x.why})`);
          return {
            result: 'skipped',
            detail: `would evict ${plan.evict.length} pod(s)${plan.evict.length > 0 ? `: ${plan.evict.map(podName).join(', ')}` : ''}${left.length > 0 ? `; would leave ${left.join(', ')}` : ''} (timeout ${formatDuration(s.drainTimeoutMs)})`,
          };
        }
        const d = await drain(this.ctx.node, { timeoutMs, signal: this.abort.signal, pollMs: Math.min(this.ctx.pollMs, 2000) });
        return { result: d.ok ? 'done' : 'failed', detail: `${d.detail} (${(d.durationMs / 1000).toFixed(1)}s)` };
      }, { stoppable: true });
      if (this.ctx.stopping.aborted) return 'stopped';
      if (drained.result === 'failed') {
        this.emit('LadderDrainFailed', 'Warning', `drain failed: ${drained.detail}`);
        return this.fail(`drain failed: ${drained.detail}`);
      }
      this.emit('LadderDrained', 'Normal', drained.detail);
    }

    const rebootedBefore = this.recorded('reboot');
    if (this.has('reboot') && rebootedBefore?.result === 'failed') return this.fail(rebootedBefore.detail);
    if (this.has('reboot') && rebootedBefore === undefined) {
      if (this.slotLost) return this.fail(`not rebooting: ${String(this.abort.signal.reason)}`);
      const still = this.ctx.condition(r.condition);
      if (!this.dry && still?.status !== 'True') {
        this.skipped('reboot', `not rebooting: ${r.condition} is ${still?.status ?? 'no longer reported'} now`);
      } else if (this.dry) {
        const can = await this.ctx.rebooter.canReboot().then((a) => `logind CanReboot: ${a}`, (err: unknown) => `logind CanReboot failed: ${messageOf(err)}`);
        this.skipped('reboot', `would reboot the node through logind (${can})`);
        this.emit('LadderRebooting', 'Normal', `would reboot the node through logind (${can})`);
      } else {
        const outcome = await this.reboot();
        if (outcome === 'stopped') return 'stopped';
        this.emit('LadderRebootFailed', 'Warning', outcome.detail);
        return this.fail(outcome.detail);
      }
    }
    return this.finish(undefined);
  }

  /**
   * The intent is on disk before logind is asked; after that the machine goes down and the next start
   * finds the run open. Returns only when the reboot failed (or the agent is being stopped).
   */
  private async reboot(): Promise<Outcome | 'stopped'> {
    const started = this.ctx.now();
    // Taken up in the boot whose reboot was asked for (the agent restarted before the machine went down):
    // the intent on disk stands, logind is asked again (a reboot under way is not doubled).
    if (this.ctx.ledger.step(this.run.id, 'reboot') === undefined) this.ctx.ledger.intent(this.run.id, 'reboot', this.ctx.bootId);
    this.current = { step: 'reboot', since: new Date(started).toISOString() };
    this.emit('LadderRebooting', 'Normal', `rebooting the node through logind to repair ${this.run.condition}`);
    await this.ctx.events.flush?.(FLUSH_BEFORE_REBOOT_MS);
    let failure: Outcome;
    try {
      // Shutdown may stop the system bus before logind's answer arrives, and a pending D-Bus call is not
      // failed when its connection ends: a stop must not wait for it (the intent stays open, as on a crash).
      const stopped = new Promise<void>((resolve) => {
        if (this.ctx.stopping.aborted) resolve();
        else this.ctx.stopping.addEventListener('abort', () => resolve(), { once: true });
      });
      await Promise.race([this.ctx.rebooter.reboot(), stopped]);
      if (this.ctx.stopping.aborted) return 'stopped';
      // The machine is going down; systemd stops the agent on the way.
      await sleep(this.ctx.settings.rebootTimeoutMs, this.ctx.stopping);
      if (this.ctx.stopping.aborted) return 'stopped';
      failure = { result: 'failed', detail: `logind accepted the reboot but the machine is still up after ${formatDuration(this.ctx.settings.rebootTimeoutMs)}` };
    } catch (err) {
      failure = { result: 'failed', detail: `the reboot was refused: ${messageOf(err)}` };
    }
    this.ctx.ledger.outcome(this.run.id, 'reboot', { ...failure, durationMs: this.ctx.now() - started });
    return failure;
  }

  /** Waits for the node to be healthy, then uncordons and gives the slot back. */
  private async finish(rebootAt: number | undefined): Promise<WalkResult> {
    const r = this.run;
    const s = this.ctx.settings;
    if (this.dry) {
      this.skipped('verify', `would wait up to ${formatDuration(s.afterBootTimeoutMs)} for the Node Ready and ${r.condition} False`);
      this.skipped('uncordon', 'would uncordon the node if this agent cordoned it');
      await this.release(false, false);
      this.end('dry-run', 'nothing was done');
      this.emit('LadderRepaired', 'Normal', `would uncordon the node once it is Ready and ${r.condition} is False; the ladder was only walked, nothing was done`);
      return 'dry-run';
    }
    // An agent restarted while it waited keeps the deadline it had.
    const previous = this.ctx.ledger.step(r.id, 'verify');
    const verifyFrom = previous && !previous.outcome ? Date.parse(previous.at) : this.ctx.now();
    if (!previous || previous.outcome) this.ctx.ledger.intent(r.id, 'verify', this.ctx.bootId, new Date(verifyFrom));
    this.current = { step: 'verify', since: new Date(verifyFrom).toISOString() };
    const verified = await this.verify(verifyFrom, rebootAt);
    if (verified === 'stopped') return 'stopped';
    this.ctx.ledger.outcome(r.id, 'verify', { ...verified, durationMs: this.ctx.now() - verifyFrom });
    if (verified.result === 'failed') {
      this.emit('LadderFailed', 'Warning', `${rebootAt !== undefined ? 'the reboot did not help: ' : ''}${verified.detail}`);
      return this.fail(verified.detail, rebootAt !== undefined);
    }

    const un = await this.uncordonStep();
    this.emit('LadderUncordoned', 'Normal', un.detail);
    await this.release(true, false);
    this.end('repaired', `${verified.detail}; ${un.detail}`);
    this.emit('LadderRepaired', 'Normal', `${r.condition} is repaired: ${verified.detail}`);
    return 'repaired';
  }

  private async verify(from: number, rebootAt: number | undefined): Promise<Outcome | 'stopped'> {
    const type = this.run.condition;
    const deadline = from + this.ctx.settings.afterBootTimeoutMs;
    let ready = 'not read yet';
    for (;;) {
      let readyOk = false;
      try {
        const node = await this.ctx.node.getNode();
        const c = node.status?.conditions?.find((x) => x.type === 'Ready');
        // After a reboot, a Ready written before it says nothing: the kubelet must have reported since.
        const fresh = rebootAt === undefined || (c?.lastHeartbeatTime !== undefined && Date.parse(c.lastHeartbeatTime) >= rebootAt - 1000);
        readyOk = c?.status === 'True' && fresh;
        ready = c ? `${c.status}${fresh ? '' : ' (not reported since the reboot)'}` : 'not reported';
      } catch (err) {
        ready = `unknown (${messageOf(err)})`;
      }
      const cond = this.ctx.condition(type);
      const clear = cond?.status === 'False';
      const waited = `${Math.round((this.ctx.now() - from) / 1000)}s`;
      if (readyOk && clear) return { result: 'done', detail: `the Node is Ready and ${type} is False after ${waited}` };
      if (this.ctx.now() >= deadline) {
        const state = cond ? `${cond.status} (${cond.reason})` : 'not reported';
        return { result: 'failed', detail: `after ${waited} the Node is Ready: ${ready}; ${type}: ${state}` };
      }
      await sleep(Math.min(this.ctx.pollMs, deadline - this.ctx.now()), this.ctx.stopping);
      if (this.ctx.stopping.aborted) return 'stopped';
    }
  }

  /** After a failure: uncordon (if configured and the cordon is the agent's), give the slot back, end the run. */
  private async fail(detail: string, rebootFailed = false): Promise<WalkResult> {
    const undone = await this.unwind(rebootFailed);
    this.end(rebootFailed ? 'reboot-failed' : 'failed', `${detail}; ${undone}`);
    this.emit('LadderFailed', 'Warning', `the repair ladder for ${this.run.condition} failed: ${detail}; ${undone}`);
    return rebootFailed ? 'reboot-failed' : 'failed';
  }

  private async unwind(rebootFailed: boolean): Promise<string> {
    let cordonNote: string;
    if (this.dry || this.cordonResult === 'already-by-operator') cordonNote = 'the node was not cordoned by this agent';
    else if (!this.ctx.settings.uncordonOnFailure) cordonNote = 'the node stays cordoned (uncordon_on_failure = false)';
    else cordonNote = (await this.uncordonStep()).detail;
    await this.release(false, rebootFailed);
    const slot = this.slot ? (this.slotLost ? 'the slot was lost' : `gave ${this.slot.lease} back${rebootFailed ? ' with rebootFailed' : ''}`) : 'no slot was held';
    return `${cordonNote}; ${slot}`;
  }

  private async uncordonStep(): Promise<Outcome> {
    return this.step('uncordon', async () => {
      const u = await uncordon(this.ctx.node);
      const detail =
        u === 'uncordoned'
          ? 'uncordoned the node'
          : u === 'not-ours'
            ? 'left the node cordoned: it was cordoned by someone else'
            : 'the node was not cordoned any more (someone uncordoned it)';
      return { result: 'done', detail };
    });
  }

  private async release(repaired: boolean, rebootFailed: boolean): Promise<void> {
    const slot = this.slot;
    if (!slot || this.slotLost) return;
    await this.step('release', async () => {
      await slot.release({ repaired, ...(rebootFailed ? { rebootFailed } : {}) });
      return { result: 'done', detail: `gave ${slot.lease} back (repaired: ${repaired}${rebootFailed ? ', rebootFailed' : ''})` };
    });
  }

  /** Something unexpected (the ledger cannot be written): undo what can be undone without it, say so. */
  private async abandon(err: unknown): Promise<WalkResult> {
    const why = messageOf(err);
    this.ctx.log.error(`ladder: the run for ${this.run.condition} stopped: ${why}`, { condition: this.run.condition, action: 'ladder' });
    const undo: string[] = [];
    if (!this.dry && this.ctx.settings.uncordonOnFailure && this.cordonResult !== 'already-by-operator') {
      await uncordon(this.ctx.node).then((u) => undo.push(`uncordon: ${u}`), (e: unknown) => undo.push(`uncordon failed: ${messageOf(e)}`));
    }
    if (this.slot && !this.slotLost) {
      await this.slot.release({ repaired: false }).then(() => undo.push(`gave ${this.slot?.lease} back`), (e: unknown) => undo.push(`release failed: ${messageOf(e)}`));
    }
    this.emit('LadderFailed', 'Warning', `the repair ladder for ${this.run.condition} stopped: ${why}${undo.length > 0 ? `; ${undo.join('; ')}` : ''}`);
    return 'failed';
  }

  /** `stoppable`: the step stops when the agent does (the drain). */
  private async step(name: StepName, act: () => Promise<Outcome>, opts: { stoppable?: boolean } = {}): Promise<Outcome> {
    const started = this.ctx.now();
    this.ctx.ledger.intent(this.run.id, name, this.ctx.bootId);
    this.current = { step: name, since: new Date(started).toISOString() };
    let out: Outcome;
    try {
      out = await act();
    } catch (err) {
      out = { result: 'failed', detail: messageOf(err) };
    }
    // Cut short because the agent stops: no outcome, so the intent stays open as after a crash and the
    // next start takes the step again instead of reading a failure.
    if (opts.stoppable && out.result === 'failed' && this.ctx.stopping.aborted) return out;
    this.ctx.ledger.outcome(this.run.id, name, { ...out, durationMs: this.ctx.now() - started });
    return out;
  }

  private skipped(name: StepName, detail: string): void {
    this.ctx.ledger.intent(this.run.id, name, this.ctx.bootId);
    this.ctx.ledger.outcome(this.run.id, name, { result: 'skipped', detail, durationMs: 0 });
  }

  private end(result: RunResult, detail: string): void {
    this.current = undefined;
    this.ctx.ledger.end(this.run.id, result, detail);
  }

  private emit(reason: string, severity: 'Normal' | 'Warning', message: string): void {
    this.ctx.events.event({ source: `ladder/${this.run.condition}`, severity, reason, message: this.dry ? `dry-run: ${message}` : message });
  }
}
