// A check looks at one aspect of the host and reports findings; `runCheck` times it, gives it a deadline
// and turns a thrown error or a passed deadline into an "unknown" finding, so one broken or hung check
// never hides the others.
import { formatDuration } from '../config/values';
import { messageOf } from '../errors';
import { DEFAULT_CHECK_DEADLINE_MS, severityOf, type Check, type CheckResult, type Finding } from '../types';

// Runs that passed their deadline and have not ended. A hung run (a stuck read, a lost promise) is not
// started again beside itself: the next run reports it instead of piling up more of the same work.
const hung = new WeakMap<Check, number>();

export async function runCheck(check: Check): Promise<CheckResult[]> {
  const started = performance.now();
  const deadlineMs = check.deadlineMs ?? DEFAULT_CHECK_DEADLINE_MS;
  let findings: Finding[];
  const hungSince = hung.get(check);
  if (hungSince !== undefined) {
    const forMs = Date.now() - hungSince;
    findings = [
      {
        status: 'unknown',
        reason: 'CheckStillRunning',
        message: `an earlier run has not finished after ${formatDuration(Math.round(forMs / 1000) * 1000)}; not started again until it does`,
      },
    ];
  } else {
    findings = await withDeadline(check, deadlineMs);
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

function withDeadline(check: Check, deadlineMs: number): Promise<Finding[]> {
  const startedAt = Date.now();
  let run: Promise<Finding[]>;
  try {
    run = check.run();
  } catch (err) {
    run = Promise.reject(err);
  }
  const failed = (err: unknown): Finding[] => [{ status: 'unknown', reason: 'CheckFailed', message: `check could not run: ${messageOf(err)}` }];
  return new Promise((resolve) => {
    // Not unref'ed: a one-shot `diagnose` must wait for the verdict rather than exit with a run pending.
    const timer = setTimeout(() => {
      hung.set(check, startedAt);
      resolve([
        {
          status: 'unknown',
          reason: 'CheckTimedOut',
          message: `check did not finish within ${formatDuration(deadlineMs)}; its result is unknown`,
        },
      ]);
    }, deadlineMs);
    run.then(
      (findings) => resolve(findings),
      (err: unknown) => resolve(failed(err)),
    ).finally(() => {
      clearTimeout(timer);
      hung.delete(check);
    });
  });
}
