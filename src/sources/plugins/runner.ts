// Runs one plugin invocation the way node-problem-detector's protocol expects, without NPD's faults:
//   - argv only (no shell), in a session and process group of its own (spawn detached: setsid);
//   - stdout and stderr read up to 4 KiB each and the rest drained, so a chatty plugin never blocks;
//   - on timeout SIGKILL to the whole group; after any exit whatever is left in the group is killed too;
//   - the process is always reaped (libuv waits for every child), so no zombies pile up (NPD #726, #941);
//   - a process that does not die after SIGKILL (uninterruptible sleep, state D) is not waited for: the
//     run ends Unknown after the kill grace and `lingering` settles when it finally exits (NPD #1050);
//   - output kept open by an escaped descendant does not hold the result: after the exit it gets a short
//     drain, then the pipes are closed.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { formatDuration } from '../../config/values';
import { messageOf } from '../../errors';
import { inspectExecutable } from './executable';
import type { PluginStatus } from '../../types';
export type { PluginStatus };

/** NPD's maxCustomPluginBufferBytes: the most read of each of stdout and stderr. */
export const OUTPUT_CAP_BYTES = 4096;
/** How long output may still arrive after the plugin exited (held by a descendant that left its group). */
const DRAIN_MS = 100;

export interface RunSpec {
  path: string;
  args: string[];
  cwd: string;
  timeoutMs: number;
  killGraceMs: number;
  maxOutputLength: number;
  /** Aborting kills the run's process group at once (agent stopping). */
  signal?: AbortSignal;
  /** Told the pid (also the process group id) once the plugin has started. */
  onSpawn?: (pid: number) => void;
}

export interface RunOutcome {
  /** exit 0: ok; exit 1: problem; any other exit, a signal, a timeout or a failure to start: unknown. */
  status: PluginStatus;
  /** The message: stdout trimmed (or what went wrong), cut to maxOutputLength bytes. */
  output: string;
  /** How it ended, for status and logs: "exit 0", "signal SIGKILL", "not started", "still running". */
  exit: string;
  /** The start of stderr, trimmed. */
  stderr: string;
  timedOut: boolean;
  startedAt: Date;
  /** From spawn until the process was reaped (or until the run gave up on it). */
  durationMs: number;
  pid?: number;
  /** Present when the process outlived SIGKILL by the kill grace: settles once it has exited and been reaped. */
  lingering?: Promise<void>;
}

