// Real journal files for tests and benchmarks: entries given as JS objects are serialized in journald's
// Journal Export Format and written by `systemd-journal-remote --output=FILE.journal -`, the same code
// journald uses for its own files. Big generated sets are cached under the user cache directory, keyed
// by a hash of their export stream, so they are written once per content.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { seededRandom } from './random';

/** The boot ID entries get when they name none. */
export const TEST_BOOT_ID = '6f1d2c7b9a8e4f3d8c2b1a0e9f8d7c6b';
const TEST_MACHINE_ID = '0a1b2c3d4e5f60718293a4b5c6d7e8f9';

export interface SourceEntry {
  /** Fields as journald stores them: MESSAGE, SYSLOG_IDENTIFIER, _TRANSPORT, _SYSTEMD_UNIT, ... */
  fields: Record<string, string | Buffer>;
  realtimeUs: number;
  /** Defaults to realtimeUs minus a fixed boot time. */
  monotonicUs?: number;
  /** 32 hex digits; defaults to TEST_BOOT_ID. */
  bootId?: string;
}

const JOURNAL_REMOTE_PATHS = ['/lib/systemd/systemd-journal-remote', '/usr/lib/systemd/systemd-journal-remote'];

function journalRemote(): string {
  const path = JOURNAL_REMOTE_PATHS.find((p) => existsSync(p));
  if (!path) {
    throw new Error(`systemd-journal-remote not found in ${JOURNAL_REMOTE_PATHS.join(' or ')}; apt-get install systemd-journal-remote`);
  }
  return path;
}

// A value goes in the binary form (name, newline, 64-bit LE length, bytes) when the text form could not
// carry it: a newline, or bytes that are not printable UTF-8 text.
function needsBinary(value: string | Buffer): boolean {
  if (Buffer.isBuffer(value)) return true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function binaryField(name: string, value: string | Buffer): Buffer {
  const data = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(data.length));
  return Buffer.concat([Buffer.from(`${name}\n`), len, data, Buffer.from('\n')]);
}

/** One entry in Journal Export Format, with the blank line that ends it. */
export function exportEntry(entry: SourceEntry): Buffer | string {
  const monotonic = entry.monotonicUs ?? entry.realtimeUs - 1_600_000_000_000_000;
  let text =
    `__REALTIME_TIMESTAMP=${entry.realtimeUs}\n__MONOTONIC_TIMESTAMP=${monotonic}\n` +
    `_BOOT_ID=${entry.bootId ?? TEST_BOOT_ID}\n`;
  const binary: Buffer[] = [];
  for (const [name, value] of Object.entries(entry.fields)) {
    if (needsBinary(value)) binary.push(binaryField(name, value));
    else text += `${name}=${value as string}\n`;
  }
  if (binary.length === 0) return `${text}\n`;
  return Buffer.concat([Buffer.from(text), ...binary, Buffer.from('\n')]);
}

/** Writes chunks of the export stream of `entries` to `out` (respecting back-pressure when it is a stream). */
async function pumpExport(entries: Iterable<SourceEntry>, write: (chunk: string | Buffer) => boolean | Promise<void>): Promise<void> {
  let pending: Array<string | Buffer> = [];
  let size = 0;
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const chunk = pending.every((p) => typeof p === 'string')
      ? (pending as string[]).join('')
      : Buffer.concat(pending.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
    pending = [];
    size = 0;
    await write(chunk);
  };
  for (const entry of entries) {
    const e = exportEntry(entry);
    pending.push(e);
    size += e.length;
    if (size >= 1 << 20) await flush();
  }
  await flush();
}

function writeWithDrain(stream: Writable): (chunk: string | Buffer) => Promise<void> {
  return (chunk) =>
    new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      stream.once('error', onError);
      const ok = stream.write(chunk);
      const done = (): void => {
        stream.off('error', onError);
        resolve();
      };
      if (ok) done();
      else stream.once('drain', done);
    });
}

/**
 * Writes `entries` into `dir/name.journal` with systemd-journal-remote (appending when it exists) and
 * returns the journal files it wrote, oldest first (it starts a new file when one fills up, like
 * journald). Fields over 512 bytes are stored compressed, as journald does, unless `compress` is false.
 */
export async function writeJournal(
  dir: string,
  name: string,
  entries: Iterable<SourceEntry>,
  opts: { compress?: boolean } = {},
): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const output = join(dir, `${name}.journal`);
  const args = [`--output=${output}`, `--compress=${opts.compress === false ? 'no' : 'yes'}`, '-'];
  const child = spawn(journalRemote(), args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  try {
    await pumpExport(entries, writeWithDrain(child.stdin));
  } finally {
    child.stdin.end();
  }
  const code = await exited;
  if (code !== 0) throw new Error(`systemd-journal-remote --output=${output} exited ${code}: ${stderr.trim()}`);
  return journalFilesIn(dir).filter((p) => p.slice(dir.length + 1).startsWith(`${name}.`) || p.slice(dir.length + 1).startsWith(`${name}@`));
}

