// Filesystems that should take writes but no longer do. The kernel stops writing to a filesystem after
// errors (ext4 errors=remount-ro, btrfs "forced readonly"); someone may remount one read-only. Writes
// then fail with EROFS, and the kubelet, containerd and journald fail in ways that hide the cause.
//
// How each case shows in mountinfo (the per-mount options, then the filesystem's super options):
// - kernels before 6.15, and btrfs: super options "ro" while the mount says "rw";
// - ext4 since 6.15: the superblock stays "rw" and ext4 adds "emergency_ro" (after errors) or
//   "shutdown" (after a forced shutdown) to the super options;
// - a remount: the mount itself says "ro" (the same mount ID that was "rw" before).
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { absolutePath, listOf } from '../../../config/values';
import type { Finding, Check } from '../../../types';
import { mountOf, parseMountinfo, type Mount } from '../mountinfo';
import { hostFs, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const readonlySection = section({
  name: 'readonly',
  keys: {
    ...probe('Report filesystems that should be writable but have become read-only.', '30s', 'ReadonlyFilesystem'),
    paths: key(
      listOf(absolutePath),
      '/var/lib/kubelet, /var/lib/containerd, /var/log',
      'Paths whose filesystem must always be writable.',
    ),
  },
});
export type ReadonlySettings = Values<typeof readonlySection.keys>;

// Filesystems that hold no data of their own, or are read-only by design: never judged unless listed.
const NOT_WRITABLE_TYPES = new Set([
  'autofs', 'binfmt_misc', 'bpf', 'cgroup', 'cgroup2', 'configfs', 'cramfs', 'debugfs', 'devpts',
  'devtmpfs', 'efivarfs', 'erofs', 'fusectl', 'fuse.lxcfs', 'hugetlbfs', 'iso9660', 'mqueue', 'nsfs',
  'overlay', 'proc', 'pstore', 'ramfs', 'romfs', 'rpc_pipefs', 'securityfs', 'selinuxfs', 'squashfs',
  'sysfs', 'tmpfs', 'tracefs', 'nfsd',
]);

/** Why the kernel refuses writes to this filesystem although the mount says rw; undefined if it does not. */
export function kernelStoppedWrites(m: Mount): string | undefined {
  if (m.superOptions.includes('emergency_ro')) {
    return 'the kernel stopped writing to it after filesystem errors (super option emergency_ro)';
  }
  if (m.superOptions.includes('shutdown')) return 'the filesystem was shut down (super option shutdown)';
  if (!m.readOnly && m.superOptions.includes('ro')) {
    return 'the kernel made it read-only (superblock ro while the mount is rw), usually after filesystem errors (errors=remount-ro)';
  }
  return undefined;
}

/** A writable mount as this process knows it: the same mount ID, device and place. */
export function mountKey(m: Mount): string {
  return `${m.id} ${m.device} ${m.mountPoint}`;
}

export interface ReadOnlyTrouble {
  mount: Mount;
  evidence: string;
  /** Listed paths that live on it. */
  paths: string[];
}

/**
 * The filesystems that refuse writes but should take them: any real filesystem the kernel stopped
 * writing to, a mount that was writable before (`wasWritable`), and the filesystem of every listed path.
 * One entry per device: bind mounts of a broken filesystem are one trouble.
 */
export function findReadOnly(mounts: Mount[], paths: readonly string[], wasWritable: (m: Mount) => boolean): ReadOnlyTrouble[] {
  const troubles = new Map<string, ReadOnlyTrouble>();
  const note = (m: Mount, evidence: string, path?: string) => {
    let trouble = troubles.get(m.device);
    if (!trouble) {
      trouble = { mount: m, evidence, paths: [] };
      troubles.set(m.device, trouble);
    }
    if (path !== undefined) trouble.paths.push(path);
  };
  for (const m of mounts) {
    if (NOT_WRITABLE_TYPES.has(m.fsType)) continue;
    const stopped = kernelStoppedWrites(m);
    if (stopped) note(m, stopped);
    else if (m.readOnly && wasWritable(m)) note(m, 'it was remounted read-only after the agent had seen it writable');
  }
  for (const path of paths) {
    const m = mountOf(mounts, path);
    if (!m) continue;
    const evidence = kernelStoppedWrites(m) ?? (m.readOnly ? 'it is mounted read-only' : undefined);
    if (evidence) note(m, evidence, path);
  }
  return [...troubles.values()];
}

export function describeTrouble(t: ReadOnlyTrouble): string {
  const m = t.mount;
  const holds = t.paths.length > 0 ? `, which holds ${t.paths.join(', ')},` : '';
  return (
    `${m.mountPoint} (${m.source}, ${m.fsType})${holds} refuses writes: ${t.evidence}; writes fail with EROFS — ` +
    "find the cause in the kernel log (journalctl -k | grep -iE 'error|read-only'), then drain the node, " +
    'repair the filesystem (fsck) and reboot; a deliberate remount needs `mount -o remount,rw ' +
    `${m.mountPoint}\``
  );
}

// PID 1's view of the mounts: the agent's own mount namespace may be read-only by its unit's
// sandboxing (ProtectSystem=), which would look like a read-only root here.
function readHostMountinfo(fs: HostFs): string {
  try {
    return fs.read('/proc/1/mountinfo');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    return fs.read('/proc/self/mountinfo');
  }
}

export function readOnlyCheck(cfg: ReadonlySettings, fs: HostFs = hostFs): Check {
  // Mounts seen writable, kept while they exist so a later remount to ro is recognised as one.
  let writable = new Set<string>();
  return {
    component: 'host',
    name: 'readonly',
    async run(): Promise<Finding[]> {
      const mounts = parseMountinfo(readHostMountinfo(fs));
      const troubles = findReadOnly(mounts, cfg.paths, (m) => writable.has(mountKey(m)));
      const next = new Set<string>();
      for (const m of mounts) {
        const key = mountKey(m);
        if (writable.has(key) || (!m.readOnly && !kernelStoppedWrites(m))) next.add(key);
      }
      writable = next;

      if (troubles.length === 0) {
        const judged = mounts.filter((m) => !NOT_WRITABLE_TYPES.has(m.fsType)).length;
        const listed = cfg.paths.length > 0 ? `; ${cfg.paths.join(', ')} writable` : '';
        return [
          {
            subject: '',
            status: 'ok',
            reason: 'FilesystemsWritable',
            message: `no filesystem refuses writes it should take (${judged} ${judged === 1 ? 'mount' : 'mounts'} of real filesystems${listed})`,
          },
        ];
      }
      return troubles.map((t) => ({
        subject: t.mount.mountPoint,
        status: 'problem',
        reason: 'FilesystemReadOnly',
        message: describeTrouble(t),
      }));
    },
  };
}

export const readonlyProbe = defineProbe({
  section: readonlySection,
  healthy: { reason: 'FilesystemIsNotReadOnly', message: 'Filesystem is not read-only', shared: true },
  make: (cfg) => readOnlyCheck(cfg),
});
