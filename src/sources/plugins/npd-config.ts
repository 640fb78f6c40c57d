// Loads node-problem-detector custom-plugin-monitor configs (custom-plugin-monitor.json,
// health-checker-*.json, …) unmodified: NPD's defaults and validation, with every mistake named by file
// and JSON path. Paths are resolved here; whether the executables exist and are safe is judged by the
// plugin set (a missing one is reported when it runs, as configs often name binaries of other hosts).
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { checkFileOwnership } from '../../config/load';
import { checkTimerLimit } from '../../config/values';
import { AgentError, messageOf } from '../../errors';
import type { ConditionDefault, PluginGroup, PluginRule } from './types';

/** NPD's defaults (pkg/custompluginmonitor/types/config.go). */
export const NPD_DEFAULTS = {
  invokeIntervalMs: 30_000,
  timeoutMs: 5_000,
  maxOutputLength: 80,
  concurrency: 3,
  messageChangeUpdates: false,
  skipInitialStatus: false,
} as const;

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration ("300ms", "1.5h", "2h45m"), in milliseconds. */
export function parseGoDuration(raw: string): number {
  if (raw === '0') return 0;
  const part = /([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/y;
  let total = 0;
  let at = raw.startsWith('+') ? 1 : 0;
  if (raw.startsWith('-')) throw new Error(`"${raw}" is negative`);
  if (at === raw.length) throw new Error(`"${raw}" is not a Go duration (e.g. 5s, 1m30s)`);
  while (at < raw.length) {
    part.lastIndex = at;
    const m = part.exec(raw);
    if (!m || m[1] === '' || m[1] === '.') throw new Error(`"${raw}" is not a Go duration (e.g. 5s, 1m30s)`);
    total += Number(m[1]) * (GO_UNITS[m[2] as string] as number);
    at = part.lastIndex;
  }
  return total;
}

export interface NpdPluginOptions {
  /** Relative plugin paths resolve against it, and the plugins run in it (NPD's working directory). */
  root: string;
}

/** Reads and validates one config; throws AgentError CONFIG_INVALID / CONFIG_INSECURE / CONFIG_UNREADABLE. */
export function loadNpdPluginConfig(file: string, options: NpdPluginOptions): PluginGroup {
  let textContent: string;
  try {
    checkFileOwnership(file);
    textContent = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('CONFIG_UNREADABLE', `${file}: cannot read node-problem-detector config: ${messageOf(err)} (fix or remove it from [plugins] npd_configs)`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(textContent);
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `${file}: not valid JSON: ${messageOf(err)}`);
  }
  return parseNpdPluginConfig(file, doc, options);
}

/** Decode → defaults → validate, as NPD does, on an already parsed document. */
export function parseNpdPluginConfig(file: string, doc: unknown, options: NpdPluginOptions): PluginGroup {
  const fail = (path: string, what: string): never => {
    throw new AgentError('CONFIG_INVALID', `${file}: ${path}: ${what}`);
  };
  const object = (v: unknown, path: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(path, 'expected an object');
  const str = (v: unknown, path: string): string => (typeof v === 'string' && v !== '' ? v : fail(path, 'expected a non-empty string'));
  const optional = <T>(v: unknown, path: string, parse: (v: unknown, path: string) => T, def: T): T =>
    v === undefined || v === null ? def : parse(v, path);
  const int = (min: number) => (v: unknown, path: string): number =>
    typeof v === 'number' && Number.isInteger(v) && v >= min ? v : fail(path, `expected a whole number of at least ${min}`);
  const bool = (v: unknown, path: string): boolean => (typeof v === 'boolean' ? v : fail(path, 'expected true or false'));
  const positiveDuration = (v: unknown, path: string): number => {
    const text = typeof v === 'string' ? v : fail(path, 'expected a duration string like "5s"');
    let ms: number;
    try {
      ms = parseGoDuration(text);
      checkTimerLimit(ms);
    } catch (err) {
      return fail(path, messageOf(err));
    }
    return ms > 0 ? ms : fail(path, `"${text}" must be longer than 0`);
  };

  const root = object(doc, '(top level)');
  const plugin = root.plugin;
  if (plugin !== 'custom') {
    fail(
      'plugin',
      `${JSON.stringify(plugin ?? null)} is not "custom": only custom-plugin-monitor configs belong in [plugins] npd_configs (system-log-monitor configs go in [journal] npd_configs)`,
    );
  }
  const pc = optional(root.pluginConfig, 'pluginConfig', object, {});
  const timeoutMs = optional(pc.timeout, 'pluginConfig.timeout', positiveDuration, NPD_DEFAULTS.timeoutMs);
  const intervalMs = optional(pc.invoke_interval, 'pluginConfig.invoke_interval', positiveDuration, NPD_DEFAULTS.invokeIntervalMs);
  const name = basename(file).replace(/\.json$/, '');
  const source = optional(root.source, 'source', str, name);

  const rawConditions = optional(root.conditions, 'conditions', (v, p) => (Array.isArray(v) ? v : fail(p, 'expected an array')), []);
  const conditions: ConditionDefault[] = rawConditions.map((c, i) => {
    const o = object(c, `conditions[${i}]`);
    return {
      type: str(o.type, `conditions[${i}].type`),
      reason: str(o.reason, `conditions[${i}].reason`),
      message: str(o.message, `conditions[${i}].message`),
      origin: `${file}: conditions[${i}]`,
    };
  });
  const declared = new Set(conditions.map((c) => c.type));

  const rawRules = optional(root.rules, 'rules', (v, p) => (Array.isArray(v) ? v : fail(p, 'expected an array')), []);
  const rules: PluginRule[] = rawRules.map((r, i) => {
    const at = `rules[${i}]`;
    const o = object(r, at);
    const kind = o.type === 'temporary' || o.type === 'permanent' ? o.type : fail(`${at}.type`, 'expected "temporary" or "permanent"');
    const condition = kind === 'permanent' ? str(o.condition, `${at}.condition`) : '';
    if (kind === 'permanent' && !declared.has(condition)) {
      fail(`${at}.condition`, `"${condition}" has no default in "conditions" (add {"type": "${condition}", "reason": …, "message": …})`);
    }
    const args = optional(o.args, `${at}.args`, (v, p) => (Array.isArray(v) && v.every((a) => typeof a === 'string') ? (v as string[]) : fail(p, 'expected an array of strings')), []);
    const ruleTimeout = optional(o.timeout, `${at}.timeout`, positiveDuration, timeoutMs);
    if (ruleTimeout > timeoutMs) {
      fail(`${at}.timeout`, `${o.timeout as string} exceeds pluginConfig.timeout (${(pc.timeout as string | undefined) ?? '5s'}); NPD refuses a rule timeout above the global one`);
    }
    const reason = str(o.reason, `${at}.reason`);
    return {
      id: `plugin/${name}/${at}`,
      label: `${file} ${at}`,
      subject: `${at} ${reason}`,
      kind,
      condition,
      reason,
      path: resolve(options.root, str(o.path, `${at}.path`)),
      args,
      timeoutMs: ruleTimeout,
      // Not in NPD 1.36 (which ignores unknown fields), so a config using it still loads there.
      intervalMs: optional(o.invoke_interval, `${at}.invoke_interval`, positiveDuration, intervalMs),
    };
  });

  return {
    fromIni: false,
    name,
    source,
    origin: file,
    cwd: options.root,
    concurrency: optional(pc.concurrency, 'pluginConfig.concurrency', int(1), NPD_DEFAULTS.concurrency),
    maxOutputLength: optional(pc.max_output_length, 'pluginConfig.max_output_length', int(0), NPD_DEFAULTS.maxOutputLength),
    messageChangeUpdates: optional(
      pc.enable_message_change_based_condition_update,
      'pluginConfig.enable_message_change_based_condition_update',
      bool,
      NPD_DEFAULTS.messageChangeUpdates,
    ),
    skipInitialStatus: optional(pc.skip_initial_status, 'pluginConfig.skip_initial_status', bool, NPD_DEFAULTS.skipInitialStatus),
    conditions,
    rules,
  };
}
