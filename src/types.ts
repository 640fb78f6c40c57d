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

// ── Runtime probes: one look at a component (containerd, the kubelet, kube-proxy) that the repair
// policy judges. Made in sources/runtime/, judged in repair/.

export interface ProbeResult {
  ok: boolean;
  /** CamelCase reason of the failure (or of success). */
  reason: string;
  message: string;
  /** Nothing answers at the address at all (connection refused, socket missing): maybe not installed. */
  absent?: boolean;
  /** ms since the epoch */
  at: number;
}

export interface Probe {
  result: ProbeResult;
  findings: Finding[];
}

/** One probe per runtime component; made by sources/runtime/, handed to repair/ by whoever wires them. */
export interface RuntimeProbes {
  containerd(): Promise<Probe>;
  kubelet(): Promise<Probe>;
  kubeProxy(): Promise<Probe>;
  /** Closes what the probes keep open (the containerd connection). */
  close(): void;
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

/**
 * A condition type a source owns, declared to the condition table before its sources report. One owner
 * per type: `owner` names the settings that configure it (e.g. "journal", "[disk]", "repair").
 */
export interface ConditionDeclaration {
  type: string;
  /** Module that owns the type (e.g. "journal", "plugins", "repair"); a second owner is refused. */
  owner: string;
  /** Reason and message while the condition is False. */
  reason: string;
  message: string;
  setAfter?: number;
  clearAfter?: number;
  /** A reboot resets the condition to False (e.g. a kernel deadlock ends with the boot). */
  clearOnReboot?: boolean;
  /**
   * The type may already be owned by another module, which then reports it alone (the repair module's
   * Frequent…Restart types beside the journal rules of that name); never a conflict.
   */
  shared?: boolean;
}

// ── Checks: what sources run on an interval and the engine schedules.

export interface Check {
  readonly component: string;
  readonly name: string;
  /** How long a run may take before it counts as hung (default DEFAULT_CHECK_DEADLINE_MS). */
  readonly deadlineMs?: number;
  run(): Promise<Finding[]>;
}

export const DEFAULT_CHECK_DEADLINE_MS = 20_000;

/** The NodeCondition a check's problems set, as its section configures it. */
export interface CheckCondition {
  type: string;
  setAfter: number;
  clearAfter: number;
  /** Reason and message while no problem is found. */
  reason: string;
  message: string;
  /** Journal rules may own the same type (the same fact seen in the log): then both feed it. */
  shared: boolean;
}

export interface ScheduledCheck {
  check: Check;
  intervalMs: number;
  /** The check's settings as JSON: a reload keeps a check (and its baselines) whose settings did not change. */
  settings: string;
  /** The config section, e.g. "disk". */
  section: string;
  condition?: CheckCondition;
}

// ── The log every layer writes to; implemented in outputs/log.ts.

export type LogLevel = 'error' | 'warning' | 'info' | 'debug';

/** Structured fields an entry may carry; each becomes NODE_HEALTH_<KEY> in the journal. */
export interface LogFields {
  check?: string;
  condition?: string;
  action?: string;
  unit?: string;
  file?: string;
  [key: string]: string | number | boolean | undefined;
}

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warning(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  setLevel(level: LogLevel): void;
  close(): void;
}

// ── The repair gate: the disruptive-repair ladder may only cordon, drain or reboot while it holds a
// slot, and the gate (cluster-wide coordination, repair/fleet/) decides whether a slot may be had now.

/** Why the gate said no; shown in status and in the Event on the Node. */
export interface Refusal {
  granted: false;
  /** CamelCase, e.g. "SlotsBusy", "MinimumGap", "NewNodeGrace", "RebootLockout", "UnhealthyBreaker", "CordonedNodes". */
  reason: string;
  message: string;
  /** When asking again could succeed (epoch ms); undefined when only a change elsewhere can help. */
  retryAt?: number;
}

/** A held slot. It is renewed in the background until released or lost. */
export interface Slot {
  granted: true;
  /** The Lease that holds it, for events and the ledger. */
  lease: string;
  /** Resolves if the slot could not be renewed before its TTL ran out (the ladder must stop disrupting). */
  readonly lost: Promise<void>;
  /** Gives the slot back; `rebootFailed` starts this node's lockout (the reboot did not help). */
  release(outcome: { repaired: boolean; rebootFailed?: boolean }): Promise<void>;
}

export interface RepairGate {
  /** Asks for a slot for this node to repair `condition`. Never throws for a refusal; throws on API errors. */
  acquire(condition: string): Promise<Slot | Refusal>;
  /**
   * After a restart (e.g. the reboot step), takes back a slot this node still holds, if any, so the
   * ladder can finish without asking again.
   */
  resume(): Promise<Slot | undefined>;
}
