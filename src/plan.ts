// The plan: everything a configuration makes the daemon run, built and validated in full before anything
// running is touched. `config check`, `diagnose`, `run` and reload all build it here, so a config that
// `config check` passes is one that `run` starts and a reload applies.
import type { Config } from './config/schema';
import { loadConfig, type LoadedConfig } from './config/load';
import type { ConditionDeclaration, Logger, PlannedSource, ProblemSink, ScheduledCheck } from './types';
import { AgentError } from './errors';
import { KUBELET_CONDITION_TYPES } from './outputs/kubernetes/types';
import { LadderConfigError, ladderSettings, type LadderSettings } from './repair/ladder/settings';
import { sourceKinds } from './registry';
import { registeredSections } from './sections';
import type { HostProbe } from './sources/probes/probe';
import type { NativeLoader } from './system/native';

export interface Plan {
  loaded: LoadedConfig;
  /** What each source kind of the registry planned (built, not started), by its name, in registry order. */
  sources: Map<string, PlannedSource>;
  ladder: LadderSettings;
  /** Every condition type the plan's sources report, each with its one owner. */
  declarations: ConditionDeclaration[];
  /** The checks the engine schedules, of every source. */
  checks: ScheduledCheck[];
}

export interface PlanOptions {
  /** The plugins' logger and sink (the daemon's own; a quiet one for a check). */
  log: Logger;
  sink: ProblemSink;
  /** The native addon, loaded by the entry point when a source first needs it. */
  native: NativeLoader;
  /** The running plan, on a reload: sources read at start only are kept from it, with their declarations. */
  running?: Plan;
  /** The host probes, when not the registry's own (a test adds one). */
  probes?: readonly HostProbe[];
}

/** Loads and validates everything; throws AgentError (CONFIG_*) naming the file, line or section. */
export function makePlan(configDir: string | undefined, opts: PlanOptions): Plan {
  const loaded = loadConfig(configDir, { required: configDir !== undefined, sections: registeredSections(opts.probes) });
  const { config } = loaded;
  const sources = new Map<string, PlannedSource>();
  for (const kind of sourceKinds(opts.native, opts.probes)) {
    const planned = kind.startOnly && opts.running ? opts.running.sources.get(kind.name) : kind.plan(loaded, { log: opts.log, sink: opts.sink });
    if (planned) sources.set(kind.name, planned);
  }
  let ladder: LadderSettings;
  try {
    ladder = ladderSettings(config, config.named.remediate);
  } catch (err) {
    if (err instanceof LadderConfigError) throw new AgentError('CONFIG_INVALID', err.message);
    throw err;
  }
  const planned = [...sources.values()];
  return { loaded, sources, ladder, declarations: declare(planned), checks: planned.flatMap((s) => s.checks ?? []) };
}

/** The sections read at start only that differ between the running config and `next`, as warnings. */
export function restartOnlyChanges(running: Config, next: Config): string[] {
  const warnings: string[] = [];
  for (const key of ['state_dir', 'runtime_dir'] as const) {
    if (next.agent[key] !== running.agent[key]) warnings.push(`[agent] ${key} changed to ${next.agent[key]}; it takes effect at the next restart`);
  }
  for (const section of ['kubernetes', 'metrics', 'repair', 'containerd', 'kubelet', 'kube_proxy', 'coordination', 'ladder'] as const) {
    if (JSON.stringify(next[section]) !== JSON.stringify(running[section])) {
      warnings.push(`[${section}] changed; it takes effect at the next restart (systemctl restart node-health-agent)`);
    }
  }
  if (JSON.stringify([...next.named.remediate]) !== JSON.stringify([...running.named.remediate])) {
    warnings.push('[remediate "…"] changed; it takes effect at the next restart (systemctl restart node-health-agent)');
  }
  return warnings;
}

/** Logs a plan a reload rejected, one line per error, each with the file it names. */
export function logRejected(log: Logger, error: string, generation: number): void {
  for (const line of error.split('\n')) {
    const file = /^([^:]+):\d+:/.exec(line)?.[1];
    log.error(`reload rejected, keeping generation ${generation}: ${line}`, file ? { file } : {});
  }
}

/**
 * One owner per condition type. Shared types join an owner that already declares them, so they come
 * after every source's own: the repair module's Frequent…Restart types (when journal rules own them) and
 * the read-only probe's ReadonlyFilesystem (the journal rule of that name sees the same fact).
 */
function declare(sources: readonly PlannedSource[]): ConditionDeclaration[] {
  const candidates = [
    ...sources.flatMap((s) => s.declarations.filter((d) => !d.shared)),
    ...sources.flatMap((s) => s.declarations.filter((d) => d.shared)),
  ];
  const all: ConditionDeclaration[] = [];
  const owners = new Map<string, string>();
  for (const d of candidates) {
    if (KUBELET_CONDITION_TYPES.includes(d.type)) {
      throw new AgentError('CONFIG_INVALID', `condition ${d.type} (${d.owner} settings) belongs to the kubelet; give it another type`);
    }
    const owner = owners.get(d.type);
    if (owner !== undefined && d.shared) continue;
    if (owner !== undefined && owner !== d.owner) {
      throw new AgentError(
        'CONFIG_INVALID',
        `condition ${d.type} is reported by both ${owner} and ${d.owner} settings; give one of them another type or disable it`,
      );
    }
    owners.set(d.type, d.owner);
    all.push(d);
  }
  return all;
}
