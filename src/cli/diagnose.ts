// `diagnose`: run every enabled local check once and print what was found.
import { createLogger } from '../outputs/log';
import { makePlan } from '../plan';
import { runCheck } from '../engine/run-check';
import { journalCheck } from '../sources/journal/check';
import { runtimeChecks } from '../repair/checks';
import { runtimeProbes } from '../sources/runtime/probes';
import { disruptionCheck } from '../repair/ladder/check';
import type { CheckResult } from '../types';
import { loadNative } from '../system/native';
import { colourStatus, formatTable } from './table';

export interface DiagnoseOptions {
  configDir?: string;
  json?: boolean;
}

/** Returns the exit code: 0 healthy, 1 a problem or an undecided check. */
export async function diagnose(options: DiagnoseOptions, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const log = createLogger('error', undefined);
  // Plugins run once here; their conditions and events are not reported anywhere but this table.
  const plan = makePlan(options.configDir, { log, sink: { condition() {}, event() {} }, native: loadNative });
  const { config } = plan.loaded;
  const checks = plan.checks.map(({ check }) => check);
  if (plan.rules) checks.push(journalCheck(plan.rules, config.journal, loadNative));
  checks.push(...runtimeChecks(config, () => runtimeProbes(config)));
  checks.push(disruptionCheck(config, log));
  if (plan.plugins) checks.push(...plan.plugins.checks());
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
