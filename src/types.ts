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

// ── Sources: every kind of source (host probes, journal rules, plugins, runtime health) is one SourceKind,
// listed once in the registry (src/sources.ts). The plan asks each kind for its part of the config; the
// agent starts, stops and shows what the kinds planned without knowing any of them.

/** One kind of source. `Config` is the loaded configuration (config/load.ts; the contract imports no layer). */
export interface SourceKind<Config> {
  /** As the log names it ("journal", "plugins", "probes", "runtime"). */
  readonly name: string;
  /** Read at start only: a reload keeps the running source and its declarations (a restart applies changes). */
  readonly startOnly?: boolean;
  /**
   * Reads and checks this kind's part of the config; opens and starts nothing (`config check` and
   * `diagnose` plan too). Undefined when the config turns it off. Throws AgentError naming the file,
   * line or section.
   */
  plan(config: Config, ctx: SourcePlanContext): PlannedSource | undefined;
}

export interface SourcePlanContext {
  log: Logger;
  sink: ProblemSink;
}

/** A source built from the config, not started. */
export interface PlannedSource {
  /** The condition types it reports (the plan gives each one owner; shared ones join an owner). */
  readonly declarations: readonly ConditionDeclaration[];
  /** Checks the engine runs on their intervals (host probes): findings to the check table, conditions to the engine. */
  readonly checks?: readonly ScheduledCheck[];
  /** What `diagnose` runs once for this source. */
  diagnose?(): Check[];
  /**
   * Opens what it keeps (the repair ledger) and reports nothing yet: a source that cannot open fails the
   * start before the saved conditions are touched. Throws what the operator must fix.
   */
  open(env: SourceEnv): Promise<RunningSource>;
}

/** What a source is given when it starts. */
export interface SourceEnv {
  sink: ProblemSink;
  log: Logger;
  /** The state directory (journal cursors, the repair ledger). */
  stateDir: string;
  /** Where a writer to the state directory reports failed and recovered writes, by component ("journal-cursor"). */
  health(component: string): WriteHealth;
  /** Told of each repair action once its result is known (metrics). */
  repaired(unit: string, action: string, result: string): void;
}

export interface RunningSource {
  /** Starts reporting to env.sink; called once its declarations are in the condition table and the saved state is restored. */
  start(): void;
  stop(): Promise<void> | void;
  /** Its part of the status snapshot. */
  status(): Partial<SourcesStatus>;
}

/** The parts of the status snapshot sources fill; a source that is off leaves its part empty. */
export interface SourcesStatus {
  journal: JournalSourceStatus[];
  plugins: PluginRunStatus[];
  runtime: RuntimeHealthStatus | null;
}