/** The .journal files directly in `dir`: archived ones (name@...) by name, which sorts them oldest first, then the active one. */
export function journalFilesIn(dir: string): string[] {
  const names = readdirSync(dir).filter((n) => n.endsWith('.journal') || n.endsWith('.journal~'));
  const archived = names.filter((n) => n.includes('@')).sort();
  const active = names.filter((n) => !n.includes('@')).sort();
  return [...archived, ...active].map((n) => join(dir, n));
}

// --- Kernel-style entries for benchmarks ----------------------------------------------------------------

const COMMS = ['java', 'python3', 'node', 'nginx', 'envoy', 'postgres', 'redis-server', 'kube-proxy', 'coredns', 'containerd-shim', 'runc:[2:INIT]', 'etcd'];
const HUNG_COMMS = ['containerd', 'kubelet', 'dockerd', 'jbd2/sda1-8', 'kworker/u16:2', 'xfsaild/nvme1n1', 'java'];
const STACK = [
  '__schedule+0x34d/0x9e0', 'schedule+0x5a/0xd0', 'io_schedule+0x42/0x70', 'rwsem_down_write_slowpath+0x2b6/0x600',
  'wait_on_page_bit_common+0x114/0x3e0', 'jbd2_log_wait_commit+0xac/0x120 [jbd2]', 'ext4_sync_file+0x2c0/0x3b0 [ext4]',
  'do_fsync+0x38/0x70', '__x64_sys_fsync+0x10/0x20', 'do_syscall_64+0x59/0xc0', 'entry_SYSCALL_64_after_hwframe+0x64/0xce',
];

/**
 * `count` entries of a busy Kubernetes node's kernel log: mostly network and container chatter, with
 * groups of OOM-kill lines, hung-task reports with call traces, and a few filesystem, I/O and oops
 * lines, 1 ms apart from `startUs`. The same seed always gives the same entries.
 */
