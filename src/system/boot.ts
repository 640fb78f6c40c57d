// This boot's identity, as the journal records it (_BOOT_ID). Why not just /proc: docs/journal.md,
// "This boot".
import { readFileSync } from 'node:fs';
import type { NativeJournal, NativeLoader } from './native';

const PROC_BOOT_ID = '/proc/sys/kernel/random/boot_id';

/** This boot's start time in ms since the epoch, from the kernel's `btime` in /proc/stat (whole seconds). */
export function bootTimeMs(procStat = '/proc/stat'): number {
  const text = readFileSync(procStat, 'utf8');
  const m = /^btime (\d+)$/m.exec(text);
  if (!m) throw new Error(`${procStat} has no "btime" line; cannot tell when this boot started`);
  return Number(m[1]) * 1000;
}

export interface BootIdentity {
  /** 32 hex digits, no dashes (the journal's _BOOT_ID form). */
  id: string;
  /**
   * proc: /proc, confirmed by the journal holding entries of that boot; journal: the newest journal
   * entry's boot, because the journal holds none of /proc's; proc-only: /proc, the journal could not
   * tell (none, empty, unreadable, or its newest entry predates this boot).
   */
  source: 'proc' | 'journal' | 'proc-only';
  /** What /proc shows this process; differs from `id` only with source journal. */
  procId: string;
}

export interface BootIdOptions {
  /** The native addon; without it (it cannot be loaded) /proc is all there is. */
  native: NativeLoader;
  procPath?: string;
  /** A journal directory instead of the local system journal (tests). */
  directory?: string;
  /** This boot's start (ms since the epoch); an entry older than it is from an earlier boot. */
  bootTimeMs?: number;
}

/** sd-journal cursors are `s=…;i=…;b=<boot ID>;m=<monotonic>;t=<realtime µs>;x=…` (hex values). */
function cursorFields(cursor: string): { bootId: string; realtimeUs: number } | undefined {
  const f = new Map(cursor.split(';').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const bootId = f.get('b') ?? '';
  const t = f.get('t') ?? '';
  if (!/^[0-9a-f]{32}$/.test(bootId) || !/^[0-9a-f]{1,16}$/.test(t)) return undefined;
  return { bootId, realtimeUs: parseInt(t, 16) };
}

/**
 * The boot ID journald stamps on this boot's entries. Normally /proc's; but a process can see another
 * /proc than journald does (systemd-nspawn mounts the container's boot ID over the file, and a unit
 * with ProtectKernelTunables= or ProtectControlGroups= gets a /proc without that mount), and then the
 * journal is the authority: the entries' boot is what rules and clear-on-reboot compare with.
 */
export function resolveBootId(opts: BootIdOptions): BootIdentity {
  const procId = readFileSync(opts.procPath ?? PROC_BOOT_ID, 'utf8').trim().replace(/-/g, '');
  const open = (matches: Array<Record<string, string>>): NativeJournal =>
    new (opts.native().Journal)({ ...(opts.directory !== undefined ? { directory: opts.directory } : {}), matches, maxMessageBytes: 1 });
  const tail = (matches: Array<Record<string, string>>): string | null => {
    const j = open(matches);
    try {
      return j.seekTail();
    } finally {
      j.close();
    }
  };
  try {
    if (tail([{ _BOOT_ID: procId }]) !== null) return { id: procId, source: 'proc', procId };
    const newest = tail([]);
    const c = newest === null ? undefined : cursorFields(newest);
    // Old files but no entry of this boot (journald's Storage=none since) say nothing about this boot.
    if (!c || c.realtimeUs / 1000 < (opts.bootTimeMs ?? bootTimeMs())) return { id: procId, source: 'proc-only', procId };
    return { id: c.bootId, source: 'journal', procId };
  } catch {
    // No journal to ask (no addon, no files readable): /proc is all there is.
    return { id: procId, source: 'proc-only', procId };
  }
}

let cached: BootIdentity | undefined;

/** resolveBootId() for the local system, once per process: the boot cannot change while it runs. */
export function currentBoot(native: NativeLoader): BootIdentity {
  cached ??= resolveBootId({ native });
  return cached;
}

/** The boot ID in the journal's _BOOT_ID form (32 hex digits, no dashes). */
export function currentBootId(native: NativeLoader): string {
  return currentBoot(native).id;
}
