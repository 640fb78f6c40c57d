// Open file handles (struct file) on the whole node against fs.file-max. When the table is full every
// open(), socket() and pipe() fails with ENFILE, whatever each process's own ulimit says.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { percent } from '../../../config/values';
import type { Finding, Check } from '../../../types';
import { count, levelAbove, pct, reasonFor } from '../levels';
import { hostFs, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const fileHandlesSection = section({
  name: 'file_handles',
  keys: {
    ...probe('Check allocated file handles against fs.file-max.', '30s', 'FileHandleLimitNear'),
    warning: key(percent, '80%', 'Share of fs.file-max allocated that is a warning.'),
    critical: key(percent, '90%', 'Share of fs.file-max allocated that is a problem.'),
  },
  ordered: [['warning', 'critical']],
});
export type FileHandlesSettings = Values<typeof fileHandlesSection.keys>;

/** /proc/sys/fs/file-nr: allocated handles, free allocated handles (always 0 since 2.6), the maximum. */
export function parseFileNr(text: string): { allocated: number; max: number } {
  const fields = text.trim().split(/\s+/).map(Number);
  if (fields.length !== 3 || fields.some((n) => !Number.isFinite(n))) {
    throw new Error(`/proc/sys/fs/file-nr: expected three numbers, got "${text.trim()}"`);
  }
  const [allocated, free, max] = fields as [number, number, number];
  return { allocated: allocated - free, max };
}

export function judgeFileHandles(s: { allocated: number; max: number }, cfg: FileHandlesSettings): Finding {
  const usedPct = (s.allocated / s.max) * 100;
  const status = levelAbove(usedPct, cfg.warning, cfg.critical);
  const what = `${count(s.allocated)} of ${count(s.max)} file handles in use (${pct(usedPct)} of fs.file-max)`;
  return {
    subject: '',
    status,
    reason: reasonFor(status, 'FileHandleUsageOK', 'FileHandleUsageHigh', 'FileHandleUsageCritical'),
    message:
      status === 'ok'
        ? what
        : `${what}; when none are left every open, socket and pipe on the node fails with ENFILE — find the ` +
          'processes holding the most (count the entries of /proc/<pid>/fd) and fix the leak, or raise fs.file-max',
  };
}

export function fileHandlesCheck(cfg: FileHandlesSettings, fs: HostFs = hostFs): Check {
  return {
    component: 'host',
    name: 'file_handles',
    async run() {
      return [judgeFileHandles(parseFileNr(fs.read('/proc/sys/fs/file-nr')), cfg)];
    },
  };
}

export const fileHandlesProbe = defineProbe({
  section: fileHandlesSection,
  healthy: { reason: 'FileHandleUsageOK', message: 'the file handle limit is far' },
  make: (cfg) => fileHandlesCheck(cfg),
});