/** Runs the plugin once; never rejects. */
export function runPlugin(spec: RunSpec): Promise<RunOutcome> {
  const startedAt = new Date();
  const started = performance.now();
  const problem = inspectExecutable(spec.path);
  const notStarted = (message: string): RunOutcome => ({
    status: 'unknown',
    output: cut(message, spec.maxOutputLength),
    exit: 'not started',
    stderr: '',
    timedOut: false,
    startedAt,
    durationMs: 0,
  });
  if (problem) return Promise.resolve(notStarted(problem.message));

  let child: ChildProcessByStdio<null, Readable, Readable>;
  try {
    child = spawn(spec.path, spec.args, { cwd: spec.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // Arguments spawn refuses outright (e.g. a NUL byte).
    return Promise.resolve(notStarted(`cannot start plugin ${spec.path}: ${messageOf(err)}`));
  }
  return new Promise((resolve) => {
    const pid = child.pid;
    if (pid !== undefined) spec.onSpawn?.(pid);
    const stdout = capture(child.stdout);
    const stderr = capture(child.stderr);
    let timedOut = false;
    let killedFor = '';
    let finished = false;
    let exitText = '';
    let exitCode: number | null = null;
    let graceTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    let settleLingering: (() => void) | undefined;
    let reapedAt: number | undefined;

    const finish = (outcome: Omit<RunOutcome, 'startedAt' | 'durationMs' | 'stderr' | 'timedOut'>): void => {
      if (finished) return;
      finished = true;
      spec.signal?.removeEventListener('abort', onAbort);
      clearTimeout(timeoutTimer);
      clearTimeout(graceTimer);
      clearTimeout(drainTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        ...outcome,
        stderr: stderr.text().trim(),
        timedOut,
        startedAt,
        durationMs: Math.round(((reapedAt ?? performance.now()) - started) * 100) / 100,
      });
    };

    const judge = (): void => {
      let output = stdout.text().trim();
      let status: PluginStatus = exitCode === 0 ? 'ok' : exitCode === 1 ? 'problem' : 'unknown';
      if (killedFor !== '') {
        status = 'unknown';
        output = `${killedFor}, killed${output === '' ? '' : `; output: ${output}`}`;
      }
      finish({ status, output: cut(output, spec.maxOutputLength), exit: exitText, ...(pid !== undefined && { pid }) });
    };

    // On timeout (or when the caller aborts) the whole group is killed; a process that outlives SIGKILL
    // by the grace is given up on, not waited for.
    const kill = (why: string): void => {
      if (killedFor !== '') return;
      killedFor = why;
      clearTimeout(timeoutTimer);
      killGroup(pid);
      graceTimer = setTimeout(() => {
        const lingering = new Promise<void>((settle) => {
          settleLingering = settle;
        });
        finish({
          status: 'unknown',
          output: cut(
            `${why} and still alive ${formatDuration(spec.killGraceMs)} after SIGKILL (uninterruptible sleep?); not started again until it exits`,
            spec.maxOutputLength,
          ),
          exit: 'still running',
          lingering,
          ...(pid !== undefined && { pid }),
        });
      }, spec.killGraceMs);
    };
    const timeoutTimer = setTimeout(() => {
      timedOut = true;
      kill(`timed out after ${formatDuration(spec.timeoutMs)}`);
    }, spec.timeoutMs);
    const onAbort = (): void => kill('stopped by the agent');
    if (spec.signal?.aborted) onAbort();
    else spec.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err) => {
      // Only a failure to start comes here (we never signal the child through this object).
      if (pid !== undefined) return;
      exitText = 'not started';
      const { status, output, exit } = notStarted(`cannot start plugin ${spec.path}: ${messageOf(err)}`);
      finish({ status, output, exit });
    });

    child.on('exit', (code, signal) => {
      reapedAt = performance.now();
      exitCode = code;
      exitText = code !== null ? `exit ${code}` : `signal ${signal ?? 'unknown'}`;
      // A check leaves nothing behind: anything still in its group goes now. The group keeps its id
      // while any member lives, so this cannot hit an unrelated process.
      killGroup(pid);
      settleLingering?.();
      if (finished) return;
      clearTimeout(timeoutTimer);
      clearTimeout(graceTimer);
      drainTimer = setTimeout(judge, DRAIN_MS);
    });
    child.on('close', () => {
      if (exitText !== '') judge();
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone already.
  }
}

interface Captured {
  text(): string;
}

/** Keeps the first OUTPUT_CAP_BYTES and reads (discards) the rest so the writer never blocks on a full pipe. */
function capture(stream: NodeJS.ReadableStream): Captured {
  const chunks: Buffer[] = [];
  let kept = 0;
  stream.on('data', (chunk: Buffer) => {
    if (kept >= OUTPUT_CAP_BYTES) return;
    const part = chunk.subarray(0, OUTPUT_CAP_BYTES - kept);
    chunks.push(part);
    kept += part.length;
  });
  stream.on('error', () => undefined);
  return { text: () => decode(Buffer.concat(chunks), OUTPUT_CAP_BYTES) };
}

/** The first `max` bytes as UTF-8 text; a character the limit splits is left out. */
function decode(buf: Buffer, max: number): string {
  // StringDecoder holds back an incomplete trailing sequence instead of turning it into U+FFFD.
  return new StringDecoder('utf8').write(buf.subarray(0, max));
}

/** Cuts to at most `max` bytes of UTF-8 (NPD cuts bytes) without splitting a character. */
export function cut(text: string, max: number): string {
  const buf = Buffer.from(text, 'utf8');
  return buf.length <= max ? text : decode(buf, max);
}
