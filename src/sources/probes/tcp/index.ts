// The share of TCP segments the node had to send again, from /proc/net/snmp between two runs. A rising
// share means packet loss or congestion on the node's paths: slow API calls, timeouts, failed probes.
// The first run takes a baseline (and reports the share since boot); between runs with too few
// segments the share is noise and is not judged.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { integer, percent } from '../../../config/values';
import type { Finding, Check } from '../../../types';
import { count, levelAbove, pct, reasonFor } from '../levels';
import { hostFs, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const tcpSection = section({
  name: 'tcp',
  keys: {
    ...probe('Check the TCP retransmission rate between runs.', '30s'),
    retransmit_warning: key(percent, '1%', 'Share of sent TCP segments retransmitted that is a warning.'),
    retransmit_critical: key(percent, '5%', 'Share of sent TCP segments retransmitted that is a problem.'),
    min_segments: key(integer({ min: 1 }), '1000', 'Fewer segments sent between two runs are too few to judge.'),
  },
  ordered: [['retransmit_warning', 'retransmit_critical']],
});
export type TcpSettings = Values<typeof tcpSection.keys>;

/** /proc/net/snmp: per protocol, a line of field names followed by a line of values. */
export function parseSnmp(text: string): Map<string, Map<string, number>> {
  const protocols = new Map<string, Map<string, number>>();
  const lines = text.split('\n').filter((l) => l !== '');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = (lines[i] as string).split(/\s+/);
    const values = (lines[i + 1] as string).split(/\s+/);
    const protocol = names[0];
    if (!protocol || protocol !== values[0] || names.length !== values.length) {
      throw new Error(`/proc/net/snmp: lines ${i + 1} and ${i + 2} do not pair up as names and values`);
    }
    const fields = new Map<string, number>();
    for (let j = 1; j < names.length; j++) fields.set(names[j] as string, Number(values[j]));
    protocols.set(protocol.replace(/:$/, ''), fields);
  }
  return protocols;
}

export interface TcpCounters {
  outSegs: number;
  retransSegs: number;
}

export function tcpCounters(snmp: Map<string, Map<string, number>>): TcpCounters {
  const tcp = snmp.get('Tcp');
  const outSegs = tcp?.get('OutSegs');
  const retransSegs = tcp?.get('RetransSegs');
  if (outSegs === undefined || retransSegs === undefined) throw new Error('/proc/net/snmp has no Tcp OutSegs and RetransSegs');
  return { outSegs, retransSegs };
}

export function judgeRetransmits(before: TcpCounters, after: TcpCounters, seconds: number, cfg: TcpSettings): Finding {
  const sent = after.outSegs - before.outSegs;
  const again = after.retransSegs - before.retransSegs;
  const window = `the last ${Math.round(seconds)} s`;
  if (sent < cfg.min_segments) {
    return {
      subject: '',
      status: 'ok',
      reason: 'TCPRetransmitOK',
      message: `${count(sent)} TCP segments sent in ${window}, ${count(again)} retransmitted: too few to judge (fewer than ${count(cfg.min_segments)})`,
    };
  }
  const share = (again / sent) * 100;
  const status = levelAbove(share, cfg.retransmit_warning, cfg.retransmit_critical);
  const what = `${pct(share)} of TCP segments retransmitted in ${window} (${count(again)} of ${count(sent)})`;
  return {
    subject: '',
    status,
    reason: reasonFor(status, 'TCPRetransmitOK', 'TCPRetransmitHigh', 'TCPRetransmitCritical'),
    message:
      status === 'ok'
        ? what
        : `${what}; warning at ${cfg.retransmit_warning}%, problem at ${cfg.retransmit_critical}%: packets are lost ` +
          'or delayed on the way — check interface errors and drops (ip -s link), conntrack and firewall drops, ' +
          'and the path to the busiest peers (ss -ti shows retransmits per connection; mtr)',
  };
}

export function tcpCheck(cfg: TcpSettings, fs: HostFs = hostFs, now: () => number = () => performance.now()): Check {
  let previous: { at: number; counters: TcpCounters } | undefined;
  return {
    component: 'host',
    name: 'tcp',
    async run(): Promise<Finding[]> {
      const sample = { at: now(), counters: tcpCounters(parseSnmp(fs.read('/proc/net/snmp'))) };
      const before = previous;
      previous = sample;
      const c = sample.counters;
      if (!before || c.outSegs < before.counters.outSegs || c.retransSegs < before.counters.retransSegs) {
        const sinceBoot = c.outSegs > 0 ? ` (${pct((c.retransSegs / c.outSegs) * 100)})` : '';
        return [
          {
            subject: '',
            status: 'ok',
            reason: 'TCPBaseline',
            message:
              `baseline taken; the retransmission rate is judged from the next run (since boot: ` +
              `${count(c.retransSegs)} of ${count(c.outSegs)} segments retransmitted${sinceBoot})`,
          },
        ];
      }
      return [judgeRetransmits(before.counters, c, (sample.at - before.at) / 1000, cfg)];
    },
  };
}

export const tcpProbe = defineProbe({
  section: tcpSection,
  healthy: { reason: 'TCPRetransmitOK', message: 'TCP retransmissions are low' },
  make: (cfg) => tcpCheck(cfg),
});
