// Turns one run of a host probe into its opinion on the probe's NodeCondition: True while any finding
// is a problem (warnings are for status, metrics and the log, not for the Node), Unknown when the probe
// itself could not run, False otherwise. Hysteresis is the condition table's (set_after/clear_after).
import { UNDECIDED_REASONS, type CheckResult, type ConditionReport } from '../types';

/** Problem messages named in one condition message; the rest are counted (the Node object stays small). */
const MAX_NAMED = 3;

export interface ProbeCondition {
  /** The check's id, e.g. "host/disk"; the report's source is "probe/<id>". */
  checkId: string;
  type: string;
}

export function probeConditionSource(checkId: string): string {
  return `probe/${checkId}`;
}

export function probeConditionReport(probe: ProbeCondition, results: readonly CheckResult[]): ConditionReport {
  const source = probeConditionSource(probe.checkId);
  const problems = results.filter((r) => r.status === 'problem');
  if (problems.length > 0) {
    const named = problems.slice(0, MAX_NAMED).map((r) => (r.subject ? `${r.subject}: ${r.message}` : r.message));
    const more = problems.length > MAX_NAMED ? `; and ${problems.length - MAX_NAMED} more` : '';
    return { source, type: probe.type, status: 'True', reason: problems[0]!.reason, message: named.join('; ') + more };
  }
  // runCheck turns a probe that threw or hung into this one finding: the node's state is not known, not fine.
  const failed = results.find((r) => UNDECIDED_REASONS.has(r.reason));
  if (failed) return { source, type: probe.type, status: 'Unknown', reason: failed.reason, message: failed.message };
  return { source, type: probe.type, status: 'False', reason: '', message: '' };
}
