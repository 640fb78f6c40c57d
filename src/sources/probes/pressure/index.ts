// Pressure stall information (PSI): the share of recent time tasks stalled waiting for memory, I/O or a
// CPU — contention that utilisation figures hide. Judged on the node (/proc/pressure) and on the pods'
// cgroup (kubepods), the way KEP-5394 proposes for the kubelet's own PSI node conditions: avg60 at or
// above a threshold is a warning; it is a problem only while avg10 is still at or above it too, so a
// stall that is already subsiding does not raise the alarm. Memory and I/O are judged on "full" (every
// non-idle task stalled: lost work); CPU is compressible, so only its "some" line, and only as a warning.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { percent } from '../../../config/values';
import type { CheckStatus, Finding, Check } from '../../../types';
import { pct } from '../levels';
import { isAbsent, type HostFs, hostFs } from '../procfs';
import { defineProbe } from '../probe';

export const pressureSection = section({
  name: 'pressure',
  keys: {
    ...probe('Check pressure stall information (PSI) of the node and of the kubepods cgroup.', '10s', 'ResourceStall'),
    memory_warning: key(percent, '5%', 'Memory "full" avg60 (time all tasks stalled on memory) that is a warning.'),
    memory_critical: key(percent, '20%', 'Memory "full" avg60 that is a problem, when avg10 is at least as high.'),
    io_warning: key(percent, '20%', 'I/O "full" avg60 that is a warning.'),
    io_critical: key(percent, '50%', 'I/O "full" avg60 that is a problem, when avg10 is at least as high.'),
    cpu_warning: key(percent, '80%', 'CPU "some" avg60 (time tasks waited for a CPU) that is a warning; CPU is never a problem.'),
  },
  ordered: [['memory_warning', 'memory_critical'], ['io_warning', 'io_critical']],
});
export type PressureSettings = Values<typeof pressureSection.keys>;

export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Stall time in microseconds since boot. */
  total: number;
}

export interface Psi {
  some: PsiLine;
  /** Absent before Linux 5.13 for cpu. */
  full?: PsiLine;
}

/** One /proc/pressure/<resource> or <cgroup>/<resource>.pressure file. */
export function parsePressure(text: string, path: string): Psi {
  const lines: Partial<Record<'some' | 'full', PsiLine>> = {};
  for (const line of text.split('\n')) {
    const match = /^(some|full) avg10=([\d.]+) avg60=([\d.]+) avg300=([\d.]+) total=(\d+)$/.exec(line.trim());
    if (!match) continue;
    lines[match[1] as 'some' | 'full'] = {
      avg10: Number(match[2]),
      avg60: Number(match[3]),
      avg300: Number(match[4]),
      total: Number(match[5]),
    };
  }
  if (!lines.some) throw new Error(`${path}: no "some avg10=… avg60=…" line in ${JSON.stringify(text.slice(0, 80))}`);
  return lines.full ? { some: lines.some, full: lines.full } : { some: lines.some };
}

type Resource = 'memory' | 'io' | 'cpu';

interface Rule {
  line: 'some' | 'full';
  warning: number;
  critical?: number;
}

function rules(cfg: PressureSettings): Record<Resource, Rule> {
  return {
    memory: { line: 'full', warning: cfg.memory_warning, critical: cfg.memory_critical },
    io: { line: 'full', warning: cfg.io_warning, critical: cfg.io_critical },
    cpu: { line: 'some', warning: cfg.cpu_warning },
  };
}

const REASON_PREFIX: Record<Resource, string> = { memory: 'MemoryPressure', io: 'IOPressure', cpu: 'CPUPressure' };

const ADVICE: Record<Resource, string> = {
  memory:
    'the node is reclaiming or thrashing (page cache refaults, swap-in) and slows down long before the kubelet ' +
    'evicts — free memory (move or stop pods, lower their limits) or add memory',
  io:
    'the disk is saturated or failing — find the busiest processes (iotop, /proc/<pid>/io), check device latency ' +
    "(iostat -x) and the kernel log for I/O errors (journalctl -k | grep -i 'i/o error')",
  cpu:
    'the node is CPU-saturated and system daemons (kubelet, containerd) may starve — check system-reserved and ' +
    'kube-reserved, and pod CPU requests and limits',
};

