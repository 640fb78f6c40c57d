// What one permanent rule says about its condition after a run, with node-problem-detector's rules
// (custom_plugin_monitor.go generateStatus), so conditions read as they did under NPD:
//   → True:             the rule's reason and the plugin's output;
//   True → False:       the condition's default reason and message (restored);
//   → Unknown:          the default reason with the plugin's output (it says what went wrong);
//   True, still True:   a new reason always updates; new output only with message change updates on;
//   otherwise:          unchanged (an Unknown keeps its first message).
// Each rule reports on its own; the condition table merges rules of one condition worst-first, which
// is what stops NPD's flapping between rules (#566).
import type { ConditionStatus } from '../../types';
import type { PluginStatus } from './runner';

export interface RuleCondition {
  status: ConditionStatus;
  reason: string;
  message: string;
}

const STATUS: Record<PluginStatus, ConditionStatus> = { ok: 'False', problem: 'True', unknown: 'Unknown' };

export function nextCondition(
  current: RuleCondition,
  result: { status: PluginStatus; output: string },
  ruleReason: string,
  defaults: { reason: string; message: string },
  messageChangeUpdates: boolean,
): RuleCondition {
  const status = STATUS[result.status];
  const fallback = (): RuleCondition => ({
    status,
    reason: defaults.reason,
    message: status === 'False' ? defaults.message : result.output,
  });
  if (current.status !== status) return status === 'True' ? { status, reason: ruleReason, message: result.output } : fallback();
  if (status === 'True' && (current.reason !== ruleReason || (messageChangeUpdates && current.message !== result.output))) {
    return { status, reason: ruleReason, message: result.output };
  }
  return current;
}