export function* kernelEntries(count: number, opts: { seed?: number; startUs?: number } = {}): Generator<SourceEntry> {
  const rnd = seededRandom(opts.seed ?? 1);
  const int = (n: number): number => Math.floor(rnd() * n);
  const hex = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[int(16)];
    return s;
  };
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const uuid = (): string => `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
  const startUs = opts.startUs ?? 1_750_000_000_000_000;
  let n = 0;
  let sec = 0;
  const next = (message: string, priority = 6): SourceEntry => {
    const realtimeUs = startUs + n * 1000 + int(900);
    n++;
    sec = Math.floor(n / 1000);
    return {
      realtimeUs,
      fields: {
        _TRANSPORT: 'kernel',
        SYSLOG_IDENTIFIER: 'kernel',
        SYSLOG_FACILITY: '0',
        PRIORITY: String(priority),
        _MACHINE_ID: TEST_MACHINE_ID,
        _HOSTNAME: 'node-1',
        _SOURCE_MONOTONIC_TIMESTAMP: String(realtimeUs - startUs + 5_000_000),
        MESSAGE: message,
      },
    };
  };
  const chatter = (): string => {
    const veth = `veth${hex(8)}`;
    switch (int(12)) {
      case 0: return `IPv6: ADDRCONF(NETDEV_CHANGE): ${veth}: link becomes ready`;
      case 1: return `cni0: port ${1 + int(60)}(${veth}) entered forwarding state`;
      case 2: return `cni0: port ${1 + int(60)}(${veth}) entered blocking state`;
      case 3: return `cni0: port ${1 + int(60)}(${veth}) entered disabled state`;
      case 4: return `device ${veth} entered promiscuous mode`;
      case 5: return `device ${veth} left promiscuous mode`;
      case 6: return `eth0: renamed from tmp${hex(5)}`;
      case 7: {
        const pid = 1000 + int(60000);
        return `audit: type=1400 audit(${1750000000 + sec}.${int(1000)}:${int(99999)}): apparmor="DENIED" operation="open" profile="cri-containerd.apparmor.d" name="/proc/${pid}/mounts" pid=${pid} comm="${pick(COMMS)}" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`;
      }
      case 8: return 'overlayfs: upperdir is in-use as upperdir/workdir of another mount, accessing files from both mounts will result in undefined behavior.';
      case 9: return `xfs filesystem being mounted at /var/lib/kubelet/pods/${uuid()}/volumes/kubernetes.io~csi/pvc-${uuid()}/mount supports timestamps until 2038 (0x7fffffff)`;
      case 10: return `IPVS: rr: TCP 10.96.${int(256)}.${int(256)}:443 - no destination available`;
      default: return `TCP: request_sock_TCP: Possible SYN flooding on port ${pick([80, 443, 8080, 10250])}. Sending cookies.  Check SNMP counters.`;
    }
  };
  while (n < count) {
    const r = rnd();
    if (r < 0.012) {
      // An OOM kill in a pod's memory cgroup: the four lines the kernel prints for one.
      const comm = pick(COMMS);
      const pid = 1000 + int(60000);
      const pod = uuid().replace(/-/g, '_');
      const scope = `cri-containerd-${hex(64)}.scope`;
      const limit = (64 + int(4000)) * 1024;
      const group: Array<[string, number]> = [
        [`${comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=${pick([-997, 900, 999, 1000])}`, 4],
        [`memory: usage ${limit}kB, limit ${limit}kB, failcnt ${int(5000)}`, 6],
        [`oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=${scope},mems_allowed=0,oom_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${pod}.slice,task_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${pod}.slice/${scope},task=${comm},pid=${pid},uid=${int(2) * 65534}`, 6],
        [`Memory cgroup out of memory: Killed process ${pid} (${comm}) total-vm:${limit * 2 + int(100000)}kB, anon-rss:${limit - int(1000)}kB, file-rss:${int(30000)}kB, shmem-rss:0kB, UID:0 pgtables:${int(9000)}kB oom_score_adj:${pick([900, 999, 1000])}`, 3],
      ];
      for (const [line, priority] of group) if (n < count) yield next(line, priority);
    } else if (r < 0.018) {
      // A hung task report: header, hint, task line and a call trace.
      const comm = pick(HUNG_COMMS);
      const pid = 100 + int(60000);
      const lines = [
        `INFO: task ${comm}:${pid} blocked for more than ${pick([120, 241, 300, 362])} seconds.`,
        `      Not tainted 6.1.0-${18 + int(10)}-cloud-amd64 #1 Debian 6.1.${76 + int(40)}-1`,
        '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
        `task:${comm.padEnd(15)} state:D stack:0     pid:${pid}  ppid:${1 + int(3000)}  flags:0x00004002`,
        'Call Trace:',
        ' <TASK>',
        ...STACK.slice(0, 5 + int(STACK.length - 5)).map((f) => ` ${f}`),
        ' </TASK>',
      ];
      for (const [i, line] of lines.entries()) if (n < count) yield next(line, i === 0 ? 3 : 6);
    } else if (r < 0.02) {
      const rare = [
        `EXT4-fs error (device nvme1n1): ext4_find_entry:1455: inode #${int(1 << 20)}: comm ${pick(COMMS)}: reading directory lblock 0`,
        `Buffer I/O error on dev nvme1n1, logical block ${int(1 << 24)}, async page read`,
        'unregister_netdevice: waiting for eth0 to become free. Usage count = 1',
        'BUG: kernel NULL pointer dereference, address: 0000000000000008',
        `XFS (nvme2n1): log I/O error -5`,
        `nf_conntrack: nf_conntrack: table full, dropping packet`,
      ];
      yield next(pick(rare), 3);
    } else {
      yield next(chatter());
    }
  }
}

/** The user cache directory for generated journals (XDG_CACHE_HOME or ~/.cache). */
export function journalCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'node-health-agent', 'journal');
}

/**
 * The journal files holding `kernelEntries(count, {seed})`, written once and then served from the cache
 * (a directory named by the SHA-256 of the export stream, so a change to the generator makes a new one).
 */
export async function cachedKernelJournal(count: number, seed = 1): Promise<string[]> {
  const hash = createHash('sha256');
  await pumpExport(kernelEntries(count, { seed }), (chunk) => {
    hash.update(chunk);
    return true;
  });
  const key = hash.digest('hex').slice(0, 32);
  const root = journalCacheDir();
  const dir = join(root, `kernel-${count}-${key}`);
  if (existsSync(join(dir, 'complete'))) return journalFilesIn(dir);
  mkdirSync(root, { recursive: true });
  // Written aside and renamed into place, so a concurrent or interrupted writer never leaves half a set.
  const work = mkdtempSync(join(root, '.writing-'));
  try {
    await writeJournal(work, 'kernel', kernelEntries(count, { seed }));
    writeFileSync(join(work, 'complete'), `${count} entries, seed ${seed}\n`);
    try {
      renameSync(work, dir);
    } catch (err) {
      // Another process finished the same set first; theirs is identical.
      if (!existsSync(join(dir, 'complete'))) throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return journalFilesIn(dir);
}
