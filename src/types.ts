// The contract where sources, engine and outputs meet. Plain data only.

/** The outcome of one check on one subject. `problem` means the node is unhealthy in this respect. */
export type CheckStatus = 'ok' | 'warning' | 'problem' | 'unknown';

export interface Finding {
  status: CheckStatus;
  /** CamelCase machine reason, like a NodeCondition reason (e.g. "DiskFull"). */
  reason: string;
  /** A sentence a human can act on. */
  message: string;
  /** What the finding is about (a mount point, a unit, a file); empty when the check has one subject. */
  subject?: string;
}

export interface CheckResult extends Finding {
  component: string;
  check: string;
  severity: Severity;
  durationMs: number;
}

/** Reasons of the one finding that stands for a whole check run whose outcome is not known: it threw,
 * passed its deadline, or an earlier run is still hung. */
export const UNDECIDED_REASONS: ReadonlySet<string> = new Set(['CheckFailed', 'CheckTimedOut', 'CheckStillRunning']);

export type Severity = 'info' | 'warning' | 'critical';

export function severityOf(status: CheckStatus): Severity {
  switch (status) {
    case 'ok':
      return 'info';
    case 'warning':
    case 'unknown':
      return 'warning';
    case 'problem':
      return 'critical';
  }
}

// ── Problems: what sources report about the node, and what the engine turns into NodeConditions/Events.

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** One source's current opinion on a node condition (e.g. the journal rules on KernelDeadlock). */
export interface ConditionReport {
  /** Who reports it, e.g. "journal/kernel", "plugin/ntp", "repair/containerd". One condition type may have several. */
  source: string;
  /** The NodeCondition type, e.g. "KernelDeadlock". */
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** Something that happened once, to become a Kubernetes Event on the Node. */
export interface EventReport {
  source: string;
  severity: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** How many occurrences this report stands for (an aggregated flood reports once with its count). */
  count?: number;
}

/** A condition as the agent wants it on the Node. */
export interface NodeCondition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  /** When status last changed (ISO 8601); kept across restarts by adopting the Node's current value. */
  lastTransitionTime: string;
}

/** Where sources send what they find; implemented by the engine. */
export interface ProblemSink {
  condition(report: ConditionReport): void;
  event(report: EventReport): void;
  /** Saves the conditions changed by the reports so far, if any wait; false when that failed. */
  settle?(): boolean;
}