/** One writer's handle on the degraded state (system/degraded.ts). */
export interface WriteHealth {
  failed(err: unknown): void;
  recovered(): void;
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

// ── The status snapshot: what `GET /status` on the status socket returns and `node-health-agent status`
// renders. Each part is what one module's status() returns; they are declared here so the CLI, the
// metrics and the agent read them without importing the layers that make them.

/** What the daemon shows; the JSON of `status --json`. */
export interface AgentStatus extends SourcesStatus {
  version: string;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  config: { generation: number; files: string[]; lastReload: ReloadOutcome | null };
  checks: RecordedResult[];
  problems: RecordedResult[];
  conditions: NodeCondition[];
  recentEvents: RecordedEvent[];
  degraded: Degradation[];
  kubernetes: ReporterStatus | null;
  coordination: CoordinationStatus | null;
  ladder: LadderStatus | null;
}

export interface ReloadOutcome {
  at: string;
  ok: boolean;
  error?: string;
}

export interface RecordedResult extends CheckResult {
  /** When the check last produced this result (ISO 8601). */
  at: string;
}

export type RecordedEvent = EventReport & { at: string };

/** A writer to the state directory in the degraded state (system/degraded.ts). */
export interface Degradation {
  /** What cannot write: "journal-cursor", "conditions", "repair-ledger", "ladder-ledger". */
  component: string;
  /** The errno of the failure (ENOSPC, EROFS, EIO, …), or "ERROR" when it has none. */
  reason: string;
  message: string;
  /** ISO 8601: when the component became degraded. */
  since: string;
}

/** One journal reader (sources/journal/reader.ts). */
export interface JournalReaderState {
  /** Started, not stopped, and the journal is open. */
  alive: boolean;
  /** Realtime of the last entry handed on (µs). */
  lastEntryUs: number | null;
  /** 0 when the last read reached the end of the journal, else how far the last entry handed on is behind now. */
  lagMs: number | null;
  entriesRead: number;
  lastError: string | null;
  waitMode: 'inotify' | 'polling-backoff';
  corruptFilesSkipped: number;
  /** Entries whose header could not be read (skipped). */
  unreadableEntries: number;
}

export interface JournalSourceStatus extends JournalReaderState {
  source: string;
  rules: number;
}

export type NodeNameSource = 'flag' | 'config' | 'NODE_NAME' | 'certificate' | 'server' | 'hostname';

/** The Kubernetes reporter (outputs/kubernetes/reporter.ts). */
export interface ReporterStatus {
  apiServer: string;
  /** The user the credentials authenticate as, e.g. "system:node:worker-1"; "" until known. */
  identity: string;
  /** Where the credentials come from, e.g. "client certificate /var/lib/kubelet/pki/…". */
  credentials: string;
  nodeName: string;
  nodeNameSource: NodeNameSource | '';
  /**
   * The Node was read and the latest API request was served: false again after a request got no answer,
   * 401/403 (credentials) or 429/5xx (the server failing), true after the next one that did not.
   */
  connected: boolean;
  lastWriteAt: string | null;
  lastError: string | null;
  /** Condition changes not yet on the Node plus events waiting to be sent. */
  pending: number;
  conditionWrites: number;
  events: { queued: number; held: number; sent: number; suppressed: number; failed: number };
}

export type PluginStatus = 'ok' | 'problem' | 'unknown';

/** One plugin executable (sources/plugins/monitor.ts). */
export interface PluginRunStatus {
  plugin: string;
  /** The NPD config file, or "[plugin] sections". */
  group: string;
  path: string;
  args: string[];
  /** The rules this run serves. */
  rules: string[];
  lastRun: string | null;
  /** "exit 0", "signal SIGKILL", "not started", "still running"; null before the first run. */
  lastExit: string | null;
  lastStatus: PluginStatus | null;
  lastOutput: string | null;
  durationMs: number | null;
  runs: number;
  timeouts: number;
  /** A process of this plugin exists (running now, or killed and not yet exited). */
  running: boolean;
  pid: number | null;
}

/** A systemd unit as the unit watcher keeps it (system/systemd/unit-watcher.ts). */
export interface UnitState {
  name: string;
  /** loaded, not-found, masked, error, … */
  loadState: string;
  /** active, reloading, inactive, failed, activating, deactivating */
  activeState: string;
  /** running, auto-restart, dead, failed, start-pre, … */
  subState: string;
  /** The service's last result: success, exit-code, signal, core-dump, timeout, watchdog, start-limit-hit, … */
  result: string;
  mainPid: number;
  /** Automatic restarts systemd made (Restart=) since the unit was loaded. */
  nRestarts: number;
  /** When the unit last left the inactive state (started), µs since the epoch; 0 = never. */
  inactiveExitUs: number;
  /** The same on CLOCK_MONOTONIC, immune to clock steps. */
  inactiveExitMonoUs: number;
  /** enabled, disabled, static, masked, …; empty when there is no unit file. */
  unitFileState: string;
  /** ID of the job queued for the unit; 0 when none. */
  jobId: number;
}

export type HealthState =
  /** The probe succeeded and the unit (if any) is running. */
  | 'healthy'
  /** Judged unhealthy: the condition is True. */
  | 'failing'
  /** The unit is starting, stopping, restarting itself or in its cooldown: not judged. */
  | 'settling'
  /** Nothing to judge yet (no probe result). */
  | 'unknown'
  /** No unit and nothing answering: the component is not installed here. */
  | 'absent';

/** A runtime component's health as the repair policy judges it (repair/policy.ts). */
export interface Health {
  state: HealthState;
  reason: string;
  message: string;
  /**
   * What a repair would do: "start" for a unit that failed and that nothing will bring back, "restart"
   * for a running unit that does not work; undefined when a repair must not happen (stopped on purpose,
   * no unit).
   */
  remedy?: 'restart' | 'start';
}

// The repair ledger's records (repair/ledger.ts), shown as the last actions.

export type ActionKind = 'restart' | 'start' | 'mask';

export type OutcomeResult =
  /** The job finished and the unit is active (or masked). */
  | 'done'
  /** The job hung and was escalated (SIGKILL to the main process, start), then finished. */
  | 'escalated'
  /** systemd refused the action or the job failed. */
  | 'failed'
  /** Dry-run: nothing was done. */
  | 'skipped'
  /** The agent stopped mid-action; after its restart the unit showed the action had taken effect. */
  | 'completed-while-down'
  /** The agent stopped mid-action; whether it took effect is unknown. Not repeated: it counts as a repair. */
  | 'interrupted';

export interface UnitSnapshot {
  activeState: string;
  subState: string;
  mainPid: number;
  inactiveExitUs: number;
}

export interface Intent {
  kind: 'intent';
  id: string;
  /** ISO 8601 */
  at: string;
  component: string;
  unit: string;
  action: ActionKind;
  dryRun: boolean;
  /** The condition reason that led to the action. */
  reason: string;
  message: string;
  before?: UnitSnapshot;
}

export interface Outcome {
  kind: 'outcome';
  id: string;
  at: string;
  result: OutcomeResult;
  detail: string;
  durationMs: number;
  after?: UnitSnapshot;
}

/** An action with its outcome, if it has one yet. */
export interface LedgerEntry extends Intent {
  outcome?: Outcome;
}

export type RepairMode = 'repair' | 'dry-run' | 'off';

export interface ComponentStatus {
  name: string;
  unit: string | null;
  health: Health;
  failingSince: string | null;
  unitState: UnitState | null;
  findings: Finding[];
  repair: { enabled: boolean; allowed: boolean; used: number; max: number; nextAllowedAt: string | null; exhausted: boolean } | null;
  restartsInWindow: number | null;
}

/** Runtime health and repair (repair/health.ts). */
export interface RuntimeHealthStatus {
  mode: RepairMode;
  bus: { connected: boolean; lastError: string };
  components: ComponentStatus[];
  legacyUnits: Array<{ unit: string; loadState: string; activeState: string; unitFileState: string }>;
  lastActions: LedgerEntry[];
  /** Counts since the agent started, by "component/action/result", for metrics. */
  actionsTotal: Record<string, number>;
}

/** The repair gate's coordination (repair/fleet/coordinator.ts). */
export interface CoordinationStatus {
  enabled: boolean;
  /** The identity was verified: acquire() may grant slots. */
  ready: boolean;
  /** Why disruptive repairs cannot be coordinated now; null when ready. */
  reason: string | null;
  /** The user the API server knows the identity as; "" until verified. */
  identity: string;
  credentials: string;
  apiServer: string;
  namespace: string;
  slots: number;
  /** The slot Lease this node holds, if any. */
  held: string | null;
  lastRefusal: { reason: string; message: string; at: string; retryAt: string | null } | null;
  /** API requests made by the coordination identity since start. */
  requests: number;
}

// The ladder's ledger records (repair/ladder/ledger.ts), shown as its last runs.

/** The disruptive steps, in the only order they may run. */
export const LADDER_STEPS = ['cordon', 'drain', 'reboot'] as const;
export type LadderStep = (typeof LADDER_STEPS)[number];

/** A step of a run: the disruptive ones, then waiting for health, uncordoning and giving the slot back. */
export type StepName = LadderStep | 'verify' | 'uncordon' | 'release';

export type StepResult = 'done' | 'failed' | 'skipped';

export type RunResult =
  /** The condition cleared and the node is schedulable again (if this agent had cordoned it). */
  | 'repaired'
  /** A step before the reboot failed (drain timed out, the reboot was refused, the slot was lost). */
  | 'failed'
  /** The node rebooted but was not healthy within after_boot_timeout: the reboot did not help. */
  | 'reboot-failed'
  /** The agent stopped mid-run (not in its own reboot); the next start undid the run. */
  | 'interrupted'
  /** Dry-run: nothing was done. */
  | 'dry-run';

/** What a run is, as its begin record states it. */
export interface RunFields {
  at: string;
  condition: string;
  /** lastTransitionTime of the condition: which occurrence of it the run is for. */
  since: string;
  dryRun: boolean;
  steps: LadderStep[];
  lease: string;
  bootId: string;
}

export interface StepEntry {
  step: StepName;
  at: string;
  /** The boot the step began in: a reboot step begun in another boot has happened. */
  bootId: string;
  outcome?: { at: string; result: StepResult; detail: string; durationMs: number };
}

export interface RunEntry extends RunFields {
  id: string;
  done: StepEntry[];
  end?: { at: string; result: RunResult; detail: string };
}

export interface LadderWaiting {
  condition: string;
  reason: string;
  message: string;
  retryAt: string | null;
}

/** The disruptive ladder (repair/ladder/ladder.ts). */
export interface LadderStatus {
  enabled: boolean;
  dryRun: boolean;
  conditions: string[];
  active: { run: string; condition: string; lease: string; step: string | null; stepSince: string | null } | null;
  waiting: LadderWaiting[];
  lastRuns: RunEntry[];
}
