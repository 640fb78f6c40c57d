// The journal reader: entries from sd-journal (the native addon) handed on in batches. Wake-ups are
// event-driven (uv_poll on sd-journal's inotify fd); when inotify is unavailable it polls with back-off
// instead of spinning, and reopens the journal to pick up rotated files. Design and figures:
// docs/journal.md.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { AgentError, messageOf } from '../../errors';
import type { Native, NativeJournal, NativeJournalBatch } from '../../system/native';
import type { JournalReaderState } from '../../types';
export type { JournalReaderState };

export interface JournalEntry {
  /** MESSAGE; invalid UTF-8 replaced, cut to maxMessageBytes and marked "…[truncated N bytes]" (or "…[truncated]"). */
  message: string;
  /** SYSLOG_IDENTIFIER or ''. */
  identifier: string;
  /** _SYSTEMD_UNIT or ''. */
  unit: string;
  /** _TRANSPORT or ''. */
  transport: string;
  /** __REALTIME_TIMESTAMP (µs; fits a double exactly until year 2255). */
  realtimeUs: number;
  /** _BOOT_ID (32 hex) or ''. */
  bootId: string;
}

export interface JournalReaderOptions {
  /** The native addon (sd-journal). */
  native: Native;
  /** Open the system journal (default) or a directory / explicit files (tests, benchmarks). */
  directory?: string;
  files?: string[];
  /** Disjunction of conjunctions: [{_TRANSPORT:'kernel'}, {SYSLOG_IDENTIFIER:'kubelet'}] = kernel OR kubelet. Empty = everything. */
  matches: Array<Record<string, string>>;
  /** Where to start: after this cursor if it is valid, else at sinceUs (realtime µs), else the tail. */
  cursor?: string;
  sinceUs?: number;
  /** e.g. 16384 */
  maxMessageBytes: number;
  /** Entries per callback, e.g. 1000 (at most 10000). */
  batchSize: number;
  /** Problems worth a log line: a corrupt file skipped, falling back to polling, recovering. Each is said once. */
  onWarning?: (message: string) => void;
}

// sd_journal_process() results.
const SD_JOURNAL_INVALIDATE = 2;
// Polling back-off when inotify is unavailable: from 1 s while entries arrive, doubling to 30 s while
// none do; every 30 s the journal is reopened to try inotify again.
const POLL_MIN_MS = 1000;
const POLL_MAX_MS = 30_000;
// A file that fails to open this soon after it was last written may still be being created.
const YOUNG_FILE_MS = 10_000;
const MAX_BATCH = 10_000;
// journald's rule for match field names (sd_journal_add_match rejects others).
export const FIELD_NAME = /^[A-Z0-9_]+$/;

function invalid(message: string): AgentError {
  return new AgentError('CONFIG_INVALID', message);
}

function validate(opts: JournalReaderOptions): void {
  if (opts.directory !== undefined && opts.files !== undefined) {
    throw invalid('journal reader: give a directory or files, not both');
  }
  if (opts.directory !== undefined && (typeof opts.directory !== 'string' || opts.directory === '')) {
    throw invalid('journal reader: directory must be a path');
  }
  if (opts.files !== undefined && (!Array.isArray(opts.files) || opts.files.length === 0 || opts.files.some((f) => typeof f !== 'string' || f === ''))) {
    throw invalid('journal reader: files must be a non-empty list of journal file paths');
  }
  if (!Array.isArray(opts.matches)) throw invalid('journal reader: matches must be a list of { FIELD: value } objects');
  for (const group of opts.matches) {
    if (group === null || typeof group !== 'object' || Array.isArray(group)) {
      throw invalid('journal reader: each match must be an object of FIELD: value');
    }
    for (const [field, value] of Object.entries(group)) {
      if (!FIELD_NAME.test(field)) {
        throw invalid(`journal match field "${field}" is invalid: journal field names use only A-Z, 0-9 and _ (e.g. SYSLOG_IDENTIFIER, _TRANSPORT)`);
      }
      if (typeof value !== 'string') throw invalid(`journal match ${field} must have a string value`);
    }
  }
  if (!Number.isInteger(opts.maxMessageBytes) || opts.maxMessageBytes < 1) {
    throw invalid(`journal reader: maxMessageBytes must be a whole number of bytes ≥ 1, got ${opts.maxMessageBytes}`);
  }
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1 || opts.batchSize > MAX_BATCH) {
    throw invalid(`journal reader: batchSize must be a whole number from 1 to ${MAX_BATCH}, got ${opts.batchSize}`);
  }
  if (opts.sinceUs !== undefined && !(Number.isFinite(opts.sinceUs) && opts.sinceUs >= 0)) {
    throw invalid(`journal reader: sinceUs must be a realtime timestamp in µs, got ${opts.sinceUs}`);
  }
  if (opts.cursor !== undefined && typeof opts.cursor !== 'string') throw invalid('journal reader: cursor must be a string');
}

