// A small tmpfs for write-failure tests: filled to ENOSPC or remounted read-only while the code under
// test runs, as a full or failing state directory is on a node. Needs root (mount).
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(args: string[]): void {
  const r = spawnSync(args[0] as string, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim() || r.error?.message}; these tests need root`);
}

export class Tmpfs {
  private constructor(readonly path: string) {}

  /** Mounts a tmpfs of `kib` KiB on a fresh directory; unmounted and removed when `t` ends. */
  static mount(t: { teardown(fn: () => unknown): void }, kib = 256): Tmpfs {
    const path = mkdtempSync(join(tmpdir(), 'nha-tmpfs-'));
    run(['mount', '-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'tmpfs', path]);
    t.teardown(() => {
      spawnSync('umount', ['-l', path]);
      rmSync(path, { recursive: true, force: true });
    });
    return new Tmpfs(path);
  }

  /** Writes a filler file until the filesystem is full (ENOSPC). */
  fill(): void {
    const fd = openSync(join(this.path, '.filler'), 'a');
    const block = Buffer.alloc(4096);
    try {
      for (;;) writeSync(fd, block);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
  }

  /** Frees what fill() took. */
  free(): void {
    unlinkSync(join(this.path, '.filler'));
  }

  readOnly(ro: boolean): void {
    run(['mount', '-o', `remount,${ro ? 'ro' : 'rw'}`, this.path]);
  }
}
