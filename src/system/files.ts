// File system helpers with the failure modes a daemon needs.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { AgentError, messageOf } from '../errors';

/**
 * mkdir -p that fails on the first component it cannot create. Node's own recursive mkdir loops
 * forever when a parent exists but refuses new entries with ENOENT (e.g. under /proc).
 */
export function makeDirs(path: string, mode: number): void {
  const parts = resolve(path).split(sep).filter(Boolean);
  let current = '';
  for (const part of parts) {
    current += `${sep}${part}`;
    try {
      mkdirSync(current, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Writes all of `data` at the file's position. One write() may write less than asked when the disk fills
 * part-way; the next one then fails with ENOSPC instead of the short write passing for a whole one.
 */
export function writeAll(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
}

/**
 * Replaces `path` so that a crash at any moment leaves either the old or the new content: write a
 * temporary file, fsync it, rename it over the target, fsync the directory. A write that fails (full
 * disk, read-only remount) removes its temporary file and throws.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeAll(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Nothing was created, or it is already gone.
    }
    throw err;
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** Creates the state directory and proves it takes writes (a read-only filesystem fails even for root). */
export function ensureWritableDir(dir: string): void {
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    makeDirs(dir, 0o700);
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (err) {
    throw new AgentError(
      'STATE_DIR_UNWRITABLE',
      `${dir}: state directory is not writable (${messageOf(err)}); fix it or set [agent] state_dir`,
    );
  }
}
