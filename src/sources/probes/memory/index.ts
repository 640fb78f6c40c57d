// Memory the node can still give out before the kubelet evicts pods and the OOM killer runs:
// MemAvailable (the kernel's estimate of what can be allocated without swapping), as a share of MemTotal
// and as an absolute floor that small nodes reach before any percentage does.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { bytes, percent } from '../../../config/values';
import type { Finding, Check } from '../../../types';
import { formatBytes } from '../disk';
import { levelBelow, pct, reasonFor } from '../levels';
import { hostFs, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const memorySection = section({
  name: 'memory',
  keys: {
    ...probe('Check MemAvailable against MemTotal.', '10s', 'MemoryLow'),
    available_warning: key(percent, '10%', 'MemAvailable below this share of MemTotal is a warning.'),
    available_critical: key(percent, '5%', 'MemAvailable below this share of MemTotal is a problem.'),
    available_min: key(
      bytes({ min: 1 }),
      '256Mi',
      "MemAvailable below this size is a problem on any node size (keep it above the kubelet's memory.available eviction threshold, 100Mi by default).",
    ),
  },
  ordered: [['available_critical', 'available_warning']],
});
export type MemorySettings = Values<typeof memorySection.keys>;

/** /proc/meminfo as bytes by field ("MemTotal", "MemAvailable", …); "HugePages_Total" and the like stay counts. */
export function parseMeminfo(text: string): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([^:]+):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
    if (!match) continue;
    const value = Number(match[2]);
    fields.set(match[1] as string, line.trimEnd().endsWith('kB') ? value * 1024 : value);
  }
  return fields;
}

export interface MemorySample {
  total: number;
  available: number;
}

export function memorySample(meminfo: Map<string, number>): MemorySample {
  const total = meminfo.get('MemTotal');
  const available = meminfo.get('MemAvailable');
  if (total === undefined || available === undefined) {
    throw new Error('/proc/meminfo has no MemTotal or MemAvailable (MemAvailable needs Linux 3.14 or later)');
  }
  return { total, available };
}

export function judgeMemory(s: MemorySample, cfg: MemorySettings): Finding {
  const availablePct = (s.available / s.total) * 100;
  let status = levelBelow(availablePct, cfg.available_warning, cfg.available_critical);
  if (s.available < cfg.available_min) status = 'problem';
  const what = `${formatBytes(s.available)} of ${formatBytes(s.total)} memory available (${pct(availablePct)})`;
  const limits =
    `warning below ${cfg.available_warning}%, problem below ${cfg.available_critical}% or ${formatBytes(cfg.available_min)}`;
  return {
    subject: '',
    status,
    reason: reasonFor(status, 'MemoryAvailableOK', 'MemoryAvailableLow', 'MemoryAvailableCritical'),
    message:
      status === 'ok'
        ? what
        : `only ${what}; ${limits}. The kubelet evicts pods when memory.available falls under its threshold ` +
          '(100Mi by default) and the OOM killer follows — find the largest consumers ' +
          '(ps -eo pid,rss,comm --sort=-rss | head; crictl stats), set pod memory limits, or add memory',
  };
}

export function memoryCheck(cfg: MemorySettings, fs: HostFs = hostFs): Check {
  return {
    component: 'host',
    name: 'memory',
    async run() {
      return [judgeMemory(memorySample(parseMeminfo(fs.read('/proc/meminfo'))), cfg)];
    },
  };
}

export const memoryProbe = defineProbe({
  section: memorySection,
  healthy: { reason: 'MemoryAvailableOK', message: 'enough memory is available' },
  make: (cfg) => memoryCheck(cfg),
});
