// Pure decisions, no I/O: what a component's unit state and latest probe say about its health, and
// whether (and when) a repair is allowed by the failure duration, cooldown, back-off and budget.
import type { ProbeResult } from '../types';
import type { UnitState } from '../system/systemd/unit-watcher';
import type { HealthState, Health } from '../types';
export type { HealthState, Health };

export interface RepairPolicy {
  failureDurationMs: number;
  cooldownMs: number;
  backoffMs: number;
  backoffMaxMs: number;
  maxRepairs: number;
  windowMs: number;
}

export interface JudgeInput {
  /** Component name in reasons, e.g. "Containerd", "Kubelet". */
  title: string;
  unitName: string;
  /** The component's config section, for messages ("kubelet"). */
  section: string;
  /** undefined: the unit's state is unknown (D-Bus down) or the component has no unit to watch. */
  unit: UnitState | undefined;
  probe: ProbeResult | undefined;
  cooldownMs: number;
  /** CLOCK_MONOTONIC now, in µs (the clock of InactiveExitTimestampMonotonic). */
  monoNowUs: number;
}

const RESULT_TEXT: Record<string, string> = {
  'exit-code': 'its main process exited with an error',
  signal: 'its main process was killed by a signal',
  'core-dump': 'its main process dumped core',
  watchdog: 'its watchdog expired',
  timeout: 'a start or stop timed out',
  'start-limit-hit': 'it was started too often in a short time (start limit hit)',
  resources: 'systemd could not set up its resources',
  'oom-kill': 'it was killed by the OOM killer',
  protocol: 'it broke the service protocol (e.g. no READY=1)',
};

/** Turns the unit's state and the last probe into a health verdict. */
export function judge(input: JudgeInput): Health {
  const { unit, probe, title, unitName } = input;
  if (unit && unit.loadState === 'loaded') {
    const why = RESULT_TEXT[unit.result] ?? `result ${unit.result}`;
    if (unit.activeState === 'failed' && unit.jobId === 0) {
      return {
        state: 'failing',
        reason: `${title}Failed`,
        message: `${unitName} failed: ${why} (Result=${unit.result}), and systemd will not restart it; see journalctl -u ${unitName}`,
        remedy: 'start',
      };
    }
    if (unit.activeState === 'inactive' && unit.jobId === 0) {
      return {
        state: 'failing',
        reason: `${title}Stopped`,
        message:
          `${unitName} is stopped (not by a crash: Result=${unit.result || 'success'}); the agent does not start a unit ` +
          `stopped on purpose — systemctl start ${unitName}`,
      };
    }
    if (unit.activeState !== 'active') {
      return {
        state: 'settling',
        reason: `${title}Settling`,
        message: `${unitName} is ${unit.activeState} (${unit.subState}); not judged until it is running`,
      };
    }
    const uptimeMs = (input.monoNowUs - unit.inactiveExitMonoUs) / 1000;
    if (probe && !probe.ok && input.cooldownMs > 0 && uptimeMs < input.cooldownMs) {
      return {
        state: 'settling',
        reason: `${title}Starting`,
        message: `${unitName} started ${Math.round(uptimeMs / 1000)}s ago; failures are not judged within its cooldown: ${probe.message}`,
      };
    }
  }
  if (!probe) return { state: 'unknown', reason: `${title}NotProbed`, message: `${title} has not been probed yet` };
  if (!probe.ok && probe.absent && unit?.loadState === 'not-found') {
    return {
      state: 'absent',
      reason: `${title}NotFound`,
      message: `no ${unitName} and nothing answers (${probe.message}); a node without it: set [${input.section}] enabled = false`,
    };
  }
  if (probe.ok) return { state: 'healthy', reason: probe.reason, message: probe.message };
  const canRestart = unit?.loadState === 'loaded';
  return canRestart
    ? { state: 'failing', reason: probe.reason, message: probe.message, remedy: 'restart' }
    : { state: 'failing', reason: probe.reason, message: `${probe.message} (no loaded ${unitName} to restart)` };
}

export interface Budget {
  /** ms since the epoch: the earliest time the next repair may happen (back-off or budget). */
  allowedAt: number;
  /** The window already holds max_repairs repairs. */
  exhausted: boolean;
  /** Repairs in the window. */
  used: number;
}

/** Back-off (doubling per repair in the window, capped) and the budget of repairs per window. */
export function budget(policy: RepairPolicy, actionTimes: readonly number[], now: number): Budget {
  const inWindow = actionTimes.filter((t) => t > now - policy.windowMs).sort((a, b) => a - b);
  const used = inWindow.length;
  if (used >= policy.maxRepairs) {
    // Allowed again when enough of them have left the window.
    return { allowedAt: (inWindow[used - policy.maxRepairs] as number) + policy.windowMs, exhausted: true, used };
  }
  if (used === 0) return { allowedAt: -Infinity, exhausted: false, used };
  const wait = Math.min(policy.backoffMaxMs, policy.backoffMs * 2 ** (used - 1));
  return { allowedAt: (inWindow[used - 1] as number) + wait, exhausted: false, used };
}

export type RepairDecision =
  /** `until`: when waiting ends (failure duration reached, back-off over), to judge again then. */
  | { act: false; why: string; until?: number }
  | { act: true; action: 'restart' | 'start' }
  | { act: false; why: string; exhausted: Budget };

/** Whether to act now on a failing component. */
export function decide(input: {
  health: Health;
  failingSince: number | undefined;
  now: number;
  policy: RepairPolicy;
  budget: Budget;
}): RepairDecision {
  const { health, failingSince, now, policy } = input;
  if (health.state !== 'failing' || !health.remedy) return { act: false, why: 'nothing to repair' };
  if (input.budget.exhausted) return { act: false, why: 'repair budget exhausted', exhausted: input.budget };
  // A failed unit that nothing restarts is started at once; a running one must fail for a while first.
  if (health.remedy === 'restart') {
    const failingFor = failingSince === undefined ? 0 : now - failingSince;
    if (failingFor < policy.failureDurationMs) {
      return {
        act: false,
        why: `failing for ${Math.round(failingFor / 1000)}s of ${Math.round(policy.failureDurationMs / 1000)}s before a restart`,
        until: now - failingFor + policy.failureDurationMs,
      };
    }
  }
  if (now < input.budget.allowedAt) {
    return { act: false, why: `backing off until ${new Date(input.budget.allowedAt).toISOString()}`, until: input.budget.allowedAt };
  }
  return { act: true, action: health.remedy };
}
