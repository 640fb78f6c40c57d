// A check looks at one aspect of the host and reports findings; `runCheck` times it and turns a thrown
// error into an "unknown" finding, so one broken check never hides the others.
import { messageOf } from '../errors';
import { severityOf, type CheckResult, type Finding } from '../types';

export interface Check {
  readonly component: string;
  readonly name: string;
  run(): Promise<Finding[]>;
}

export async function runCheck(check: Check): Promise<CheckResult[]> {
  const started = performance.now();
  let findings: Finding[];
  try {
    findings = await check.run();
  } catch (err) {
    findings = [{ status: 'unknown', reason: 'CheckFailed', message: `check could not run: ${messageOf(err)}` }];
  }
  const durationMs = Math.round((performance.now() - started) * 100) / 100;
  return findings.map((f) => ({
    component: check.component,
    check: check.name,
    ...f,
    severity: severityOf(f.status),
    durationMs,
  }));
}
