// `diagnose`: run every enabled local check once and print what was found.
import { loadConfig } from '../config/load';
import { runCheck } from '../sources/check';
import { buildRuleSet } from '../engine/rules/rule-set';
import { enabledChecks } from '../sources/checks';
import { journalCheck } from '../sources/journal/check';
import { PluginMonitor } from '../sources/plugins/monitor';
import { createLogger } from '../outputs/log';
import { runtimeChecks } from '../repair/checks';
import { disruptionCheck } from '../repair/ladder/check';
import type { CheckResult } from '../types';
import { colourStatus, formatTable } from './table';

export interface DiagnoseOptions {
  configDir?: string;
  json?: boolean;
}

/** Returns the exit code: 0 healthy, 1 a problem or an undecided check. */
export async function diagnose(options: DiagnoseOptions, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const loaded = loadConfig(options.configDir, { required: options.configDir !== undefined });
  const checks = enabledChecks(loaded.config).map(({ check }) => check);
  if (loaded.config.journal.enabled) checks.push(journalCheck(buildRuleSet(loaded), loaded.config.journal));
  checks.push(...runtimeChecks(loaded.config));
  checks.push(disruptionCheck(loaded.config, createLogger('error', undefined)));
  if (loaded.config.plugins.enabled) {
    // Plugins run once here; their conditions and events are not reported anywhere but this table.
    const quiet = { condition() {}, event() {} };
    checks.push(...PluginMonitor.create(loaded, createLogger('error', undefined), quiet).checks());
  }
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
