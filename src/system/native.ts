// The agent's native addon (src/native): sd_notify, the watchdog interval, structured journal entries,
// reading the journal (sd-journal), the kernel's clock discipline state (adjtimex) and returning freed
// C-heap memory to the kernel (malloc_trim).
// In the packages the addon sits beside the bundle; running from source it is the build's
// dist/node_health_native.node (npm run build:native).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, resolve } from 'node:path';
import { AgentError, messageOf } from '../errors';

/** What `new Journal()` opens: the local system journal by default, else a directory or explicit files. */
export interface NativeJournalOptions {
  directory?: string;
  files?: string[];
  /** OR of ANDs: [{ _TRANSPORT: 'kernel' }, { SYSLOG_IDENTIFIER: 'kubelet' }]; an empty object matches all. */
  matches: Array<Record<string, string>>;
  /** MESSAGE longer than this many bytes is cut (at a character boundary) and marked. */
  maxMessageBytes: number;
}

/** One `read()`: entries as columns (the journal reader turns them into objects). */
export interface NativeJournalBatch {
  /** Entries read; fewer than asked means the end of the journal for now. */
  count: number;
  /** MESSAGE per entry ('' when absent): invalid UTF-8 replaced by U+FFFD, over the limit cut and marked. */
  messages: string[];
  /** __REALTIME_TIMESTAMP per entry (µs). */
  realtimeUs: Float64Array;
  /** Four indices into `strings` per entry: SYSLOG_IDENTIFIER, _SYSTEMD_UNIT, _TRANSPORT, _BOOT_ID (0 = ''). */
  fields: Uint16Array;
  strings: string[];
  /** Entries skipped because their header could not be read. */
  unreadable: number;
}

/** An open sd-journal handle (src/native/journal_reader.cc). Calls throw Errors with `.errno` on failure. */
export interface NativeJournal {
  /** Next read starts after the entry at `cursor` (or the first one after where it was); false if it cannot be parsed. */
  seekCursor(cursor: string): boolean;
  /** Next read starts at the first entry at or after `usec` (realtime µs). */
  seekRealtime(usec: number): void;
  /** Next read starts after the newest matching entry, whose cursor is returned; null (start at the head) when there is none. */
  seekTail(): string | null;
  /** Up to `max` (1-10000) entries after the current position. */
  read(max: number): NativeJournalBatch;
  /** Cursor of the entry read last; null before any. */
  cursor(): string | null;
  /** sd_journal_get_fd: the inotify fd; throws when inotify cannot be set up (EMFILE: instances exhausted). */
  fd(): number;
  /** sd_journal_process: 0 nothing new, 1 entries appended, 2 files added or removed. */
  process(): number;
  /** When the journal must be processed without an event (CLOCK_MONOTONIC µs; network file systems), or -1. */
  timeoutUsec(): number;
  /** uv_poll on the inotify fd: onChange(sd_journal_process() result, or a negative errno) on each wake-up. */
  watch(onChange: (change: number) => void): void;
  unwatch(): void;
  /** Stops watching, closes files and the inotify fd; safe to repeat. */
  close(): void;
}

/** The kernel's clock discipline state, as adjtimex(2) with modes 0 reads it (NTP daemons write it). */
export interface NativeTimex {
  /** adjtimex's return value: 0 TIME_OK, 1 TIME_INS, 2 TIME_DEL, 3 TIME_OOP, 4 TIME_WAIT, 5 TIME_ERROR (not synchronised). */
  state: number;
  /** STA_* bits; STA_UNSYNC (0x40) is set from boot until an NTP daemon synchronises the clock. */
  status: number;
  /** Offset the kernel's PLL still has to slew away, in ns (daemons that steer the frequency leave it 0). */
  offsetNs: number;
  /** Frequency correction in ppm; 0 on a clock no daemon has ever trained. */
  frequencyPpm: number;
  /** Upper bound of the clock's error in µs: the kernel adds 500 µs every second until a daemon sets it again; at 16 s it sets STA_UNSYNC. */
  maxErrorUs: number;
  /** The daemon's estimate of the clock's error in µs (16 s from boot until a daemon sets it). */
  estErrorUs: number;
  /** PLL time constant. */
  constant: number;
  /** µs per clock tick. */
  tickUs: number;
  /** TAI − UTC in seconds, as a daemon set it (0 when never set). */
  taiS: number;
}

export interface Native {
  /** sd_notify(3): true when NOTIFY_SOCKET was set and the message sent; throws when sending failed. */
  notify(state: string): boolean;
  /** The watchdog interval the service manager set for this process in µs, or 0 when it is off. */
  watchdogUsec(): number;
  /** One journal entry; names are journald field names (MESSAGE, PRIORITY, NODE_HEALTH_CHECK, ...). */
  journalSend(fields: Record<string, string>): void;
  /** Opens a journal; throws with `.errno` when it cannot be opened or a match is invalid. */
  Journal: new (options: NativeJournalOptions) => NativeJournal;
  /** 0 when sd-journal can open the file, else the errno it fails with (EBADMSG, ENODATA, ... for a corrupt file). */
  journalProbe(path: string): number;
  /** Reads the kernel's clock state (never changes it); throws with `.errno` (EPERM: a seccomp filter denies adjtimex). */
  adjtimex(): NativeTimex;
  /** malloc_trim(3): returns the C heap's free memory to the kernel; true when some was returned (false without glibc). */
  trimMemory(): boolean;
}

/**
 * The addon as the entry point (cli/) hands it to what needs it: loadNative, called when first needed,
 * so a host without the addon still runs everything that does not need it.
 */
export type NativeLoader = () => Native;

const ADDON = 'node_health_native.node';
const EXPORTS = ['notify', 'watchdogUsec', 'journalSend', 'Journal', 'journalProbe', 'adjtimex', 'trimMemory'] as const;

let cached: Native | undefined;

/** Where the addon may be, in order: beside the running bundle, then (running from source) the build output. */
function addonCandidates(): string[] {
  const paths = [join(__dirname, ADDON)];
  // From source this file is src/system/native.ts; the bundle is a .js file.
  if (extname(__filename) === '.ts') paths.push(resolve(__dirname, '../../dist', ADDON));
  return paths;
}

export function loadNative(): Native {
  if (cached) return cached;
  // createRequire keeps the bundler from resolving the path at build time (the addon is not bundled).
  const load = createRequire(__filename);
  const tried: string[] = [];
  for (const path of addonCandidates()) {
    if (!existsSync(path)) {
      tried.push(`${path} (not found)`);
      continue;
    }
    let mod: Record<string, unknown>;
    try {
      mod = load(path) as Record<string, unknown>;
    } catch (err) {
      tried.push(`${path} (${messageOf(err).split('\n')[0]})`);
      continue;
    }
    const missing = EXPORTS.filter((name) => typeof mod[name] !== 'function');
    if (missing.length > 0) {
      tried.push(`${path} (not this agent's addon: no ${missing.join(', ')})`);
      continue;
    }
    cached = mod as unknown as Native;
    return cached;
  }
  throw new AgentError(
    'NATIVE_UNAVAILABLE',
    `native addon could not be loaded from ${tried.join('; ')}; run \`npm run build:native\` (from source) or reinstall the package`,
  );
}