const STALLED_ON: Record<Resource, string> = { memory: 'on memory', io: 'on I/O', cpu: 'for a CPU' };

/** `scope` is "" for the node or "kubepods" for the pods' cgroup. */
export function judgePressure(resource: Resource, psi: Psi, cfg: PressureSettings, scope = ''): Finding {
  const rule = rules(cfg)[resource];
  const subject = scope === '' ? resource : `${scope}/${resource}`;
  const line = rule.line === 'full' ? psi.full : psi.some;
  if (!line) {
    // Only "full" for cpu can be missing (before 5.13), and cpu is judged on "some".
    throw new Error(`${subject} pressure has no "${rule.line}" line`);
  }
  let status: CheckStatus = 'ok';
  if (rule.critical !== undefined && line.avg60 >= rule.critical && line.avg10 >= rule.critical) status = 'problem';
  else if (line.avg60 >= rule.warning) status = 'warning';

  const who = rule.line === 'full' ? 'all non-idle tasks' : 'some task';
  const where = scope === '' ? '' : ' in the kubepods cgroup';
  const figures = `${rule.line} avg10 ${pct(line.avg10)}, avg60 ${pct(line.avg60)}`;
  const limits =
    rule.critical === undefined
      ? `warning at ${rule.warning}%`
      : `warning at ${rule.warning}%, problem at ${rule.critical}% while avg10 stays as high`;
  return {
    subject,
    status,
    reason: status === 'ok' ? 'PressureOK' : `${REASON_PREFIX[resource]}${status === 'problem' ? 'High' : 'Elevated'}`,
    message:
      status === 'ok'
        ? `${resource} pressure${where}: ${figures}`
        : `${who}${where} stalled ${STALLED_ON[resource]} ${pct(line.avg60)} of the last minute (${figures}; ${limits}): ` +
          ADVICE[resource],
  };
}

const RESOURCES: Resource[] = ['memory', 'io', 'cpu'];

// Where the pods' cgroup lives: cgroup v2 with the systemd or the cgroupfs driver, or the unified
// hierarchy of a hybrid (v1 + v2) host, where systemd mirrors its slices.
export const KUBEPODS_DIRS = [
  '/sys/fs/cgroup/kubepods.slice',
  '/sys/fs/cgroup/kubepods',
  '/sys/fs/cgroup/unified/kubepods.slice',
  '/sys/fs/cgroup/unified/kubepods',
];

/** PSI switched off: the files are missing, or (cgroup files) refuse reads with EOPNOTSUPP. */
function psiOff(err: unknown): boolean {
  return isAbsent(err) || (err as NodeJS.ErrnoException).code === 'EOPNOTSUPP';
}

export function pressureCheck(cfg: PressureSettings, fs: HostFs = hostFs): Check {
  return {
    component: 'host',
    name: 'pressure',
    async run(): Promise<Finding[]> {
      const findings: Finding[] = [];
      for (const resource of RESOURCES) {
        const path = `/proc/pressure/${resource}`;
        let text: string;
        try {
          text = fs.read(path);
        } catch (err) {
          if (!psiOff(err)) throw err;
          return [
            {
              subject: '',
              status: 'ok',
              reason: 'PSIUnavailable',
              message:
                `PSI not available (${path} is missing: a kernel without CONFIG_PSI, or booted without psi=1); ` +
                'memory, I/O and CPU pressure are not watched',
            },
          ];
        }
        findings.push(judgePressure(resource, parsePressure(text, path), cfg));
      }
      for (const dir of KUBEPODS_DIRS) {
        let memory: string;
        try {
          memory = fs.read(`${dir}/memory.pressure`);
        } catch (err) {
          if (psiOff(err)) continue;
          throw err;
        }
        findings.push(judgePressure('memory', parsePressure(memory, `${dir}/memory.pressure`), cfg, 'kubepods'));
        const io = `${dir}/io.pressure`;
        findings.push(judgePressure('io', parsePressure(fs.read(io), io), cfg, 'kubepods'));
        break;
      }
      return findings;
    },
  };
}

export const pressureProbe = defineProbe({
  section: pressureSection,
  healthy: { reason: 'PressureOK', message: 'no sustained memory or I/O stalls' },
  make: (cfg) => pressureCheck(cfg),
});
