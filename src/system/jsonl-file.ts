// A crash-safe, append-only file of JSON lines, for records that must be on disk before the agent acts
// on them. Each append is fsynced (a new file's directory entry too); a last line torn by a crash is
// cut off when the file is read (whatever it recorded never began, since acting waits for the fsync);
// a rewrite, to compact the file, replaces it atomically. What the records mean is the caller's.
// Records that only report what happened (an outcome) go through record(): when the disk refuses them
// (full, read-only, I/O error) they wait in memory, in order, and are retried; `health` shows the file as
// degraded meanwhile. Records the caller must not act without go through append(), which throws.
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { messageOf } from '../errors';
import type { WriteHealth } from './degraded';
import { writeAll, writeFileAtomic } from './files';

export interface JsonLinesOptions {
  /** What the file is, for messages: "the repair ledger". */
  what: string;
  /** What a failed write means, ending its message: "no repair is made without it". */
  withoutIt: string;
  /** The caller's error for a file that cannot be read or written. */
  error(message: string): Error;
  /** Told when record() or a rewrite could not write, and when the file takes writes again. */
  health?: WriteHealth;
  /** How often records kept in memory are tried again (default 5 s). */
  retryMs?: number;
}

export class JsonLinesFile<T> {
  /** Records in the file (corrupt lines not counted), as of the last read, append or rewrite. */
  lines = 0;

  private backlog: T[] = [];
  private failing = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly opts: JsonLinesOptions,
  ) {}

  /**
   * Hands every record to `each`, in order (a missing file holds none), and returns what was wrong:
   * a torn last line (cut off the file), lines that are not JSON, and the records `each` refused (it
   * returns why, and the line is named as `file:line`).
   */
  read(each: (record: T) => string | undefined): string[] {
    this.lines = 0;
    if (!existsSync(this.path)) return [];
    const warnings: string[] = [];
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      throw this.opts.error(`${this.path}: cannot read ${this.opts.what} (${messageOf(err)}); fix its permissions or remove it`);
    }
    const lines = text.split('\n');
    const torn = lines.pop();
    if (torn) {
      warnings.push(`${this.path}: dropped an incomplete last line (${torn.length} bytes) left by a crash`);
      this.truncateTo(Buffer.byteLength(text) - Buffer.byteLength(torn));
    }
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let record: T;
      try {
        record = JSON.parse(line) as T;
      } catch {
        warnings.push(`${this.path}:${i + 1}: not a JSON record; skipped`);
        return;
      }
      this.lines++;
      const refused = each(record);
      if (refused !== undefined) warnings.push(`${this.path}:${i + 1}: ${refused}`);
    });
    return warnings;
  }

  /**
   * Adds `record` as a line; returns only once it is on disk, after any records kept by record(), and
   * throws when it cannot be written.
   */
  append(record: T): void {
    this.write([...this.backlog, record]);
    this.written();
  }

  /** Adds `record` as a line now if the disk takes it, else later: never throws. */
  record(record: T): void {
    this.backlog.push(record);
    this.retry();
  }

  /** Records waiting in memory for the disk to take them. */
  get waiting(): number {
    return this.backlog.length;
  }

  /**
   * Replaces the file with `records` (written aside, fsynced, renamed over). `records` must hold what
   * record() still keeps (the caller's memory does), so a rewrite also ends a backlog. A failure is
   * reported to `health` (the file stays as it was, only longer) or, without one, thrown.
   */
  rewrite(records: readonly T[]): void {
    try {
      writeFileAtomic(this.path, records.map((r) => `${JSON.stringify(r)}\n`).join(''), 0o600);
    } catch (err) {
      const e = this.writeError('rewrite', err);
      if (!this.opts.health) throw e;
      this.opts.health.failed(e);
      return;
    }
    this.lines = records.length;
    this.backlog = [];
    this.written();
  }

  /** Stops retrying; records still waiting are lost with the process, as they would be in a crash. */
  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private retry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    try {
      this.write(this.backlog);
    } catch (err) {
      this.opts.health?.failed(err);
      this.failing = true;
      this.retryTimer = setTimeout(() => this.retry(), this.opts.retryMs ?? 5000);
      this.retryTimer.unref();
      return;
    }
    this.written();
  }

  private written(): void {
    this.backlog = [];
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.failing) this.opts.health?.recovered();
    this.failing = false;
  }

  /** Appends the lines and fsyncs; a write that fails part-way is cut back off, so no torn line is left mid-file. */
  private write(records: readonly T[]): void {
    if (records.length === 0) return;
    const fresh = !existsSync(this.path);
    let fd: number | undefined;
    let size = 0;
    try {
      fd = openSync(this.path, 'a', 0o600);
      size = fstatSync(fd).size;
      writeAll(fd, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      fsyncSync(fd);
      // A new file's directory entry must be durable too, or a crash could lose the whole file.
      if (fresh) syncDir(dirname(this.path));
    } catch (err) {
      if (fd !== undefined) {
        try {
          ftruncateSync(fd, size);
        } catch {
          // A read-only or failing filesystem: the torn line is cut off when the file is read.
        }
      }
      throw this.writeError('write', err);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.lines += records.length;
  }

  private writeError(verb: string, err: unknown): Error {
    return this.opts.error(`${this.path}: cannot ${verb} ${this.opts.what} (${messageOf(err)}); ${this.opts.withoutIt}`);
  }

  private truncateTo(bytes: number): void {
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'r+');
      ftruncateSync(fd, bytes);
      fsyncSync(fd);
    } catch (err) {
      throw this.opts.error(`${this.path}: cannot cut the torn last line off ${this.opts.what} (${messageOf(err)}); fix its permissions or remove it`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
