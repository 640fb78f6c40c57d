// What a repair does to a unit, over D-Bus only (no systemctl, no signals sent by hand): queue a job and
// wait for its JobRemoved. A restart whose job hangs (a main process that ignores SIGTERM, a stop that
// never finishes) is escalated: SIGKILL to the main process only — containerd's shims and the
// containers they hold live in the same cgroup and must survive — then a start if the job did not
// finish. `systemctl kill` alone, as older monitors do, leaves a Restart=on-failure unit dead.
import { type SystemdBus, SystemdCallError } from '../system/systemd/systemd-bus';
import type { UnitState } from '../system/systemd/unit-watcher';

const SIGKILL = 9;

export interface ActionResult {
  result: 'done' | 'escalated' | 'failed';
  /** What happened, step by step, for the ledger, the log and the event. */
  detail: string;
}

export interface ActionOptions {
  jobTimeoutMs: number;
  /** The unit's current state (kept fresh by the watcher). */
  current: () => UnitState | undefined;
  /** Reads the unit's state again, for the final verdict. */
  refresh: () => Promise<void>;
}

/** Restarts (or starts, for a failed unit) `unit` and waits until systemd says the job finished. */
export async function restartOrStart(
  bus: SystemdBus,
  unit: string,
  action: 'restart' | 'start',
  opts: ActionOptions,
): Promise<ActionResult> {
  const steps: string[] = [];
  const seconds = `${Math.round(opts.jobTimeoutMs / 1000)}s`;
  try {
    const before = opts.current();
    if (before?.activeState === 'failed') {
      // Also clears a start limit, which would refuse the start otherwise.
      await bus.resetFailedUnit(unit);
      steps.push('ResetFailedUnit');
    }
    const method = action === 'restart' ? 'RestartUnit' : 'StartUnit';
    let job = await bus.enqueue(method, unit);
    steps.push(`${method} queued ${jobName(job)}`);
    let result = await bus.waitForJob(job, opts.jobTimeoutMs);
    let escalated = false;
    if (result === undefined) {
      escalated = true;
      steps.push(`${jobName(job)} still running after ${seconds}`);
      await bus.killUnit(unit, 'main', SIGKILL);
      steps.push('KillUnit main SIGKILL');
      result = await bus.waitForJob(job, opts.jobTimeoutMs);
      steps.push(`${jobName(job)} ${result ?? `still running after another ${seconds}`}`);
      if (result !== 'done') {
        job = await bus.enqueue('StartUnit', unit);
        steps.push(`StartUnit queued ${jobName(job)}`);
        result = await bus.waitForJob(job, opts.jobTimeoutMs);
      }
    }
    await opts.refresh();
    let after = opts.current();
    if (result === 'failed' && after?.result === 'start-limit-hit') {
      await bus.resetFailedUnit(unit);
      job = await bus.enqueue('StartUnit', unit);
      steps.push(`start limit hit: ResetFailedUnit, StartUnit queued ${jobName(job)}`);
      result = await bus.waitForJob(job, opts.jobTimeoutMs);
      await opts.refresh();
      after = opts.current();
    }
    steps.push(`${jobName(job)} ${result ?? 'did not finish'}`);
    const running = after?.activeState === 'active';
    const ok = (result === 'done' || result === 'gone') && running;
    steps.push(after ? `unit ${after.activeState} (${after.subState}), main PID ${after.mainPid}` : 'unit state unknown');
    return { result: ok ? (escalated ? 'escalated' : 'done') : 'failed', detail: steps.join('; ') };
  } catch (err) {
    steps.push(err instanceof SystemdCallError ? err.message : `unexpected error: ${String(err)}`);
    return { result: 'failed', detail: steps.join('; ') };
  }
}

/**
 * Stops a legacy monitor and masks it, so it can never start again. A unit file that lives in
 * /etc/systemd/system cannot be masked (the mask would be a link at that very path): it is stopped
 * and disabled instead, and the detail says to remove the file.
 */
export async function retireLegacyUnit(bus: SystemdBus, unit: string, jobTimeoutMs: number): Promise<ActionResult> {
  const steps: string[] = [];
  try {
    const job = await bus.enqueue('StopUnit', unit);
    const result = await bus.waitForJob(job, jobTimeoutMs);
    steps.push(`StopUnit ${jobName(job)} ${result ?? `still running after ${Math.round(jobTimeoutMs / 1000)}s`}`);
    try {
      await bus.maskUnitFiles([unit]);
      steps.push('MaskUnitFiles, Reload');
    } catch (err) {
      if (!(err instanceof SystemdCallError) || !/already exists/.test(err.message)) throw err;
      await bus.disableUnitFiles([unit]);
      steps.push(
        `cannot mask: its unit file is in /etc/systemd/system; DisableUnitFiles, Reload — remove /etc/systemd/system/${unit} to finish`,
      );
    }
    return { result: result === 'done' || result === 'gone' ? 'done' : 'failed', detail: steps.join('; ') };
  } catch (err) {
    steps.push(err instanceof SystemdCallError ? err.message : `unexpected error: ${String(err)}`);
    return { result: 'failed', detail: steps.join('; ') };
  }
}

function jobName(path: string): string {
  return `job ${path.slice(path.lastIndexOf('/') + 1)}`;
}
