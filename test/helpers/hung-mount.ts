// A FUSE filesystem that never answers, like a FUSE daemon or NFS server that hung: the mount is made
// on a /dev/fuse descriptor this process holds and never reads, so the kernel queues every request on
// it (statfs included) and the caller waits until the descriptor is closed. Closing it aborts the
// connection: the waiting calls fail with ENOTCONN and the mount can be detached.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export interface HungMount {
  path: string;
  /** Aborts the connection (every blocked call returns) and detaches the mount. Safe to call twice. */
  release(): void;
}

/** The mount options of a FUSE connection on descriptor 3 that root may use (fs type fuse.<subtype>). */
export function hungFuseOptions(subtype: string): string {
  return `fd=3,rootmode=40000,user_id=0,group_id=0,subtype=${subtype}`;
}

/** Mounts an unanswered FUSE filesystem at `path` (created if missing); released when `t` ends. */
export function hungFuseMount(t: TeardownHost, path: string, subtype = 'hung'): HungMount {
  if (!existsSync('/dev/fuse')) throw new Error('/dev/fuse is missing: this test needs the fuse kernel module (modprobe fuse) and root');
  mkdirSync(path, { recursive: true });
  const fd = openSync('/dev/fuse', 'r+');
  // -i: no mount.fuse helper; the kernel gets the options as they are.
  const res = spawnSync('mount', ['-i', '-t', 'fuse', '-o', hungFuseOptions(subtype), `nha-${subtype}`, path], {
    stdio: ['ignore', 'pipe', 'pipe', fd],
    encoding: 'utf8',
  });
  if (res.status !== 0) {
    closeSync(fd);
    throw new Error(`mount -t fuse ${path} failed (exit ${res.status}): ${res.stderr || res.error?.message}`);
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    closeSync(fd);
    spawnSync('umount', ['-l', path], { stdio: 'ignore' });
  };
  t.teardown(release);
  return { path, release };
}
