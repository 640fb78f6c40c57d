// The daemon's crash policy, in one place. Work nobody awaits (a promise started and left, a timer's or
// setImmediate's callback that can throw) runs through background(): a failure is logged with the stable
// code BACKGROUND_FAILED and the daemon goes on. Whatever still escapes is a bug; the process-level
// handlers log it with the code CRASH and exit EXIT_CRASH on purpose, so systemd restarts a daemon whose
// state is known instead of leaving one whose state is not.
import { messageOf } from '../errors';
import type { LogFields } from '../types';

/** sysexits' EX_SOFTWARE: an internal error; the unit's Restart=always starts the agent again. */
export const EXIT_CRASH = 70;

type Report = (message: string, fields: LogFields) => void;

// Until the daemon's logger is known, failures go to stderr as a JSON line like the logger's own.
const toStderr: Report = (message, fields) => {
  process.stderr.write(`${JSON.stringify({ level: 'error', message, ...fields })}\n`);
};
let report: Report = toStderr;

/** Where background failures and crashes are logged; the daemon passes its logger once it has one. */
export function reportFailuresTo(log: { error(message: string, fields?: LogFields): void } | undefined): void {
  report = log ? (message, fields) => log.error(message, fields) : toStderr;
}

/**
 * Runs `work` (sync or async) that no caller waits for. A throw or a rejection is logged as
 * "<what> failed: …" and swallowed; the promise returned always fulfils, so `.finally` chains are safe.
 */
export function background(what: string, work: () => unknown): Promise<void> {
  try {
    const result = work();
    if (result instanceof Promise) return result.then(() => undefined, (err: unknown) => failed(what, err));
  } catch (err) {
    failed(what, err);
  }
  return Promise.resolve();
}

function failed(what: string, err: unknown): void {
  try {
    report(`${what} failed: ${messageOf(err)}; the agent carries on`, { code: 'BACKGROUND_FAILED', task: what });
  } catch {
    // A logger that throws must not turn a handled failure into a crash.
  }
}

/** For the daemon: anything that escaped background() is logged and ends the process with EXIT_CRASH. */
export function installCrashHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
  const crash = (kind: string) => (err: unknown) => {
    try {
      const detail = err instanceof Error && err.stack ? err.stack : messageOf(err);
      report(`crashed on ${kind}: ${detail}; exiting with ${EXIT_CRASH} for systemd to restart the agent`, { code: 'CRASH' });
    } finally {
      exit(EXIT_CRASH);
    }
  };
  process.on('unhandledRejection', crash('an unhandled promise rejection'));
  process.on('uncaughtException', crash('an uncaught exception'));
  // Under systemd stdout and stderr are journald's stream socket. When journald stops it closes the
  // stream, and every later write there fails with EPIPE, emitted as 'error' on the stream: without a
  // listener that is an uncaught exception, and a journald restart would end the daemon. Output that
  // cannot be written is lost output, not a bug; the logger counts the entries it could not deliver.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}
