// Starts the built daemon (`run`) as a child process with its own config, state and runtime directories.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configDir } from './tmp';

export const bin = join(__dirname, '../../dist/node-health-agent.js');

export interface Daemon {
  child: ChildProcess;
  dir: string;
  configDir: string;
  socket: string;
  stderr(): string;
  exited: Promise<number | null>;
  status(): Record<string, unknown> & { config: { generation: number; lastReload: { ok: boolean; error?: string } | null } };
}

/** A config directory whose state and runtime directories live in a fresh temp dir. */
export function daemonConfig(extra = ''): { configDir: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'nha-daemon-'));
  const cfg = configDir({
    '10-paths.ini': `[agent]\nstate_dir = ${dir}/state\nruntime_dir = ${dir}/run\n${extra}`,
  });
  return { configDir: cfg, dir };
}

export async function startDaemon(
  t: { teardown(fn: () => unknown): void },
  opts: { env?: NodeJS.ProcessEnv; configDir?: string; dir?: string } = {},
): Promise<Daemon> {
  const made = opts.configDir && opts.dir ? { configDir: opts.configDir, dir: opts.dir } : daemonConfig();
  const child = spawn(process.execPath, [bin, 'run', '--config-dir', made.configDir], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const socket = join(made.dir, 'run', 'agent.sock');
  const deadline = Date.now() + 10_000;
  while (!(await answers(socket))) {
    if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`daemon did not answer on ${socket} within 10 s: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    dir: made.dir,
    configDir: made.configDir,
    socket,
    stderr: () => err,
    exited,
    status() {
      const res = spawnSync(process.execPath, [bin, 'status', '--json', '--socket', socket], { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`status failed (${res.status}): ${res.stderr}`);
      return JSON.parse(res.stdout);
    },
  };
}

/** Whether something accepts connections on the socket (a stale socket file refuses them). */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
