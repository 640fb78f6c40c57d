// Runs the configured plugins on their schedules and reports what they find: permanent rules as
// conditions (owner "plugins"), temporary rules as Warning events.
//
// Rules of one group (an NPD config file, or the ini's [plugin] sections) that name the same executable
// with the same arguments share one run (NPD #924 runs it once per rule, at the same time). That run
// comes at the shortest of their intervals with the longest of their timeouts; each rule takes the
// result when its own interval is due, and a rule with a shorter timeout reads a longer run as timed
// out. Runs start with jitter (NPD #412 fires every rule at once), at most `concurrency` of a group at
// a time, and a run stuck past SIGKILL frees its slot so it never blocks the others (NPD #1050).
import { basename } from 'node:path';
import type { LoadedConfig } from '../../config/load';
import { formatDuration } from '../../config/values';
import { type ConditionDeclaration, type Logger, type Finding, type ProblemSink, DEFAULT_CHECK_DEADLINE_MS, type Check } from '../../types';
import { Scheduler } from '../../system/scheduler';
import { Slots } from '../../system/slots';
import { buildPluginSet, type PluginSet } from './plugin-set';
import { nextCondition, type RuleCondition } from './rule-state';
import { cut, runPlugin, type PluginStatus, type RunOutcome } from './runner';
import type { ConditionDefault, PluginGroup, PluginRule } from './types';
import type { PluginRunStatus } from '../../types';
export type { PluginRunStatus };

export const OWNER = 'plugins';

export interface PluginMonitorOptions {
  /** Jitter source (tests make it predictable). */
  random?: () => number;
  /** Longest random delay before a plugin's first run. */
  maxFirstDelayMs?: number;
}

interface RuleState {
  rule: PluginRule;
  /** When the rule last took a result (ms since epoch). */
  usedAt: number | undefined;
  condition: RuleCondition | undefined;
}

interface Job {
  name: string;
  group: GroupState;
  path: string;
  args: string[];
  rules: RuleState[];
  intervalMs: number;
  timeoutMs: number;
  runs: number;
  timeouts: number;
  last: RunOutcome | undefined;
  /** The pid while a process of this job exists. */
  pid: number | undefined;
  /** Settles when a process that outlived SIGKILL has exited. */
  lingering: Promise<void> | undefined;
}

interface GroupState {
  group: PluginGroup;
  slots: Slots;
}

export class PluginMonitor {
  private readonly jobs: Job[];
  private scheduler: Scheduler | undefined;
  private readonly aborter = new AbortController();
  private readonly inflight = new Set<Promise<unknown>>();
  private stopped = false;

  private constructor(
    private readonly set: PluginSet,
    private readonly log: Logger,
    private readonly sink: ProblemSink,
    private readonly options: PluginMonitorOptions,
  ) {
    this.jobs = [];
    const names = new Set<string>();
    for (const group of set.groups) {
      const state: GroupState = { group, slots: new Slots(group.concurrency) };
      const byInvocation = new Map<string, PluginRule[]>();
      for (const rule of group.rules) {
        const key = JSON.stringify([rule.path, ...rule.args]);
        byInvocation.set(key, [...(byInvocation.get(key) ?? []), rule]);
      }
      for (const rules of byInvocation.values()) {
        const first = rules[0] as PluginRule;
        const base = group.fromIni ? rules.map((r) => r.subject).join('+') : `${group.name}/${basename(first.path)}`;
        let name = base;
        for (let n = 2; names.has(name); n++) name = `${base}#${n}`;
        names.add(name);
        this.jobs.push({
          name,
          group: state,
          path: first.path,
          args: first.args,
          rules: rules.map((rule) => ({ rule, usedAt: undefined, condition: undefined })),
          intervalMs: Math.min(...rules.map((r) => r.intervalMs)),
          timeoutMs: Math.max(...rules.map((r) => r.timeoutMs)),
          runs: 0,
          timeouts: 0,
          last: undefined,
          pid: undefined,
          lingering: undefined,
        });
      }
    }
  }

  /**
   * Builds the plugins from the config. Throws AgentError CONFIG_INVALID (naming file:line, or file and
   * JSON path), CONFIG_UNREADABLE or CONFIG_INSECURE (an executable or config others could write).
   */
  static create(loaded: LoadedConfig, log: Logger, sink: ProblemSink, options: PluginMonitorOptions = {}): PluginMonitor {
    return new PluginMonitor(buildPluginSet(loaded), log, sink, options);
  }

  /** The condition types plugins report, with their reason and message while False. */
  declarations(): ConditionDeclaration[] {
    return this.set.conditions.map((c) => ({ type: c.type, owner: OWNER, reason: c.reason, message: c.message }));
  }

