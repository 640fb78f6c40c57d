// Reads small kernel files (procfs, sysfs) the cheap way. Probes take a HostFs so tests can hand them
// captured files instead of this host's.
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';

export interface HostFs {
  /** The whole content of a kernel file. Throws the fs error (its message names the path). */
  read(path: string): string;
  /** The entry names of a directory. */
  list(dir: string): string[];
}

// One buffer reused for every read: open + read + close, without the fstat and the per-call allocation
// of readFileSync. Kernel files report size 0, so the length is only known after reading.
let buffer: Buffer | undefined;

function readKernelFile(path: string): string {
  buffer ??= Buffer.allocUnsafe(64 * 1024);
  const fd = openSync(path, 'r');
  try {
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        const bigger = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(bigger);
        buffer = bigger;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}

export const hostFs: HostFs = {
  read: readKernelFile,
  list: (dir) => readdirSync(dir),
};

/** True for the errors that mean "this kernel does not have that file" rather than "reading failed". */
export function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The file's content, or undefined when the kernel does not provide it. */
export function readOptional(fs: HostFs, path: string): string | undefined {
  try {
    return fs.read(path);
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
}

/** A file holding one whole number, like /proc/sys/kernel/pid_max. */
export function parseNumberFile(text: string, path: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value)) throw new Error(`${path}: expected a number, got "${text.trim()}"`);
  return value;
}
