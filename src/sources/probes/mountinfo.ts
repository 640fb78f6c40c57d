// Parses /proc/self/mountinfo (proc(5)): the mounts the agent can see, with their device and fs type.
import { readFileSync } from 'node:fs';

export interface Mount {
  /** The mount ID; it stays the same across a remount, and may be reused after an unmount. */
  id: string;
  /** "major:minor" of the device; bind mounts of one filesystem share it. */
  device: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** This mount is read-only (per-mount option "ro"). */
  readOnly: boolean;
  /** Per-mount options, e.g. ["rw", "relatime"]. */
  mountOptions: string[];
  /** The filesystem's (superblock's) options, shared by all its mounts, e.g. ["rw", "errors=remount-ro"]. */
  superOptions: string[];
}

// Mount points in mountinfo escape space, tab, newline and backslash as octal.
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(content: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of content.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) {
      throw new Error(`malformed mountinfo line: ${line}`);
    }
    const options = (fields[5] as string).split(',');
    mounts.push({
      id: fields[0] as string,
      device: fields[2] as string,
      mountPoint: unescape(fields[4] as string),
      fsType: fields[sep + 1] as string,
      source: unescape(fields[sep + 2] as string),
      readOnly: options.includes('ro'),
      mountOptions: options,
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return mounts;
}

export function readMounts(path = '/proc/self/mountinfo'): Mount[] {
  return parseMountinfo(readFileSync(path, 'utf8'));
}

/** The mount that holds `path`: the longest mount point that is a prefix of it (last mounted wins). */
export function mountOf(mounts: Mount[], path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const prefix = m.mountPoint === '/' ? '/' : `${m.mountPoint}/`;
    if (path === m.mountPoint || path.startsWith(prefix)) {
      if (!best || m.mountPoint.length >= best.mountPoint.length) best = m;
    }
  }
  return best;
}
