// Free space and free inodes of every real filesystem, judged as df judges them: on what an
// unprivileged writer can still use (f_bavail), not on raw free blocks that root's reserve inflates.
import { statfs } from 'node:fs/promises';
import type { Config } from '../../config/schema';
import type { CheckStatus, Finding } from '../../types';
import type { Check } from '../check';
import { mountOf, readMounts, type Mount } from './mountinfo';

// Filesystems that hold no user data, or are always full by design (squashfs, iso9660).
const SKIPPED_TYPES = new Set([
  'autofs', 'binfmt_misc', 'bpf', 'cgroup', 'cgroup2', 'configfs', 'debugfs', 'devpts', 'devtmpfs',
  'efivarfs', 'fusectl', 'fuse.lxcfs', 'hugetlbfs', 'iso9660', 'mqueue', 'nsfs', 'overlay', 'proc',
  'pstore', 'ramfs', 'rpc_pipefs', 'securityfs', 'selinuxfs', 'squashfs', 'sysfs', 'tmpfs', 'tracefs',
  'nfsd',
]);

export interface StatfsResult {
  blocks: number;
  bfree: number;
  bavail: number;
  bsize: number;
  files: number;
  ffree: number;
}

export interface DiskDeps {
  mounts(): Mount[];
  statfs(path: string): Promise<StatfsResult>;
}

const realDeps: DiskDeps = { mounts: () => readMounts(), statfs: (p) => statfs(p) };

/** The filesystems to check: real ones, once per device, plus the configured paths' filesystems. */
export function selectFilesystems(mounts: Mount[], paths: readonly string[]): Mount[] {
  const byDevice = new Map<string, Mount>();
  for (const m of mounts) {
    if (SKIPPED_TYPES.has(m.fsType) || byDevice.has(m.device)) continue;
    byDevice.set(m.device, m);
  }
  for (const p of paths) {
    const m = mountOf(mounts, p);
    if (m && !byDevice.has(m.device)) byDevice.set(m.device, m);
  }
  return [...byDevice.values()];
}

export function diskCheck(cfg: Config['disk'], deps: DiskDeps = realDeps): Check {
  return {
    component: 'host',
    name: 'disk',
    async run() {
      const filesystems = selectFilesystems(deps.mounts(), cfg.paths);
      const findings = await Promise.all(filesystems.map((m) => judge(m, cfg, deps)));
      return findings.flat();
    },
  };
}

async function judge(m: Mount, cfg: Config['disk'], deps: DiskDeps): Promise<Finding[]> {
  const st = await deps.statfs(m.mountPoint);
  const subject = m.mountPoint;
  const what = `${m.mountPoint} (${m.source}, ${m.fsType})`;
  const findings: Finding[] = [];

  const usedBlocks = st.blocks - st.bfree;
  const usable = usedBlocks + st.bavail;
  if (usable > 0) {
    const usedPct = (usedBlocks / usable) * 100;
    const free = formatBytes(st.bavail * st.bsize);
    const status = level(usedPct, cfg.space_warning, cfg.space_critical);
    findings.push({
      subject,
      status,
      reason: status === 'ok' ? 'DiskSpaceOK' : status === 'warning' ? 'DiskSpaceLow' : 'DiskSpaceCritical',
      message:
        status === 'ok'
          ? `${what}: ${pct(usedPct)} used, ${free} free`
          : `${what}: ${pct(usedPct)} used, only ${free} free for unprivileged writers; ` +
            'free space (e.g. prune unused images with crictl rmi --prune, remove old logs) or grow the filesystem',
    });
  }

  // Some filesystems (btrfs, vfat) report no inode counts; there is nothing to judge.
  if (st.files > 0) {
    const usedPct = ((st.files - st.ffree) / st.files) * 100;
    const status = level(usedPct, cfg.inodes_warning, cfg.inodes_critical);
    findings.push({
      subject,
      status,
      reason: status === 'ok' ? 'InodesOK' : status === 'warning' ? 'InodesLow' : 'InodesCritical',
      message:
        status === 'ok'
          ? `${what}: ${pct(usedPct)} of inodes used, ${st.ffree} free`
          : `${what}: ${pct(usedPct)} of inodes used, ${st.ffree} free; new files and containers will fail — ` +
            'find directories with many small files (e.g. du --inodes -x) and clean them up',
    });
  }
  return findings;
}

function level(value: number, warning: number, critical: number): CheckStatus {
  if (value >= critical) return 'problem';
  if (value >= warning) return 'warning';
  return 'ok';
}

function pct(v: number): string {
  return `${v.toFixed(1)}%`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