  /** One check per plugin executable, for `diagnose`: runs it once and judges it for each of its rules. */
  checks(): Check[] {
    return this.jobs.map((job) => ({
      component: 'plugins',
      name: job.name,
      deadlineMs: this.worstWaitMs(job),
      run: async (): Promise<Finding[]> => {
        const outcome = await this.execute(job);
        return job.rules.map(({ rule }) => this.finding(job, rule, outcome));
      },
    }));
  }

  /**
   * The longest a run of `job` can take when all of its group's jobs start at once: they queue for the
   * group's slots, each bounded by its timeout and the kill grace (a process outliving SIGKILL is not
   * waited for); plus a margin.
   */
  private worstWaitMs(job: Job): number {
    const group = this.jobs.filter((j) => j.group === job.group);
    const waves = Math.ceil(group.length / job.group.group.concurrency);
    const longest = Math.max(...group.map((j) => j.timeoutMs)) + this.set.killGraceMs;
    return Math.max(DEFAULT_CHECK_DEADLINE_MS, waves * longest + 5_000);
  }

  /** Reports the initial conditions (unless a group skips them) and starts the schedules. */
  start(): void {
    if (this.scheduler || this.stopped) return;
    for (const job of this.jobs) {
      if (job.group.group.skipInitialStatus) continue;
      for (const state of job.rules) {
        if (state.rule.kind !== 'permanent') continue;
        const def = this.defaultOf(state.rule);
        state.condition = { status: 'False', reason: def.reason, message: def.message };
        this.report(state);
      }
    }
    this.scheduler = new Scheduler(this.options.random);
    this.scheduler.start(
      this.jobs.map((job) => ({ name: job.name, intervalMs: job.intervalMs, run: () => this.cycle(job) })),
      this.options.maxFirstDelayMs,
    );
  }

  /** Stops the schedules and kills running plugins' process groups; waits (up to the kill grace) for them to be reaped. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.scheduler?.stop();
    for (const job of this.jobs) job.group.slots.close();
    this.aborter.abort();
    await Promise.all(this.inflight);
    const lingering = this.jobs.filter((j) => j.lingering !== undefined);
    if (lingering.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(lingering.map((j) => j.lingering)),
      new Promise((r) => {
        timer = setTimeout(r, this.set.killGraceMs);
      }),
    ]);
    clearTimeout(timer);
    for (const job of lingering) {
      if (job.lingering === undefined) continue;
      this.log.warning(`plugin ${job.name}: pid ${job.pid} still has not exited after SIGKILL; it is reaped when it does`, {
        check: `plugins/${job.name}`,
      });
    }
  }

  status(): PluginRunStatus[] {
    return this.jobs.map((job) => ({
      plugin: job.name,
      group: job.group.group.origin,
      path: job.path,
      args: job.args,
      rules: job.rules.map((r) => r.rule.subject),
      lastRun: job.last ? job.last.startedAt.toISOString() : null,
      lastExit: job.last?.exit ?? null,
      lastStatus: job.last?.status ?? null,
      lastOutput: job.last?.output ?? null,
      durationMs: job.last?.durationMs ?? null,
      runs: job.runs,
      timeouts: job.timeouts,
      running: job.pid !== undefined,
      pid: job.pid ?? null,
    }));
  }

  /** One scheduled run: the rules that are due take its result. */
  private async cycle(job: Job): Promise<void> {
    const outcome = await this.execute(job);
    if (outcome === undefined || this.stopped) return;
    // Monotonic: a wall clock stepped back must not make every rule skip its runs until it catches up.
    const now = performance.now();
    for (const state of job.rules) {
      // Due when its interval has come within half a run period: rules sharing a run at the same
      // interval take every run despite the jitter; a rule with a longer interval skips runs.
      if (state.usedAt !== undefined && now - state.usedAt < state.rule.intervalMs - job.intervalMs / 2) continue;
      state.usedAt = now;
      const result = this.resultFor(job, state.rule, outcome);
      if (state.rule.kind === 'temporary') {
        if (result.status !== 'ok') {
          this.sink.event({ source: state.rule.id, severity: 'Warning', reason: state.rule.reason, message: result.output });
        }
        continue;
      }
      const def = this.defaultOf(state.rule);
      const current = state.condition ?? { status: 'False', reason: def.reason, message: def.message };
      state.condition = nextCondition(current, result, state.rule.reason, def, job.group.group.messageChangeUpdates);
      this.report(state);
    }
  }

