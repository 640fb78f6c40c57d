// Nodes in a box for end-to-end tests: this host's root filesystem booted as a systemd machine by
// scripts/box/box.sh (see docs/testing.md). A host that cannot run boxes makes Box.up throw with the
// reason, so a missing prerequisite fails the test instead of skipping it.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export const boxScript = join(__dirname, '../../scripts/box/box.sh');
const kernelLineScript = join(__dirname, '../../scripts/box/kernel-line.sh');

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Extra environment for the command (it starts from a clean root environment). */
  env?: Record<string, string>;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
  /** The command is killed after this long (default 60 s). */
  timeoutMs?: number;
}

/** What `box.sh status` reports about a running box. */
export interface BoxInfo {
  leader: number;
  nspawn: number;
  root: string;
  console: string;
  cgroups: string[];
}

/** The part of a tap test a box needs: somewhere to register its teardown. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

let counter = 0;

/**
 * Runs a bash script (box.sh, vm.sh); resolves with the exit code and output, rejects only when it
 * could not run or timed out.
 */
export function runScript(script: string, args: string[], input?: string | Buffer, timeoutMs = 60_000): Promise<ExecResult> {
  const what = `${basename(script)} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
      // A command still running inside the box or VM holds the pipes open after the script is gone; stop
      // waiting for them (the teardown ends the command).
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, 2000).unref();
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const out = Buffer.concat(stdout).toString('utf8');
      const err = Buffer.concat(stderr).toString('utf8');
      if (code === null) {
        const why = timedOut ? `timed out after ${timeoutMs} ms` : `killed by ${signal}`;
        reject(new Error(`${what}: ${why}; stderr: ${err.trim()}`));
        return;
      }
      resolve({ code, stdout: out, stderr: err });
    });
    // A command that exits without reading its stdin closes the pipe; that is not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** Runs box.sh (see runScript). */
export function runBoxScript(args: string[], input?: string | Buffer, timeoutMs = 60_000): Promise<ExecResult> {
  return runScript(boxScript, args, input, timeoutMs);
}

export class Box {
  private stopped = false;

  private constructor(
    readonly name: string,
    /** Updated by boot(): a box booted again has a new leader and nspawn. */
    public info: BoxInfo,
    /** Milliseconds from `box.sh up` to systemd reporting the box running. */
    readonly bootMs: number,
  ) {}

  /**
   * Boots a box named `<prefix>-<pid>-<n>` and powers it off when test `t` ends. Waits until the
   * box's systemd reports running (or degraded).
   */
  static async up(t: TeardownHost, prefix: string): Promise<Box> {
    const name = `${prefix}-${process.pid}-${++counter}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63);
    // Registered first: box.sh removes a box that failed to boot, but not one whose `up` was interrupted.
    let box: Box | undefined;
    t.teardown(() => (box ? box.down() : runBoxScript(['down', name])));
    const started = Date.now();
    const up = await runBoxScript(['up', name], undefined, 120_000);
    if (up.code !== 0) throw new Error(`box ${name} did not come up (box.sh exit ${up.code}): ${up.stderr.trim()}`);
    const bootMs = Date.now() - started;
    const status = await runBoxScript(['status', name]);
    if (status.code !== 0) throw new Error(`box ${name}: box.sh status failed: ${status.stderr.trim()}`);
    box = new Box(name, parseStatus(status.stdout), bootMs);
    return box;
  }

  /** Runs `cmd` inside the box as root; a non-zero exit is returned, not thrown. */
  async exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const env = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['--setenv', `${k}=${v}`]);
    const res = await runBoxScript(['exec', this.name, ...env, '--', ...cmd], opts.input, opts.timeoutMs);
    // 125 with box's own message: the box could not be entered (the command did not run).
    if (res.code === 125 && res.stderr.startsWith('box: ')) throw new Error(res.stderr.trim());
    return res;
  }

  /** Runs `cmd` inside the box and returns its stdout; throws with its stderr when it exits non-zero. */
  async check(cmd: string[], opts: ExecOptions = {}): Promise<string> {
    const res = await this.exec(cmd, opts);
    if (res.code !== 0) {
      throw new Error(`box ${this.name}: ${cmd.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
    }
    return res.stdout;
  }

  /** Copies the host file `src` to `dest` in the box (a path, or an existing directory). */
  async copyIn(src: string, dest: string): Promise<void> {
    const res = await runBoxScript(['cp', this.name, src, dest]);
    if (res.code !== 0) throw new Error(`box ${this.name}: copying ${src} to ${dest} failed: ${res.stderr.trim()}`);
  }

  /**
   * Waits until the box has stopped on its own (a reboot or poweroff from inside ends systemd-nspawn)
   * and says which: nspawn prints "Container NAME is being rebooted." when it exits with status 133.
   */
  async waitStopped(timeoutMs = 60_000): Promise<'reboot' | 'poweroff'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        process.kill(this.info.nspawn, 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        const log = readFileSync(this.info.console, 'utf8');
        return log.lastIndexOf(`Container ${this.name} is being rebooted.`) > log.lastIndexOf('box: booting') ? 'reboot' : 'poweroff';
      }
      if (Date.now() > deadline) throw new Error(`box ${this.name} still running after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Boots a stopped box again on its own overlay (`box.sh boot`); returns how long that took (ms). */
  async boot(): Promise<number> {
    const started = Date.now();
    const res = await runBoxScript(['boot', this.name], undefined, 120_000);
    if (res.code !== 0) throw new Error(`box ${this.name} did not boot again (box.sh exit ${res.code}): ${res.stderr.trim()}`);
    const ms = Date.now() - started;
    const status = await runBoxScript(['status', this.name]);
    if (status.code !== 0) throw new Error(`box ${this.name}: box.sh status failed: ${status.stderr.trim()}`);
    this.info = parseStatus(status.stdout);
    return ms;
  }

  /** Powers the box off and removes its overlay, cgroups and state. Safe to call twice. */
  async down(): Promise<void> {
    if (this.stopped) return;
    const res = await runBoxScript(['down', this.name], undefined, 120_000);
    if (res.code !== 0) throw new Error(`box ${this.name}: teardown failed: ${res.stderr.trim()}`);
    this.stopped = true;
  }
}

function parseStatus(text: string): BoxInfo {
  const info: BoxInfo = { leader: 0, nspawn: 0, root: '', console: '', cgroups: [] };
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'leader' || key === 'nspawn') info[key] = Number(value);
    else if (key === 'root' || key === 'console') info[key] = value;
    else if (key === 'cgroup') info.cgroups.push(value);
  }
  if (!(info.leader > 0 && info.nspawn > 0 && info.root && info.cgroups.length > 0)) {
    throw new Error(`box.sh status printed an incomplete status: ${JSON.stringify(text)}`);
  }
  return info;
}

/** Writes `message` into the box's system journal as a kernel line (scripts/box/kernel-line.sh). */
export async function writeKernelLine(box: Box, message: string): Promise<void> {
  await box.check(['bash', '-s', '--', message], { input: readFileSync(kernelLineScript) });
}
