// Free space and free inodes of every real filesystem, judged as df judges them: on what an
// unprivileged writer can still use (f_bavail), not on raw free blocks that root's reserve inflates.
//
// A filesystem a server answers for (NFS, SMB, Ceph, FUSE, …) answers statfs only when its server does:
// on a hung mount the call blocks for good, and in-process it would pin one of the four libuv threads
// that file I/O and DNS lookups share. Those are asked by a short-lived `stat -f` child that is killed
// at a deadline, at most one per mount at a time; local filesystems are asked in-process (the kernel
// answers from memory).
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { absolutePath, formatDuration, listOf, percent } from '../../../config/values';
import { messageOf } from '../../../errors';
import { Slots } from '../../../system/slots';
import { type Finding, DEFAULT_CHECK_DEADLINE_MS, type Check } from '../../../types';
import { runPlugin } from '../../plugins/runner';
import { levelAbove, pct, reasonFor } from '../levels';
import { mountOf, readMounts, type Mount } from '../mountinfo';
import { defineProbe } from '../probe';

export const diskSection = section({
  name: 'disk',
  keys: {
    ...probe('Check free space and free inodes of every real filesystem.', '30s', 'DiskFull'),
    space_warning: key(percent, '85%', 'Used space (as df counts it, after reserved blocks) that is a warning.'),
    space_critical: key(percent, '95%', 'Used space that is a problem.'),
    inodes_warning: key(percent, '85%', 'Used inodes that are a warning.'),
    inodes_critical: key(percent, '95%', 'Used inodes that are a problem.'),
    paths: key(
      listOf(absolutePath),
      '/var/lib/kubelet, /var/lib/containerd',
      'Paths always checked (their filesystem), even when it is of a type otherwise skipped.',
    ),
  },
  ordered: [['space_warning', 'space_critical'], ['inodes_warning', 'inodes_critical']],
});
export type DiskSettings = Values<typeof diskSection.keys>;

// Filesystems that hold no user data, or are always full by design (squashfs, iso9660).
const SKIPPED_TYPES = new Set([
  'autofs', 'binfmt_misc', 'bpf', 'cgroup', 'cgroup2', 'configfs', 'debugfs', 'devpts', 'devtmpfs',
  'efivarfs', 'fusectl', 'fuse.lxcfs', 'hugetlbfs', 'iso9660', 'mqueue', 'nsfs', 'overlay', 'proc',
  'pstore', 'ramfs', 'rpc_pipefs', 'securityfs', 'selinuxfs', 'squashfs', 'sysfs', 'tmpfs', 'tracefs',
  'nfsd',
]);

// Network, cluster and FUSE filesystems (fuse.* too): statfs waits for a server or a daemon.
const SERVED_TYPES = new Set([
  '9p', 'afs', 'beegfs', 'ceph', 'cifs', 'coda', 'fuse', 'fuseblk', 'gfs2', 'glusterfs', 'gpfs', 'lustre',
  'ncpfs', 'nfs', 'nfs4', 'ocfs2', 'orangefs', 'pvfs2', 'smb3', 'smbfs', 'virtiofs',
]);

/** A filesystem whose statfs waits on a server or daemon that may never answer. */
export function isServed(fsType: string): boolean {
  return SERVED_TYPES.has(fsType) || fsType.startsWith('fuse.');
}

/** How long a served filesystem has to answer statfs. */
export const SERVED_TIMEOUT_MS = 5_000;
/** After SIGKILL, how long a probe stuck in the kernel is waited for before the run gives up on it. */
const KILL_GRACE_MS = 1_000;
/** Probes running at once: room under the unit's TasksMax, and 64 hung mounts still fit the deadline. */
const SERVED_CONCURRENCY = 16;

export interface StatfsResult {
  blocks: number;
  bfree: number;
  bavail: number;
  bsize: number;
  files: number;
  ffree: number;
}

export type ApartOutcome =
  | { kind: 'answered'; stats: StatfsResult }
  | { kind: 'failed'; message: string }
  /** No answer by the deadline; `lingering` settles once a probe that outlived SIGKILL has ended. */
  | { kind: 'timedOut'; lingering?: Promise<void> };

export interface DiskDeps {
  mounts(): Mount[];
  /** statfs in this process: for local filesystems. */
  statfs(path: string): Promise<StatfsResult>;
  /** statfs in a child process killed after timeoutMs: for served filesystems. Never rejects. */
  statfsApart(path: string, timeoutMs: number): Promise<ApartOutcome>;
}

const realDeps: DiskDeps = { mounts: () => readMounts(), statfs: (p) => statfs(p), statfsApart };

// coreutils' stat prints the statfs fields asked for: total, free and available blocks, the fragment
// size they are counted in (f_frsize, as df uses), total and free inodes.
const STAT_FORMAT = '%b %f %a %S %c %d';

