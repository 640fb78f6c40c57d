// Shared by the plugin tests: the fixture scripts copied where the agent accepts them (root-owned, 0755,
// in a directory only root can write: the checkout's own modes may differ), /proc inspection, and
// recorders for logs and reports.
import { chmodSync, chownSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger, ConditionReport, EventReport, ProblemSink } from '../../../src/types';

export { npdModuleDir } from '../../helpers/npd-module';

export const FIXTURES = join(__dirname, '../../fixtures/plugins');

export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A fresh root-owned 0755 directory holding every fixture script as root-owned 0755; removed when t ends. */
export function pluginDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-plugins-'));
  chmodSync(dir, 0o755);
  for (const name of readdirSync(FIXTURES)) {
    if (!name.endsWith('.sh')) continue;
    const dest = join(dir, name);
    copyFileSync(join(FIXTURES, name), dest);
    chownSync(dest, 0, 0);
    chmodSync(dest, 0o755);
  }
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface ProcInfo {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
}

/** Every process on the host (this PID namespace), from /proc/<pid>/stat. */
export function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.push({ pid: Number(name), state: fields[0] as string, ppid: Number(fields[1]), pgrp: Number(fields[2]) });
  }
  return out;
}

export function inGroup(pgid: number): ProcInfo[] {
  return processes().filter((p) => p.pgrp === pgid);
}

export function alive(pid: number): ProcInfo | undefined {
  return processes().find((p) => p.pid === pid);
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RecordingLogger extends Logger {
  lines: string[];
}

export function recordingLogger(): RecordingLogger {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => {
    lines.push(`${level}: ${message}`);
  };
  return {
    lines,
    error: at('error'),
    warning: at('warning'),
    info: at('info'),
    debug: at('debug'),
    setLevel: () => undefined,
    close: () => undefined,
  };
}

export interface RecordingSink extends ProblemSink {
  conditions: ConditionReport[];
  events: EventReport[];
}

export function recordingSink(): RecordingSink {
  const conditions: ConditionReport[] = [];
  const events: EventReport[] = [];
  return {
    conditions,
    events,
    condition: (r) => conditions.push(r),
    event: (e) => events.push(e),
  };
}
