// `diagnose`: run every enabled local check once and print what was found.
import { createLogger } from '../outputs/log';
import { makePlan } from '../plan';
import { runCheck } from '../engine/run-check';
import { disruptionCheck } from '../repair/ladder/check';
import type { HostProbe } from '../sources/probes/probe';
import type { Check, CheckResult } from '../types';
import { loadNative } from '../system/native';
import { colourStatus, formatTable } from './table';

export interface DiagnoseOptions {
  configDir?: string;
  json?: boolean;
  /** The host probes, when not the registry's own (a test adds one). */
  probes?: readonly HostProbe[];
}

/** Returns the exit code: 0 healthy, 1 a problem or an undecided check. */
export async function diagnose(options: DiagnoseOptions, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const log = createLogger('error', undefined);
  // Plugins run once here; their conditions and events are not reported anywhere but this table.
  const plan = makePlan(options.configDir, { log, sink: { condition() {}, event() {} }, native: loadNative, probes: options.probes });
  const { config } = plan.loaded;
  const of = (source: string): Check[] => plan.sources.get(source)?.diagnose?.() ?? [];
  // The table's order: the host first, then what reads it (journal, runtime, disruption), plugins last.
  const checks = [...of('probes'), ...of('journal'), ...of('runtime'), disruptionCheck(config, log), ...of('plugins')];
  const results = (await Promise.all(checks.map((check) => runCheck(check)))).flat();

  if (options.json) {
    // Every line has the same fields; a finding about the check as a whole has an empty subject.
    for (const r of results) out.write(`${JSON.stringify({ ...r, subject: r.subject ?? '' })}\n`);
  } else {
    out.write(`${render(results, out.isTTY === true)}\n`);
  }
  return results.some((r) => r.status === 'problem' || r.status === 'unknown') ? 1 : 0;
}

function render(results: CheckResult[], colour: boolean): string {
  const rows = results.map((r) => [
    colourStatus(r.status, colour),
    `${r.component}/${r.check}`,
    r.subject ?? '',
    r.reason,
    r.message,
  ]);
  const counts = ['problem', 'warning', 'unknown', 'ok']
    .map((s) => `${results.filter((r) => r.status === s).length} ${s}`)
    .join(', ');
  return `${formatTable(['STATUS', 'CHECK', 'SUBJECT', 'REASON', 'MESSAGE'], rows)}\n\n${results.length} findings: ${counts}`;
}