/** Also used by the support bundle, which must not hang on such a mount either. */
export async function statfsApart(path: string, timeoutMs: number): Promise<ApartOutcome> {
  const stat = ['/usr/bin/stat', '/bin/stat'].find((p) => existsSync(p)) ?? '/usr/bin/stat';
  const outcome = await runPlugin({
    path: stat,
    args: ['-f', '-c', STAT_FORMAT, '--', path],
    cwd: '/',
    timeoutMs,
    killGraceMs: KILL_GRACE_MS,
    maxOutputLength: 256,
  });
  if (outcome.timedOut) return { kind: 'timedOut', ...(outcome.lingering && { lingering: outcome.lingering }) };
  if (outcome.status !== 'ok') return { kind: 'failed', message: outcome.stderr || `${stat}: ${outcome.output || outcome.exit}` };
  const n = outcome.output.split(/\s+/).map(Number);
  if (n.length !== 6 || n.some((v) => !Number.isFinite(v))) {
    return { kind: 'failed', message: `${stat} -f printed "${outcome.output}", expected six numbers` };
  }
  const [blocks, bfree, bavail, bsize, files, ffree] = n as [number, number, number, number, number, number];
  return { kind: 'answered', stats: { blocks, bfree, bavail, bsize, files, ffree } };
}

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

export function diskCheck(cfg: DiskSettings, deps: DiskDeps = realDeps): Check {
  // Served mounts with a probe still running (since when): never a second probe beside a stuck one.
  const probing = new Map<string, number>();
  const slots = new Slots(SERVED_CONCURRENCY);
  return {
    component: 'host',
    name: 'disk',
    // Room for the served filesystems' deadline and kill grace before the run as a whole counts as hung.
    deadlineMs: Math.max(DEFAULT_CHECK_DEADLINE_MS, SERVED_TIMEOUT_MS + KILL_GRACE_MS + 5_000),
    async run() {
      const filesystems = selectFilesystems(deps.mounts(), cfg.paths);
      const findings = await Promise.all(filesystems.map((m) => inspect(m, cfg, deps, probing, slots)));
      return findings.flat();
    },
  };
}

async function inspect(m: Mount, cfg: DiskSettings, deps: DiskDeps, probing: Map<string, number>, slots: Slots): Promise<Finding[]> {
  const what = describe(m);
  const unknown = (reason: string, message: string): Finding[] => [{ subject: m.mountPoint, status: 'unknown', reason, message }];
  if (!isServed(m.fsType)) {
    try {
      return judge(m, await deps.statfs(m.mountPoint), cfg);
    } catch (err) {
      return unknown('StatfsFailed', `${what}: statfs failed: ${messageOf(err)}`);
    }
  }
  const key = `${m.device} ${m.mountPoint}`;
  const since = probing.get(key);
  if (since !== undefined) {
    const age = formatDuration(Math.round((Date.now() - since) / 1000) * 1000);
    return unknown('MountUnresponsive', `${what}: a statfs started ${age} ago is still stuck and outlived SIGKILL; ${unresponsive(m)}`);
  }
  probing.set(key, Date.now());
  const release = await slots.acquire();
  let outcome: ApartOutcome;
  try {
    outcome = await deps.statfsApart(m.mountPoint, SERVED_TIMEOUT_MS);
  } finally {
    release();
  }
  if (outcome.kind === 'timedOut' && outcome.lingering) {
    void outcome.lingering.finally(() => probing.delete(key));
  } else {
    probing.delete(key);
  }
  switch (outcome.kind) {
    case 'answered':
      return judge(m, outcome.stats, cfg);
    case 'failed':
      return unknown('StatfsFailed', `${what}: statfs failed: ${outcome.message}`);
    case 'timedOut':
      return unknown('MountUnresponsive', `${what}: no answer to statfs within ${formatDuration(SERVED_TIMEOUT_MS)}; ${unresponsive(m)}`);
  }
}

function unresponsive(m: Mount): string {
  return (
    `its server or FUSE daemon is not answering, and every process that touches ${m.mountPoint} hangs — ` +
    `check the server (or the daemon behind ${m.source}), or detach the mount with umount -l ${m.mountPoint}`
  );
}

function describe(m: Mount): string {
  return `${m.mountPoint} (${m.source}, ${m.fsType})`;
}

function judge(m: Mount, st: StatfsResult, cfg: DiskSettings): Finding[] {
  const subject = m.mountPoint;
  const what = describe(m);
  const findings: Finding[] = [];

  const usedBlocks = st.blocks - st.bfree;
  const usable = usedBlocks + st.bavail;
  if (usable > 0) {
    const usedPct = (usedBlocks / usable) * 100;
    const free = formatBytes(st.bavail * st.bsize);
    const status = levelAbove(usedPct, cfg.space_warning, cfg.space_critical);
    findings.push({
      subject,
      status,
      reason: reasonFor(status, 'DiskSpaceOK', 'DiskSpaceLow', 'DiskSpaceCritical'),
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
    const status = levelAbove(usedPct, cfg.inodes_warning, cfg.inodes_critical);
    findings.push({
      subject,
      status,
      reason: reasonFor(status, 'InodesOK', 'InodesLow', 'InodesCritical'),
      message:
        status === 'ok'
          ? `${what}: ${pct(usedPct)} of inodes used, ${st.ffree} free`
          : `${what}: ${pct(usedPct)} of inodes used, ${st.ffree} free; new files and containers will fail — ` +
            'find directories with many small files (e.g. du --inodes -x) and clean them up',
    });
  }
  return findings;
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

export const diskProbe = defineProbe({
  section: diskSection,
  healthy: { reason: 'DiskSpaceOK', message: 'every watched filesystem has free space and inodes' },
  make: (cfg) => diskCheck(cfg),
});
