// `diagnose`: run every enabled local check once and print what was found.
import { loadConfig } from '../config/load';
import { runCheck } from '../sources/check';
import { enabledChecks } from '../sources/checks';
import type { CheckResult } from '../types';
import { colourStatus, formatTable } from './table';

export interface DiagnoseOptions {
  configDir?: string;
  json?: boolean;
}

/** Returns the exit code: 0 healthy, 1 a problem or an undecided check. */
export async function diagnose(options: DiagnoseOptions, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const { config } = loadConfig(options.configDir, { required: options.configDir !== undefined });
  const results = (await Promise.all(enabledChecks(config).map(({ check }) => runCheck(check)))).flat();

  if (options.json) {
    for (const r of results) out.write(`${JSON.stringify(r)}\n`);
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