function toEntries(b: NativeJournalBatch): JournalEntry[] {
  const { messages, realtimeUs, fields, strings } = b;
  const out: JournalEntry[] = new Array<JournalEntry>(b.count);
  for (let i = 0; i < b.count; i++) {
    const f = i * 4;
    out[i] = {
      message: messages[i]!,
      identifier: strings[fields[f]!]!,
      unit: strings[fields[f + 1]!]!,
      transport: strings[fields[f + 2]!]!,
      realtimeUs: realtimeUs[i]!,
      bootId: strings[fields[f + 3]!]!,
    };
  }
  return out;
}

/** EBADMSG for 74: the name of a (positive) errno. libuv's names miss some that sd-journal returns. */
function errnoName(errno: number): string {
  const name = Object.entries(constants.errno).find(([, n]) => n === errno)?.[0];
  return name ?? `errno ${errno}`;
}

/** How many inotify watches an inotify fd of this process holds (from /proc/self/fdinfo), or undefined if unknown. */
function inotifyWatches(fd: number): number | undefined {
  try {
    return readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length;
  } catch {
    return undefined;
  }
}

export class JournalReader {
  private readonly native: Native;
  private journal: NativeJournal | undefined;
  /** Cursor of the last entry consumed (handed on, or the tail we started after). */
  private position: string | undefined;
  /** Where a fresh handle starts while nothing has been consumed: sinceUs, or the head (undefined). */
  private startUs: number | undefined;
  private positioned = false;
  private running = false;
  private stopped = false;
  private caughtUp = false;
  private pump: NodeJS.Immediate | undefined;
  /** The polling tick, or sd-journal's own re-check deadline in inotify mode. */
  private timer: NodeJS.Timeout | undefined;
  private pollMs = POLL_MIN_MS;
  private readAtLastTick = 0;
  private lastOpenMs = 0;
  /** The journal's directories (found at open) and their state (inode, mtime) when last looked at. */
  private dirList: JournalDir[] = [];
  private dirs = '';
  /** Journal files seen: true when sd-journal can open them, false when corrupt (counted once). */
  private readonly files = new Map<string, boolean>();
  private readonly st: JournalReaderState = {
    alive: false,
    lastEntryUs: null,
    lagMs: null,
    entriesRead: 0,
    lastError: null,
    waitMode: 'inotify',
    corruptFilesSkipped: 0,
    unreadableEntries: 0,
  };

  constructor(
    private readonly opts: JournalReaderOptions,
    private readonly onBatch: (entries: JournalEntry[], cursor: string) => void,
  ) {
    validate(opts);
    this.native = opts.native;
  }

  /** Opens the journal, positions it and reads from then on as entries arrive. Throws when it cannot open. */
  start(): void {
    if (this.stopped) throw new Error('journal reader: start() after stop()');
    if (this.running) return;
    const j = this.journal ?? this.open();
    this.journal = j;
    this.running = true;
    this.arm(j);
    this.schedulePump();
  }

