// Builds the plugins to run from the configuration: the ini's [plugin "name"] sections (one group sharing
// the [plugins] settings) plus every NPD custom-plugin-monitor config in [plugins] npd_configs (a group
// each). Every mistake is reported at once, with the file:line or file and JSON path at fault; an
// executable that exists but that others could have written is refused.
import type { LoadedConfig } from '../../config/load';
import { AgentError, type AgentErrorCode } from '../../errors';
import { inspectExecutable } from './executable';
import { loadNpdPluginConfig } from './npd-config';
import type { ConditionDefault, PluginGroup, PluginRule } from './types';

export interface PluginSet {
  groups: PluginGroup[];
  /** Every condition type the plugins own, with its reason and message while False. */
  conditions: ConditionDefault[];
  killGraceMs: number;
}

interface Problem {
  code: AgentErrorCode;
  message: string;
}

export function buildPluginSet(loaded: LoadedConfig): PluginSet {
  const { config } = loaded;
  const problems: Problem[] = [];
  const groups: PluginGroup[] = [];
  if (config.plugins.enabled) {
    const ini = iniGroup(loaded, problems);
    if (ini.rules.length > 0) groups.push(ini);
    const names = new Map<string, string>();
    for (const file of config.plugins.npd_configs) {
      let group: PluginGroup;
      try {
        group = loadNpdPluginConfig(file, { root: config.plugins.npd_root });
      } catch (err) {
        if (!(err instanceof AgentError)) throw err;
        problems.push({ code: err.code, message: err.message });
        continue;
      }
      const other = names.get(group.name);
      if (other !== undefined) {
        problems.push({ code: 'CONFIG_INVALID', message: `${file}: has the same file name as ${other}; rename one (it names the condition sources)` });
        continue;
      }
      names.set(group.name, file);
      groups.push(group);
    }
  }

  const refused = new Set<string>();
  for (const group of groups) {
    for (const rule of group.rules) {
      if (refused.has(rule.path)) continue;
      const problem = inspectExecutable(rule.path);
      if (problem?.kind !== 'insecure') continue;
      refused.add(rule.path);
      problems.push({ code: 'CONFIG_INSECURE', message: `${rule.label} path: ${problem.message}` });
    }
  }

  const conditions = new Map<string, ConditionDefault>();
  for (const c of groups.flatMap((g) => g.conditions)) {
    const seen = conditions.get(c.type);
    if (!seen) {
      conditions.set(c.type, c);
    } else if (seen.reason !== c.reason || seen.message !== c.message) {
      problems.push({
        code: 'CONFIG_INVALID',
        message:
          `${c.origin}: condition ${c.type} is False with reason "${c.reason}", message "${c.message}", but ${seen.origin} ` +
          `says "${seen.reason}", "${seen.message}"; make them the same`,
      });
    }
  }

  if (problems.length > 0) {
    throw new AgentError((problems[0] as Problem).code, problems.map((p) => p.message).join('\n'));
  }
  return { groups, conditions: [...conditions.values()], killGraceMs: config.plugins.kill_grace };
}

function iniGroup(loaded: LoadedConfig, problems: Problem[]): PluginGroup {
  const { config, origins } = loaded;
  const settings = config.plugins;
  const at = (...ids: string[]): string => {
    const o = ids.map((id) => origins.get(id)).find((x) => x !== undefined);
    return o ? `${o.file}:${o.line}: ` : '';
  };
  const invalid = (message: string) => problems.push({ code: 'CONFIG_INVALID', message });
  const rules: PluginRule[] = [];
  const conditions = new Map<string, ConditionDefault>();
  const needed = new Map<string, string>();

  for (const [name, p] of config.named.plugin) {
    if (!p.enabled) continue;
    const id = `plugin "${name}"`;
    const label = `[plugin "${name}"]`;
    if (p.kind === 'permanent' && p.condition === '') {
      invalid(`${at(`${id}.kind`, `${id}.path`)}${label} condition: a permanent plugin needs condition = <NodeCondition type>, e.g. NTPProblem`);
      continue;
    }
    if (p.kind === 'temporary' && p.condition !== '') {
      invalid(`${at(`${id}.condition`)}${label} condition: a temporary plugin sends events and sets no condition; remove it or set kind = permanent`);
      continue;
    }
    if ((p.ok_reason === '') !== (p.ok_message === '')) {
      invalid(`${at(`${id}.ok_reason`, `${id}.ok_message`)}${label} ok_reason and ok_message: set both or neither`);
      continue;
    }
    if (p.ok_reason !== '') {
      if (p.kind === 'temporary') {
        invalid(`${at(`${id}.ok_reason`)}${label} ok_reason: only a permanent plugin's condition has one; remove it or set kind = permanent`);
        continue;
      }
      const where = `${at(`${id}.ok_reason`).replace(/: $/, '') || label}`;
      const seen = conditions.get(p.condition);
      if (seen && (seen.reason !== p.ok_reason || seen.message !== p.ok_message)) {
        invalid(
          `${where}: ${label} condition ${p.condition} is False with "${p.ok_reason}", "${p.ok_message}", but ${seen.origin} says ` +
            `"${seen.reason}", "${seen.message}"; set ok_reason and ok_message in one [plugin] of the condition`,
        );
        continue;
      }
      conditions.set(p.condition, { type: p.condition, reason: p.ok_reason, message: p.ok_message, origin: where });
    }
    if (p.kind === 'permanent' && !needed.has(p.condition)) needed.set(p.condition, `${at(`${id}.condition`)}${label}`);
    rules.push({
      id: `plugin/${name}`,
      label,
      subject: name,
      kind: p.kind,
      condition: p.condition,
      reason: p.reason,
      path: p.path,
      args: p.args,
      timeoutMs: p.timeout ?? settings.timeout,
      intervalMs: p.interval ?? settings.interval,
    });
  }
  for (const [type, where] of needed) {
    if (!conditions.has(type)) {
      invalid(`${where} condition: ${type} needs its reason and message while False: set ok_reason and ok_message (in one [plugin] of ${type})`);
    }
  }
  return {
    fromIni: true,
    name: 'ini',
    source: 'ini',
    origin: '[plugin] sections',
    cwd: '/',
    concurrency: settings.concurrency,
    maxOutputLength: settings.max_output_length,
    messageChangeUpdates: settings.message_change_updates,
    skipInitialStatus: settings.skip_initial_status,
    conditions: [...conditions.values()],
    rules,
  };
}
