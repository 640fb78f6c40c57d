// The plan: everything a configuration makes the daemon run, built and validated in full before anything
// running is touched. `config check`, `diagnose`, `run` and reload all build it here, so a config that
// `config check` passes is one that `run` starts and a reload applies.
import type { Config } from './config/schema';
import { loadConfig, type LoadedConfig } from './config/load';
import type { ConditionDeclaration, Logger, ProblemSink, ScheduledCheck } from './types';
import { buildRuleSet, type RuleSet } from './sources/rules/rule-set';
import { AgentError } from './errors';
import { KUBELET_CONDITION_TYPES } from './outputs/kubernetes/types';
import { RuntimeHealth } from './repair/health';
import { LadderConfigError, ladderSettings, type LadderSettings } from './repair/ladder/settings';
import { enabledChecks } from './sources/checks';
import { journalDeclarations } from './sources/journal/monitor';
import { PluginMonitor } from './sources/plugins/monitor';
import type { NativeLoader } from './system/native';

export interface Plan {
  loaded: LoadedConfig;
  rules: RuleSet | undefined;
  /** Built (configs read, executables checked), not started. */
  plugins: PluginMonitor | undefined;
  checks: ScheduledCheck[];
  ladder: LadderSettings;
  /** Every condition type the plan's sources report, each with its one owner. */
  declarations: ConditionDeclaration[];
}

export interface PlanOptions {
  /** The plugins' logger and sink (the daemon's own; a quiet one for a check). */
  log: Logger;
  sink: ProblemSink;
  /** The native addon, loaded by the entry point when a probe first needs it. */
  native: NativeLoader;
  /**
   * The config the repair module runs with: it is read at start only, so a reload declares the types of
   * the running one. Default: the plan's own.
   */
  runtimeConfig?: Config;
}

/** Loads and validates everything; throws AgentError (CONFIG_*) naming the file, line or section. */
export function makePlan(configDir: string | undefined, opts: PlanOptions): Plan {
  const loaded = loadConfig(configDir, { required: configDir !== undefined });
  const { config } = loaded;
  const rules = config.journal.enabled ? buildRuleSet(loaded) : undefined;
  const plugins = config.plugins.enabled ? PluginMonitor.create(loaded, opts.log, opts.sink) : undefined;
  const checks = enabledChecks(config, opts.native);
  let ladder: LadderSettings;
  try {
    ladder = ladderSettings(config, config.named.remediate);
  } catch (err) {
    if (err instanceof LadderConfigError) throw new AgentError('CONFIG_INVALID', err.message);
    throw err;
  }
  const declarations = declare(rules, plugins, checks, opts.runtimeConfig ?? config);
  return { loaded, rules, plugins, checks, ladder, declarations };
}

/**
 * One owner per condition type. Shared types join an owner that already declares them: the repair
 * module's Frequent…Restart types (when journal rules own them) and the read-only probe's
 * ReadonlyFilesystem (the journal rule of that name sees the same fact).
 */
function declare(
  rules: RuleSet | undefined,
  plugins: PluginMonitor | undefined,
  checks: ScheduledCheck[],
  runtimeConfig: Config,
): ConditionDeclaration[] {
  const probes = checks.flatMap(({ section, condition: c }): ConditionDeclaration[] =>
    c ? [{ type: c.type, owner: `[${section}]`, reason: c.reason, message: c.message, setAfter: c.setAfter, clearAfter: c.clearAfter, shared: c.shared }] : [],
  );
  const runtime = RuntimeHealth.conditionDeclarations(runtimeConfig);
  const candidates = [
    ...(rules ? journalDeclarations(rules) : []),
    ...(plugins?.declarations() ?? []),
    ...probes.filter((p) => !p.shared),
    ...runtime.filter((r) => !r.shared),
    ...probes.filter((p) => p.shared),
    ...runtime.filter((r) => r.shared),
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
