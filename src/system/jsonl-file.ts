// A crash-safe, append-only file of JSON lines, for records that must be on disk before the agent acts
// on them. Each append is fsynced (a new file's directory entry too); a last line torn by a crash is
// cut off when the file is read (whatever it recorded never began, since acting waits for the fsync);
// a rewrite, to compact the file, replaces it atomically. What the records mean is the caller's.
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { messageOf } from '../errors';
import { writeFileAtomic } from './files';

export interface JsonLinesOptions {
  /** What the file is, for messages: "the repair ledger". */
  what: string;
  /** What a failed write means, ending its message: "no repair is made without it". */
  withoutIt: string;
  /** The caller's error for a file that cannot be read or written. */
  error(message: string): Error;
}

export class JsonLinesFile<T> {
  /** Records in the file (corrupt lines not counted), as of the last read, append or rewrite. */
  lines = 0;

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

  /** Adds `record` as a line; returns only once it is on disk. */
  append(record: T): void {
    const fresh = !existsSync(this.path);
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'a', 0o600);
      writeSync(fd, `${JSON.stringify(record)}\n`);
      fsyncSync(fd);
      // A new file's directory entry must be durable too, or a crash could lose the whole file.
      if (fresh) syncDir(dirname(this.path));
    } catch (err) {
      throw this.writeError('write', err);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.lines++;
  }

  /** Replaces the file with `records`: written aside, fsynced, renamed over. */
  rewrite(records: readonly T[]): void {
    try {
      writeFileAtomic(this.path, records.map((r) => `${JSON.stringify(r)}\n`).join(''), 0o600);
    } catch (err) {
      throw this.writeError('rewrite', err);
    }
    this.lines = records.length;
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
