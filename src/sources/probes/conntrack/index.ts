// The connection-tracking table against its size. When it is full the kernel drops packets of new
// connections ("nf_conntrack: table full, dropping packet"): Service traffic through kube-proxy and
// anything NATed breaks. node-problem-detector's network plugin reports ConntrackFull over 90 %.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { percent } from '../../../config/values';
import type { Finding, Check } from '../../../types';
import { count, levelAbove, pct, reasonFor } from '../levels';
import { hostFs, parseNumberFile, readOptional, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const conntrackSection = section({
  name: 'conntrack',
  keys: {
    ...probe('Check conntrack table entries against net.netfilter.nf_conntrack_max.', '30s', 'ConntrackFull'),
    warning: key(percent, '80%', 'Share of the conntrack table in use that is a warning.'),
    critical: key(percent, '90%', 'Share of the conntrack table in use that is a problem (node-problem-detector: over 90%).'),
  },
  ordered: [['warning', 'critical']],
});
export type ConntrackSettings = Values<typeof conntrackSection.keys>;

const COUNT = '/proc/sys/net/netfilter/nf_conntrack_count';
const MAX = '/proc/sys/net/netfilter/nf_conntrack_max';

export function judgeConntrack(s: { entries: number; max: number }, cfg: ConntrackSettings): Finding {
  if (s.max === 0) {
    // The kernel enforces no limit when nf_conntrack_max is 0.
    return { subject: '', status: 'ok', reason: 'ConntrackUsageOK', message: `conntrack table holds ${count(s.entries)} entries, no limit set` };
  }
  const usedPct = (s.entries / s.max) * 100;
  const status = levelAbove(usedPct, cfg.warning, cfg.critical);
  const what = `conntrack table holds ${count(s.entries)} of ${count(s.max)} entries (${pct(usedPct)})`;
  return {
    subject: '',
    status,
    reason: reasonFor(status, 'ConntrackUsageOK', 'ConntrackUsageHigh', 'ConntrackFull'),
    message:
      status === 'ok'
        ? what
        : `${what}; when full, packets of new connections are dropped ("nf_conntrack: table full") — raise ` +
          'net.netfilter.nf_conntrack_max (kube-proxy sets it from --conntrack-max-per-core), or find who opens ' +
          'so many connections (conntrack -S; conntrack -L | sort by source)',
  };
}

export function conntrackCheck(cfg: ConntrackSettings, fs: HostFs = hostFs): Check {
  return {
    component: 'host',
    name: 'conntrack',
    async run(): Promise<Finding[]> {
      const entries = readOptional(fs, COUNT);
      if (entries === undefined) {
        return [
          {
            subject: '',
            status: 'ok',
            reason: 'ConntrackNotLoaded',
            message: `conntrack not loaded (no ${COUNT}): no table to fill`,
          },
        ];
      }
      const sample = { entries: parseNumberFile(entries, COUNT), max: parseNumberFile(fs.read(MAX), MAX) };
      return [judgeConntrack(sample, cfg)];
    },
  };
}

export const conntrackProbe = defineProbe({
  section: conntrackSection,
  healthy: { reason: 'ConntrackUsageOK', message: 'the conntrack table has room' },
  make: (cfg) => conntrackCheck(cfg),
});