  /** Runs the job's plugin once, or says why it cannot; undefined once the monitor stopped. */
  private async execute(job: Job): Promise<RunOutcome | undefined> {
    if (job.lingering !== undefined) {
      return {
        status: 'unknown',
        output: cut(
          `previous run (pid ${job.pid}) still has not exited after SIGKILL (uninterruptible sleep?); not started again until it does`,
          job.group.group.maxOutputLength,
        ),
        exit: 'still running',
        stderr: '',
        timedOut: false,
        startedAt: new Date(),
        durationMs: 0,
      };
    }
    let release: () => void;
    try {
      release = await job.group.slots.acquire();
    } catch {
      return undefined;
    }
    const run = runPlugin({
      path: job.path,
      args: job.args,
      cwd: job.group.group.cwd,
      timeoutMs: job.timeoutMs,
      killGraceMs: this.set.killGraceMs,
      maxOutputLength: job.group.group.maxOutputLength,
      signal: this.aborter.signal,
      onSpawn: (pid) => {
        job.pid = pid;
      },
    });
    this.inflight.add(run);
    let outcome: RunOutcome;
    try {
      outcome = await run;
    } finally {
      this.inflight.delete(run);
      release();
    }
    const previous = job.last;
    job.last = outcome;
    job.runs++;
    if (outcome.timedOut) job.timeouts++;
    job.pid = undefined;
    if (outcome.lingering) {
      job.pid = outcome.pid;
      job.lingering = outcome.lingering.then(() => {
        job.lingering = undefined;
        job.pid = undefined;
        if (!this.stopped) this.log.info(`plugin ${job.name}: pid ${outcome.pid} has exited at last and was reaped`, { check: `plugins/${job.name}` });
      });
    }
    this.logChange(job, previous, outcome);
    return outcome;
  }

  /** The outcome as one rule reads it: a rule whose own timeout is shorter than the shared run's took too long. */
  private resultFor(job: Job, rule: PluginRule, outcome: RunOutcome): { status: PluginStatus; output: string } {
    if (rule.timeoutMs < job.timeoutMs && outcome.durationMs > rule.timeoutMs && outcome.exit !== 'not started') {
      const after = formatDuration(rule.timeoutMs);
      return { status: 'unknown', output: cut(`timed out after ${after} (this rule's timeout)`, job.group.group.maxOutputLength) };
    }
    return outcome;
  }

  private finding(job: Job, rule: PluginRule, outcome: RunOutcome | undefined): Finding {
    if (outcome === undefined) return { status: 'unknown', reason: 'PluginStopped', message: 'the agent is stopping', subject: rule.subject };
    const result = this.resultFor(job, rule, outcome);
    const said = (fallback: string): string => (result.output !== '' ? result.output : fallback);
    switch (result.status) {
      case 'ok':
        return {
          status: 'ok',
          reason: rule.kind === 'permanent' ? this.defaultOf(rule).reason : 'PluginOK',
          message: said(`${outcome.exit}: no problem`),
          subject: rule.subject,
        };
      case 'problem':
        return {
          status: rule.kind === 'permanent' ? 'problem' : 'warning',
          reason: rule.reason,
          message: said(`${outcome.exit}: ${rule.kind === 'permanent' ? `sets ${rule.condition}` : 'a Warning event'}`),
          subject: rule.subject,
        };
      case 'unknown':
        return { status: 'unknown', reason: 'PluginUnknown', message: said(`${outcome.exit}: neither 0 (OK) nor 1 (problem)`), subject: rule.subject };
    }
  }

  private defaultOf(rule: PluginRule): ConditionDefault {
    // buildPluginSet guarantees a default for every permanent rule's condition.
    return this.set.conditions.find((c) => c.type === rule.condition) as ConditionDefault;
  }

  private report(state: RuleState): void {
    const c = state.condition as RuleCondition;
    this.sink.condition({ source: state.rule.id, type: state.rule.condition, status: c.status, reason: c.reason, message: c.message });
  }

  /** Logs when a plugin turns bad or recovers, not every run. */
  private logChange(job: Job, previous: RunOutcome | undefined, outcome: RunOutcome): void {
    if (previous?.status === outcome.status && previous.exit === outcome.exit) return;
    const fields = { check: `plugins/${job.name}`, ...(!job.group.group.fromIni && { file: job.group.group.origin }) };
    if (outcome.status === 'ok') {
      if (previous) this.log.info(`plugin ${job.name}: ${outcome.exit} again`, fields);
      return;
    }
    const stderr = outcome.stderr === '' ? '' : `; stderr: ${cut(outcome.stderr, 512)}`;
    this.log.warning(`plugin ${job.name}: ${outcome.exit}: ${outcome.output}${stderr}`, fields);
  }
}
