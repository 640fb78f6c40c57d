// Loads node-problem-detector system-log-monitor configs (kernel-monitor.json, systemd-monitor.json, …)
// unmodified, so NPD users keep their rules. Plugin "journald" reads entries with the configured
// SYSLOG_IDENTIFIER (for "systemd" and "kernel" only from PID 1 and the kernel); "kmsg" reads the
// kernel's messages from the journal's kernel transport.
import { readFileSync } from 'node:fs';
import { checkFileOwnership } from '../../config/load';
import { AgentError, messageOf } from '../../errors';
import { parseDuration, ValueError } from '../../config/values';
import { compilePattern, PatternError } from './pattern';
import type { JournalSourceSpec, LogConditionSpec, RuleSpec } from './log-monitor';

interface NpdRule {
  type?: unknown;
  condition?: unknown;
  reason?: unknown;
  pattern?: unknown;
}

// Lines that set conditions must come from who they claim to. What the kernel printed has transport
// kernel and facility 0; a process writing to /dev/kmsg gets facility 1, and `logger -p kern.err -t
// kernel` gets facility 0 on another transport. systemd's own lines come from PID 1: journald sets _PID
// from the sender's credentials, while any process may send SYSLOG_IDENTIFIER=systemd. The shipped
// [source "kernel"] and [source "systemd"] match the same.
const KERNEL_MATCHES = ['_TRANSPORT=kernel', 'SYSLOG_FACILITY=0'];
const ONLY_FROM: Record<string, string[]> = { kernel: KERNEL_MATCHES, systemd: ['_PID=1'] };

export interface NpdLogConfig {
  source: JournalSourceSpec;
  conditions: LogConditionSpec[];
}

export function loadNpdConfig(file: string): NpdLogConfig {
  const fail = (where: string, what: string): never => {
    throw new AgentError('CONFIG_INVALID', `${file}: ${where}: ${what}`);
  };
  let doc: Record<string, unknown>;
  try {
    // Its rules set conditions that can end in a reboot: only root may have written it.
    checkFileOwnership(file);
    doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('CONFIG_INVALID', `${file}: cannot load node-problem-detector config: ${messageOf(err)}`);
  }
  const str = (v: unknown, where: string): string => (typeof v === 'string' && v !== '' ? v : fail(where, 'expected a non-empty string'));
  // lookback and delay only place the first read (a date), no timer waits on them: NPD's own configs with
  // lookbacks of months must load unmodified.
  const dur = (v: unknown, where: string, def: string): number => {
    try {
      return parseDuration(v === undefined ? def : str(v, where));
    } catch (err) {
      if (err instanceof ValueError) return fail(where, err.message);
      throw err;
    }
  };

  const plugin = str(doc.plugin, 'plugin');
  let matches: string[];
  if (plugin === 'kmsg') {
    matches = KERNEL_MATCHES;
  } else if (plugin === 'journald') {
    const pc = (doc.pluginConfig ?? {}) as Record<string, unknown>;
    const identifier = str(pc.source, 'pluginConfig.source');
    matches = [`SYSLOG_IDENTIFIER=${identifier}`, ...(ONLY_FROM[identifier] ?? [])];
  } else {
    return fail('plugin', `"${plugin}" is not supported (journald and kmsg are; filelog sources are read from the journal instead)`);
  }

  const conditions = (Array.isArray(doc.conditions) ? doc.conditions : []).map((c: Record<string, unknown>, i): LogConditionSpec => ({
    type: str(c.type, `conditions[${i}].type`),
    reason: str(c.reason, `conditions[${i}].reason`),
    message: str(c.message, `conditions[${i}].message`),
    // NPD keeps log conditions until it restarts; a reboot clearing them is the closest faithful behaviour.
    clearOnReboot: true,
  }));
  const declared = new Set(conditions.map((c) => c.type));

  const rules = (Array.isArray(doc.rules) ? doc.rules : fail('rules', 'expected an array')) as NpdRule[];
  const name = str(doc.source, 'source');
  const specs: RuleSpec[] = rules.map((r, i) => {
    const kind = r.type === 'temporary' || r.type === 'permanent' ? r.type : fail(`rules[${i}].type`, 'expected "temporary" or "permanent"');
    const condition = kind === 'permanent' ? str(r.condition, `rules[${i}].condition`) : '';
    if (kind === 'permanent' && !declared.has(condition)) fail(`rules[${i}].condition`, `"${condition}" is not in "conditions"`);
    let pattern;
    try {
      pattern = compilePattern(str(r.pattern, `rules[${i}].pattern`));
    } catch (err) {
      if (err instanceof PatternError) return fail(`rules[${i}].pattern`, err.message);
      throw err;
    }
    return { name: `${i}-${str(r.reason, `rules[${i}].reason`)}`, kind, condition, reason: r.reason as string, pattern, count: 1, windowMs: 0 };
  });

  return {
    source: {
      name: `npd:${name}`,
      matches,
      bufferSize: typeof doc.bufferSize === 'number' && doc.bufferSize > 0 ? doc.bufferSize : 10,
      lookbackMs: dur(doc.lookback, 'lookback', '0s'),
      delayMs: dur(doc.delay, 'delay', '0s'),
      rules: specs,
    },
    conditions,
  };
}