  /** Closes the journal; no timers or fds are left. */
  stop(): void {
    this.stopped = true;
    this.running = false;
    if (this.pump) clearImmediate(this.pump);
    if (this.timer) clearTimeout(this.timer);
    this.pump = undefined;
    this.timer = undefined;
    this.journal?.close();
    this.journal = undefined;
  }

  state(): JournalReaderState {
    const s = { ...this.st };
    s.alive = this.running && this.journal !== undefined;
    s.lagMs = s.lastEntryUs === null ? null : this.caughtUp ? 0 : Math.max(0, Date.now() - s.lastEntryUs / 1000);
    return s;
  }

  /** Read everything currently available synchronously (for `diagnose` and benchmarks); returns count. */
  drain(): number {
    if (this.stopped) throw new Error('journal reader: drain() after stop()');
    const j = this.journal ?? this.open();
    this.journal = j;
    let total = 0;
    for (;;) {
      const n = this.readBatch(j);
      total += n;
      if (n < this.opts.batchSize) return total;
    }
  }

  // --- opening and positioning ----------------------------------------------------------------------

  private describe(): string {
    if (this.opts.files) return `journal files ${this.opts.files.join(', ')}`;
    if (this.opts.directory) return `journal directory ${this.opts.directory}`;
    return 'the system journal';
  }

  private open(): NativeJournal {
    let files: string[] | undefined;
    if (this.opts.files) {
      files = this.opts.files.filter((f) => this.probe(f, false));
      if (files.length === 0) {
        throw new AgentError('CONFIG_UNREADABLE', `none of the journal files can be read: ${this.opts.files.join(', ')}`);
      }
    }
    this.dirList = this.journalDirs();
    if (!this.opts.files) this.scanFiles();
    let j: NativeJournal;
    try {
      j = new this.native.Journal({
        directory: this.opts.directory,
        files,
        matches: this.opts.matches,
        maxMessageBytes: this.opts.maxMessageBytes,
      });
    } catch (err) {
      throw new AgentError('CONFIG_UNREADABLE', `cannot open ${this.describe()}: ${messageOf(err)}`, { cause: err });
    }
    try {
      this.seek(j);
    } catch (err) {
      j.close();
      throw new AgentError('CONFIG_UNREADABLE', `cannot position ${this.describe()}: ${messageOf(err)}`, { cause: err });
    }
    this.lastOpenMs = Date.now();
    this.dirs = this.dirState();
    return j;
  }

  private seek(j: NativeJournal): void {
    if (this.positioned) {
      // Reopening: continue after the last entry consumed, else where the first open started.
      if (this.position !== undefined) j.seekCursor(this.position);
      else if (this.startUs !== undefined) j.seekRealtime(this.startUs);
      return;
    }
    const { cursor, sinceUs } = this.opts;
    if (cursor !== undefined) {
      if (j.seekCursor(cursor)) {
        this.position = cursor;
        this.positioned = true;
        return;
      }
      this.warn(`journal cursor "${cursor}" is not valid; starting ${sinceUs !== undefined ? 'at the start point' : 'at the end of the journal'}`);
    }
    if (sinceUs !== undefined) {
      j.seekRealtime(sinceUs);
      this.startUs = sinceUs;
      this.positioned = true;
      return;
    }
    this.position = j.seekTail() ?? undefined;
    this.positioned = true;
  }

  /** Watches the inotify fd, or falls back to polling when sd-journal cannot get (or use) one. */
  private arm(j: NativeJournal): void {
    let problem: string | undefined;
    try {
      const fd = j.fd();
      if (inotifyWatches(fd) === 0) {
        problem = 'sd-journal could not add any inotify watch (fs.inotify.max_user_watches exhausted?)';
      }
    } catch (err) {
      const errno = (err as { errno?: number }).errno;
      problem = `${messageOf(err)}${errno === constants.errno.EMFILE ? ' (fs.inotify.max_user_instances exhausted?)' : ''}`;
    }
    if (problem === undefined) {
      j.watch((change) => this.onChange(change));
      if (this.st.waitMode !== 'inotify') this.warn('journal: reading is event-driven again');
      this.st.waitMode = 'inotify';
      this.armTimeout(j);
      return;
    }
    if (this.st.waitMode !== 'polling-backoff') {
      this.st.lastError = `no journal wake-ups: ${problem}`;
      this.warn(`journal: ${problem}; polling every ${POLL_MIN_MS / 1000}-${POLL_MAX_MS / 1000} s instead`);
    }
    this.st.waitMode = 'polling-backoff';
    this.scheduleTick();
  }

