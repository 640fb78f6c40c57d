// The configuration schema: every section and key the agent accepts, with its type, default and meaning.
// docs/configuration.md and etc/node-health.ini follow this table; a test keeps them in step.
import { key, probe, type KeySpec } from './key';
import { journalFamilies, journalSections } from './sections/journal';
import { pluginFamilies, pluginSections } from './sections/plugins';
import { repairSections } from './sections/repair';
import { kubernetesSections } from './sections/kubernetes';
import { fleetSections } from './sections/fleet';
import { ladderFamilies, ladderSections } from './sections/ladder';

export type { KeySpec } from './key';
import {
  absolutePath,
  bytes,
  duration,
  integer,
  listOf,
  oneOf,
  percent,
  text,
} from './values';

/** Letters of the kernel's taint flags (Documentation/admin-guide/tainted-kernels.rst). */
export const TAINT_LETTERS = [
  'P', 'F', 'S', 'R', 'M', 'B', 'U', 'D', 'A', 'W', 'C', 'I', 'O', 'E', 'L', 'K', 'X', 'T', 'N', 'J',
] as const;

export const schema = {
  agent: {
    log_level: key(oneOf(['error', 'warning', 'info', 'debug']), 'info', 'Least severe level written to the log.'),
    state_dir: key(absolutePath, '/var/lib/node-health', 'Persistent state (cursors, repair ledger).'),
    runtime_dir: key(absolutePath, '/run/node-health', 'Holds the status socket agent.sock.'),
  },
  disk: {
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
  readonly: {
    ...probe('Report filesystems that should be writable but have become read-only.', '30s', 'ReadonlyFilesystem'),
    paths: key(
      listOf(absolutePath),
      '/var/lib/kubelet, /var/lib/containerd, /var/log',
      'Paths whose filesystem must always be writable.',
    ),
  },
  memory: {
    ...probe('Check MemAvailable against MemTotal.', '10s', 'MemoryLow'),
    available_warning: key(percent, '10%', 'MemAvailable below this share of MemTotal is a warning.'),
    available_critical: key(percent, '5%', 'MemAvailable below this share of MemTotal is a problem.'),
    available_min: key(
      bytes({ min: 1 }),
      '256Mi',
      "MemAvailable below this size is a problem on any node size (keep it above the kubelet's memory.available eviction threshold, 100Mi by default).",
    ),
  },
  pressure: {
    ...probe('Check pressure stall information (PSI) of the node and of the kubepods cgroup.', '10s', 'ResourceStall'),
    memory_warning: key(percent, '5%', 'Memory "full" avg60 (time all tasks stalled on memory) that is a warning.'),
    memory_critical: key(percent, '20%', 'Memory "full" avg60 that is a problem, when avg10 is at least as high.'),
    io_warning: key(percent, '20%', 'I/O "full" avg60 that is a warning.'),
    io_critical: key(percent, '50%', 'I/O "full" avg60 that is a problem, when avg10 is at least as high.'),
    cpu_warning: key(percent, '80%', 'CPU "some" avg60 (time tasks waited for a CPU) that is a warning; CPU is never a problem.'),
  },
  pids: {
    ...probe('Check tasks (processes and threads) in use against min(kernel.pid_max, kernel.threads-max).', '30s', 'PIDLimitNear'),
    warning: key(percent, '80%', 'Share of the task limit in use that is a warning.'),
    critical: key(percent, '90%', 'Share of the task limit in use that is a problem.'),
  },
  file_handles: {
    ...probe('Check allocated file handles against fs.file-max.', '30s', 'FileHandleLimitNear'),
    warning: key(percent, '80%', 'Share of fs.file-max allocated that is a warning.'),
    critical: key(percent, '90%', 'Share of fs.file-max allocated that is a problem.'),
  },
  conntrack: {
    ...probe('Check conntrack table entries against net.netfilter.nf_conntrack_max.', '30s', 'ConntrackFull'),
    warning: key(percent, '80%', 'Share of the conntrack table in use that is a warning.'),
    critical: key(percent, '90%', 'Share of the conntrack table in use that is a problem (node-problem-detector: over 90%).'),
  },
  zombies: {
    ...probe('Count zombie processes and name the parents that do not reap them.', '1m'),
    warning: key(integer({ min: 1 }), '50', 'Zombie processes that are a warning.'),
    critical: key(integer({ min: 1 }), '500', 'Zombie processes that are a problem.'),
  },
  kernel_taint: {
    ...probe('Decode the kernel taint flags.', '1m', 'KernelFault'),
    problem_flags: key(
      listOf(oneOf(TAINT_LETTERS)),
      'D, M, B',
      'Taint flags that are a problem: D died (oops/BUG), M machine check, B bad page.',
    ),
    warning_flags: key(
      listOf(oneOf(TAINT_LETTERS)),
      'W, L, F, R, S',
      'Taint flags that are a warning: W kernel warning, L soft lockup, F/R forced module load/unload, S out of spec. Other flags are informational.',
    ),
  },
  thermal: {
    ...probe("Check each thermal zone's temperature against its critical trip point.", '30s'),
    warning_margin: key(integer({ min: 0, max: 200 }), '15', 'Degrees Celsius below the critical trip point that are a warning.'),
    critical_margin: key(integer({ min: 0, max: 200 }), '5', 'Degrees Celsius below the critical trip point that are a problem.'),
  },
  nic: {
    ...probe('Check network interface error and drop rates between runs.', '30s'),
    errors_warning: key(integer({ min: 1 }), '1', 'Receive plus transmit errors per second that are a warning.'),
    errors_critical: key(integer({ min: 1 }), '100', 'Errors per second that are a problem.'),
    drops_warning: key(integer({ min: 1 }), '100', 'Receive plus transmit drops per second that are a warning.'),
    drops_critical: key(integer({ min: 1 }), '1000', 'Drops per second that are a problem.'),
    ignore: key(
      listOf(text),
      'lo, veth*, cali*, lxc*, eni*, gke*, azv*, vnet*, tap*, ifb*, kube-ipvs0, nodelocaldns',
      'Interfaces not checked (a trailing * matches any suffix): loopback and per-pod or virtual ones.',
    ),
  },
  tcp: {
    ...probe('Check the TCP retransmission rate between runs.', '30s'),
    retransmit_warning: key(percent, '1%', 'Share of sent TCP segments retransmitted that is a warning.'),
    retransmit_critical: key(percent, '5%', 'Share of sent TCP segments retransmitted that is a problem.'),
    min_segments: key(integer({ min: 1 }), '1000', 'Fewer segments sent between two runs are too few to judge.'),
  },
  time_sync: {
    ...probe('Check that an NTP daemon keeps the kernel clock synchronised (adjtimex), and its maximum error.', '1m', 'TimeNotSynchronized'),
    boot_grace: key(duration(), '10m', 'After boot, how long the clock may stay unsynchronised before that is a problem (a warning until then).'),
    max_error_warning: key(duration({ min: 1, max: 16_000 }), '2s', "The kernel's maximum error of a synchronised clock that is a warning."),
    max_error_critical: key(
      duration({ min: 1, max: 16_000 }),
      '10s',
      'Maximum error that is a problem (at 16s the kernel marks the clock unsynchronised).',
    ),
  },
  ...journalSections,
  ...repairSections,
  ...kubernetesSections,
  ...pluginSections,
  ...fleetSections,
  ...ladderSections,
} as const;

/**
 * Named sections: any number of `[family "name"]` sections, each with the family's keys, e.g.
 * `[rule "OOMKilling"]`. Later files override an earlier file's keys of the same name.
 */
export const families = {
  ...journalFamilies,
  ...pluginFamilies,
  ...ladderFamilies,
} as const;

export type Schema = typeof schema;
export type SectionName = keyof Schema;
export type Families = typeof families;
export type FamilyName = keyof Families;
type ValueOf<S> = S extends KeySpec<infer T> ? T : never;
type Values<K> = { readonly [N in keyof K]: ValueOf<K[N]> };
export type NamedSections = { readonly [F in FamilyName]: ReadonlyMap<string, Values<Families[F]>> };
export type Config = { readonly [S in SectionName]: Values<Schema[S]> } & { readonly named: NamedSections };

export function sectionNames(): SectionName[] {
  return Object.keys(schema) as SectionName[];
}

export function keysOf(section: SectionName): string[] {
  return Object.keys(schema[section]);
}

export function specOf(section: SectionName, name: string): KeySpec<unknown> | undefined {
  return (schema[section] as Record<string, KeySpec<unknown>>)[name];
}

export function familyNames(): FamilyName[] {
  return Object.keys(families) as FamilyName[];
}

export function familyKeys(family: FamilyName): Record<string, KeySpec<unknown>> {
  return families[family] as Record<string, KeySpec<unknown>>;
}
