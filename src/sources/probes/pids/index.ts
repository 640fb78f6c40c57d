// Tasks (processes and threads) in use against the kernel's limit. Every thread takes a PID; when none is
// left, fork and clone fail for everyone: containers do not start, the kubelet cannot exec probes. This
// is the kubelet's pid.available signal, computed as the kubelet does: the total of /proc/loadavg's
// "running/total" field against min(kernel.pid_max, kernel.threads-max).
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { percent } from '../../../config/values';
import type { Finding, Check } from '../../../types';
import { count, levelAbove, pct, reasonFor } from '../levels';
import { hostFs, parseNumberFile, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const pidsSection = section({
  name: 'pids',
  keys: {
    ...probe('Check tasks (processes and threads) in use against min(kernel.pid_max, kernel.threads-max).', '30s', 'PIDLimitNear'),
    warning: key(percent, '80%', 'Share of the task limit in use that is a warning.'),
    critical: key(percent, '90%', 'Share of the task limit in use that is a problem.'),
  },
  ordered: [['warning', 'critical']],
});
export type PidsSettings = Values<typeof pidsSection.keys>;

/** The "running/total" field of /proc/loadavg: tasks runnable now, tasks that exist. */
export function parseLoadavgTasks(text: string): { running: number; total: number } {
  const match = /^\S+ \S+ \S+ (\d+)\/(\d+) /.exec(text.trim());
  if (!match) throw new Error(`/proc/loadavg: expected "1.00 0.50 0.25 2/345 6789", got "${text.trim()}"`);
  return { running: Number(match[1]), total: Number(match[2]) };
}

export interface PidSample {
  tasks: number;
  pidMax: number;
  threadsMax: number;
}

export function judgePids(s: PidSample, cfg: PidsSettings): Finding {
  const limit = Math.min(s.pidMax, s.threadsMax);
  const usedPct = (s.tasks / limit) * 100;
  const status = levelAbove(usedPct, cfg.warning, cfg.critical);
  const what =
    `${count(s.tasks)} of ${count(limit)} PIDs in use (${pct(usedPct)}; limit is the lower of ` +
    `kernel.pid_max ${count(s.pidMax)} and kernel.threads-max ${count(s.threadsMax)})`;
  return {
    subject: '',
    status,
    reason: reasonFor(status, 'PIDUsageOK', 'PIDUsageHigh', 'PIDUsageCritical'),
    message:
      status === 'ok'
        ? what
        : `${what}; when none are left, no process or thread can start on the node — find the processes with the ` +
          'most threads (ps -eo nlwp,pid,comm --sort=-nlwp | head), limit pods (kubelet podPidsLimit), ' +
          'or raise kernel.pid_max',
  };
}

export function pidsCheck(cfg: PidsSettings, fs: HostFs = hostFs): Check {
  const number = (path: string) => parseNumberFile(fs.read(path), path);
  return {
    component: 'host',
    name: 'pids',
    async run() {
      const sample: PidSample = {
        tasks: parseLoadavgTasks(fs.read('/proc/loadavg')).total,
        pidMax: number('/proc/sys/kernel/pid_max'),
        threadsMax: number('/proc/sys/kernel/threads-max'),
      };
      return [judgePids(sample, cfg)];
    },
  };
}

export const pidsProbe = defineProbe({
  section: pidsSection,
  healthy: { reason: 'PIDUsageOK', message: 'the task limit is far' },
  make: (cfg) => pidsCheck(cfg),
});