  // --- reading --------------------------------------------------------------------------------------

  /** The next batch from the journal; journal errors throw here, the consumer's own in deliver(). */
  private fetch(j: NativeJournal): { entries: JournalEntry[]; cursor: string } | undefined {
    const b = j.read(this.opts.batchSize);
    this.caughtUp = b.count < this.opts.batchSize;
    this.st.unreadableEntries += b.unreadable;
    if (b.count === 0) return undefined;
    const cursor = j.cursor();
    if (cursor === null) throw new Error('no cursor after reading entries');
    return { entries: toEntries(b), cursor };
  }

  private deliver(batch: { entries: JournalEntry[]; cursor: string }): void {
    const { entries, cursor } = batch;
    this.position = cursor;
    this.st.entriesRead += entries.length;
    this.st.lastEntryUs = entries[entries.length - 1]!.realtimeUs;
    this.onBatch(entries, cursor);
  }

  private readBatch(j: NativeJournal): number {
    const batch = this.fetch(j);
    if (!batch) return 0;
    this.deliver(batch);
    return batch.entries.length;
  }

  // One batch per event-loop turn, so a backlog never blocks the loop for long. An exception thrown by
  // the consumer is not a journal failure: it propagates (as an uncaught exception).
  private schedulePump(): void {
    if (this.pump || !this.running) return;
    this.pump = setImmediate(() => {
      this.pump = undefined;
      const j = this.journal;
      if (!j || !this.running) return;
      let batch: { entries: JournalEntry[]; cursor: string } | undefined;
      try {
        batch = this.fetch(j);
      } catch (err) {
        this.fail(`reading ${this.describe()} failed: ${messageOf(err)}`);
        return;
      }
      if (!batch) return;
      if (batch.entries.length === this.opts.batchSize) this.schedulePump();
      this.deliver(batch);
    });
  }

  private onChange(change: number): void {
    if (!this.running || !this.journal) return;
    if (change < 0) {
      this.fail(`waiting for ${this.describe()} failed: ${errnoName(-change)}`);
      return;
    }
    // sd-journal reports files it added or removed (INVALIDATE), not the ones it failed to open: a
    // changed directory is looked at for new files to probe.
    const dirs = this.dirState();
    if (change === SD_JOURNAL_INVALIDATE || dirs !== this.dirs) {
      this.dirs = dirs;
      this.scanFiles();
    }
    this.armTimeout(this.journal);
    this.schedulePump();
  }

