// A throwaway copy of this host's root filesystem to install packages into, as an image bake does: an
// overlay with / as its lower layer (writes land in a temporary directory), /proc and /dev bound in,
// no systemd running inside. Needs root.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Overlay {
  /** The overlay's root directory, as seen from the host. */
  root: string;
  /** Runs a command chrooted into the overlay with a clean environment. */
  chroot(...argv: string[]): RunResult;
}

const chrootEnv = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
};

function must(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status ?? res.signal}): ${res.stderr.trim()}`);
}

/** Mount points at or under dir, deepest first (from /proc/mounts). */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Mounts an overlay of / and registers its teardown: unmount everything, then delete the directory. */
export function mountOverlay(t: { teardown(fn: () => void): void }): Overlay {
  if (process.getuid?.() !== 0) {
    throw new Error('the image-bake test needs root: it mounts an overlay of / and chroots into it (run as root)');
  }
  // /var/tmp: a real filesystem on hosts whose /tmp is a size-limited tmpfs; the upper layer gets ~110 MB.
  const dir = mkdtempSync('/var/tmp/nha-bake-');
  const root = join(dir, 'root');
  for (const d of ['upper', 'work', 'root']) mkdirSync(join(dir, d));
  t.teardown(() => {
    for (const m of mountsUnder(dir)) {
      const res = spawnSync('umount', [m], { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`could not unmount ${m}: ${res.stderr.trim()}; ${dir} was left in place`);
    }
    const left = mountsUnder(dir);
    if (left.length) throw new Error(`still mounted: ${left.join(', ')}; ${dir} was left in place`);
    rmSync(dir, { recursive: true, force: true });
  });
  must('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=/,upperdir=${dir}/upper,workdir=${dir}/work`, root]);
  must('mount', ['--bind', '/proc', join(root, 'proc')]);
  must('mount', ['--bind', '/dev', join(root, 'dev')]);
  return {
    root,
    chroot: (...argv) => {
      const res = spawnSync('chroot', [root, ...argv], { encoding: 'utf8', env: chrootEnv, maxBuffer: 64 << 20 });
      if (res.error) throw new Error(`chroot ${root} ${argv.join(' ')}: ${res.error.message}`);
      return { code: res.status, stdout: res.stdout, stderr: res.stderr };
    },
  };
}
