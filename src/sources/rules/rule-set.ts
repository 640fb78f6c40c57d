// Builds the log rules the journal monitor runs from the configuration: the ini's [source], [condition]
// and [rule] sections plus any node-problem-detector JSON configs it lists. Every mistake is reported
// with the file:line (or JSON path) of the setting at fault.
import type { LoadedConfig } from '../../config/load';
import { AgentError } from '../../errors';
import { loadNpdConfig } from './npd-config';
import { compilePattern, PatternError, type CompiledPattern } from './pattern';
import type { JournalSourceSpec, LogConditionSpec, RuleSpec } from './log-monitor';

export interface RuleSet {
  sources: JournalSourceSpec[];
  conditions: Map<string, LogConditionSpec>;
}

export function buildRuleSet(loaded: LoadedConfig): RuleSet {
  const { config, origins } = loaded;
  const errors: string[] = [];
  const at = (id: string): string => {
    const o = origins.get(id);
    return o ? `${o.file}:${o.line}: ` : '';
  };
  const pattern = (id: string, label: string, text: string): CompiledPattern | undefined => {
    try {
      return compilePattern(text);
    } catch (err) {
      if (!(err instanceof PatternError)) throw err;
      errors.push(`${at(id)}${label}: ${err.message}`);
      return undefined;
    }
  };

  const conditions = new Map<string, LogConditionSpec>();
  for (const [type, c] of config.named.condition) {
    if (!c.enabled) continue;
    conditions.set(type, { type, reason: c.reason, message: c.message, clearOnReboot: c.clear_on_reboot, clearAfterMs: c.clear_after });
  }

  const sources = new Map<string, JournalSourceSpec>();
  for (const [name, s] of config.named.source) {
    if (!s.enabled) continue;
    sources.set(name, { name, matches: s.matches, bufferSize: s.buffer_size, lookbackMs: s.lookback, delayMs: s.delay, rules: [] });
  }

  for (const [name, r] of config.named.rule) {
    if (!r.enabled) continue;
    const id = `rule "${name}"`;
    const label = `[rule "${name}"]`;
    const source = sources.get(r.source);
    if (!source) {
      const known = [...sources.keys()].join(', ') || 'none';
      errors.push(`${at(`${id}.source`)}${label} source: no enabled [source "${r.source}"] (enabled sources: ${known})`);
      continue;
    }
    if (r.kind !== 'temporary' && !conditions.has(r.condition)) {
      errors.push(
        `${at(`${id}.condition`) || at(`${id}.kind`)}${label} condition: a ${r.kind} rule needs an enabled [condition "${r.condition || '…'}"]`,
      );
      continue;
    }
    const compiled = pattern(`${id}.pattern`, `${label} pattern`, r.pattern);
    const revert = r.revert_pattern === '' ? undefined : pattern(`${id}.revert_pattern`, `${label} revert_pattern`, r.revert_pattern);
    if (!compiled || (r.revert_pattern !== '' && !revert)) continue;
    const rule: RuleSpec = {
      name,
      kind: r.kind,
      condition: r.kind === 'temporary' ? '' : r.condition,
      reason: r.reason,
      pattern: compiled,
      count: r.count,
      windowMs: r.window,
      ...(r.repeat_window > 0 ? { repeatWindowMs: r.repeat_window } : {}),
    };
    if (revert) rule.revert = revert;
    source.rules.push(rule);
  }

  for (const file of config.journal.npd_configs) {
    try {
      const npd = loadNpdConfig(file);
      for (const c of npd.conditions) if (!conditions.has(c.type)) conditions.set(c.type, c);
      if (sources.has(npd.source.name)) {
        errors.push(`${file}: its source "${npd.source.name}" is also defined in the ini files; rename one`);
        continue;
      }
      sources.set(npd.source.name, npd.source);
    } catch (err) {
      if (!(err instanceof AgentError)) throw err;
      errors.push(err.message);
    }
  }

  if (errors.length > 0) throw new AgentError('CONFIG_INVALID', errors.join('\n'));
  return { sources: [...sources.values()].filter((s) => s.rules.length > 0), conditions };
}