  // sd-journal asks for a re-check without an event only for journals on network file systems.
  private armTimeout(j: NativeJournal): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const at = j.timeoutUsec();
    if (at < 0) return;
    const nowUs = Number(process.hrtime.bigint() / 1000n);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.running || this.journal !== j) return;
      try {
        this.onChange(j.process());
      } catch (err) {
        this.fail(`processing ${this.describe()} failed: ${messageOf(err)}`);
      }
    }, Math.max(0, (at - nowUs) / 1000));
  }

  /** Something went wrong with the open journal: close it and reopen on the back-off schedule. */
  private fail(message: string): void {
    this.noteError(message);
    this.journal?.close();
    this.journal = undefined;
    if (this.st.waitMode !== 'polling-backoff') this.warn(`journal: ${message}; reopening with back-off`);
    this.st.waitMode = 'polling-backoff';
    this.scheduleTick();
  }

  // --- polling fallback -----------------------------------------------------------------------------

  private scheduleTick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), this.pollMs);
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    const found = this.st.entriesRead !== this.readAtLastTick;
    this.readAtLastTick = this.st.entriesRead;
    this.pollMs = found ? POLL_MIN_MS : Math.min(this.pollMs * 2, POLL_MAX_MS);
    try {
      // Without inotify sd-journal does not see files appear or go: a changed directory (rotation,
      // vacuum) means reopening. Reopening also retries inotify, at the longest back-off interval.
      const dirs = this.dirState();
      if (!this.journal || dirs !== this.dirs || Date.now() - this.lastOpenMs >= POLL_MAX_MS) {
        this.journal?.close();
        this.journal = undefined;
        const j = this.open();
        this.journal = j;
        this.arm(j);
        this.schedulePump();
        return;
      }
      this.schedulePump();
    } catch (err) {
      this.noteError(messageOf(err));
    }
    this.scheduleTick();
  }

  /** The directories holding the journal's files and which files in each sd-journal reads. */
  private journalDirs(): JournalDir[] {
    const isJournal = (n: string): boolean => n.endsWith('.journal') || n.endsWith('.journal~');
    if (this.opts.files) {
      return [...new Set(this.opts.files.map((f) => dirname(f)))].map((dir) => ({ dir, wanted: () => false }));
    }
    if (this.opts.directory) {
      const dir = this.opts.directory;
      const subdirs = safeReaddir(dir).filter((n) => /^[0-9a-f]{32}$/.test(n));
      return [dir, ...subdirs.map((n) => join(dir, n))].map((d) => ({ dir: d, wanted: isJournal }));
    }
    // The local system journal: persistent and volatile, this machine's directory, system files only.
    let machineId = '';
    try {
      machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    } catch {
      // Without a machine ID sd-journal finds no local files either.
    }
    const system = (n: string): boolean => isJournal(n) && (n.startsWith('system.') || n.startsWith('system@'));
    return ['/var/log/journal', '/run/log/journal'].flatMap((base) => [
      { dir: base, wanted: () => false },
      ...(machineId ? [{ dir: join(base, machineId), wanted: system }] : []),
    ]);
  }

  private dirState(): string {
    return this.dirList
      .map(({ dir }) => {
        try {
          const s = statSync(dir);
          return `${dir}:${s.ino}:${s.mtimeMs}`;
        } catch {
          return `${dir}:-`;
        }
      })
      .join('\n');
  }

  // --- corrupt files --------------------------------------------------------------------------------

  /** Probes journal files not seen before; sd-journal skips the ones it cannot open, this counts them. */
  private scanFiles(): void {
    const present = new Set<string>();
    for (const { dir, wanted } of this.dirList) {
      for (const name of safeReaddir(dir)) {
        if (!wanted(name)) continue;
        const path = join(dir, name);
        present.add(path);
        if (!this.files.has(path)) this.probe(path, true);
      }
    }
    // Forget vacuumed files, so the map stays as small as the directory.
    for (const path of this.files.keys()) if (!present.has(path)) this.files.delete(path);
  }

  /** Whether sd-journal can open `path`; a corrupt file is counted and reported once. */
  private probe(path: string, mayBeYoung: boolean): boolean {
    const known = this.files.get(path);
    if (known !== undefined) return known;
    const errno = this.native.journalProbe(path);
    if (errno === 0) {
      this.files.set(path, true);
      return true;
    }
    if (mayBeYoung) {
      try {
        // A file being created has no valid header yet; look again at the next change.
        if (Date.now() - statSync(path).mtimeMs < YOUNG_FILE_MS) return false;
      } catch {
        return false;
      }
    }
    this.files.set(path, false);
    this.st.corruptFilesSkipped++;
    this.noteError(`journal file ${path} cannot be read (${errnoName(errno)}); skipped`);
    return false;
  }

  // --- reporting ------------------------------------------------------------------------------------

  private noteError(message: string): void {
    if (message !== this.st.lastError) this.warn(message);
    this.st.lastError = message;
  }

  private warn(message: string): void {
    this.opts.onWarning?.(message);
  }
}

interface JournalDir {
  dir: string;
  wanted: (name: string) => boolean;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
