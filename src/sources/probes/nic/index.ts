// Error and drop rates of the node's network interfaces, from /proc/net/dev counters between two runs.
// Counters only grow, so what matters is how fast: the first run takes a baseline, each later run
// judges the rates since the previous one. Loopback and per-pod or virtual interfaces (veth, cali, lxc
// …) are ignored by default: the node's links are what this is about, and pod interfaces come and go.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { integer, listOf, text } from '../../../config/values';
import type { Finding, Check } from '../../../types';
import { count, levelAbove, perSecond, pct, worst } from '../levels';
import { hostFs, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const nicSection = section({
  name: 'nic',
  keys: {
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
  ordered: [['errors_warning', 'errors_critical'], ['drops_warning', 'drops_critical']],
});
export type NicSettings = Values<typeof nicSection.keys>;

export interface NicCounters {
  rxPackets: number;
  txPackets: number;
  /** Receive plus transmit errors (CRC, frame, FIFO, carrier … as the driver counts them). */
  errors: number;
  /** Receive plus transmit drops (ring or backlog full, unknown protocol, …). */
  drops: number;
}

/** /proc/net/dev: two header lines, then "iface: 8 receive counters, 8 transmit counters". */
export function parseNetDev(text: string): Map<string, NicCounters> {
  const nics = new Map<string, NicCounters>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((n) => !Number.isFinite(n))) {
      throw new Error(`/proc/net/dev: malformed line "${line.trim()}"`);
    }
    const [, rxPackets, rxErrs, rxDrop, , , , , , txPackets, txErrs, txDrop] = f as number[];
    nics.set(line.slice(0, colon).trim(), {
      rxPackets: rxPackets as number,
      txPackets: txPackets as number,
      errors: (rxErrs as number) + (txErrs as number),
      drops: (rxDrop as number) + (txDrop as number),
    });
  }
  return nics;
}

/** Glob patterns with a trailing * ("veth*") or exact names. */
export function ignored(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

export interface NicSample {
  /** Milliseconds on a monotonic clock. */
  at: number;
  nics: Map<string, NicCounters>;
}

export function judgeNic(name: string, before: NicCounters, after: NicCounters, seconds: number, cfg: NicSettings): Finding {
  const rate = (k: keyof NicCounters) => (after[k] - before[k]) / seconds;
  const errors = rate('errors');
  const drops = rate('drops');
  const packets = rate('rxPackets') + rate('txPackets');
  const errorStatus = levelAbove(errors, cfg.errors_warning, cfg.errors_critical);
  const dropStatus = levelAbove(drops, cfg.drops_warning, cfg.drops_critical);
  const status = worst(errorStatus, dropStatus);
  const share = (n: number) => (n > 0 ? ` (${pct((n / (packets + n)) * 100)} of packets)` : '');
  const figures =
    `${name}: ${perSecond(errors)} errors${share(errors)} and ${perSecond(drops)} drops${share(drops)} ` +
    `over the last ${Math.round(seconds)} s, ${perSecond(packets)} packets`;
  if (status === 'ok') return { subject: name, status, reason: 'NICOK', message: figures };

  // Name the worse of the two; errors first when both are equally bad (they point at hardware).
  const byErrors = errorStatus === status;
  const level = status === 'problem' ? 'Critical' : 'High';
  const advice = byErrors
    ? `errors point at the link or the NIC — check ethtool -S ${name} (crc, frame, fifo, carrier), the cable or ` +
      "virtual NIC, and the driver's messages (journalctl -k)"
    : `packets are being lost — check ethtool -S ${name} for the drop counters; a full receive ring (raise it with ` +
      'ethtool -G), softirq CPU saturation, or frames of protocols nothing listens for';
  const limits = byErrors
    ? `warning at ${cfg.errors_warning}/s, problem at ${cfg.errors_critical}/s`
    : `warning at ${cfg.drops_warning}/s, problem at ${cfg.drops_critical}/s`;
  return {
    subject: name,
    status,
    reason: `${byErrors ? 'NICErrors' : 'NICDrops'}${level}`,
    message: `${figures} (${limits}): ${advice}`,
  };
}

export function nicCheck(cfg: NicSettings, fs: HostFs = hostFs, now: () => number = () => performance.now()): Check {
  let previous: NicSample | undefined;
  return {
    component: 'host',
    name: 'nic',
    async run(): Promise<Finding[]> {
      const sample: NicSample = { at: now(), nics: new Map() };
      for (const [name, counters] of parseNetDev(fs.read('/proc/net/dev'))) {
        if (!ignored(name, cfg.ignore)) sample.nics.set(name, counters);
      }
      const before = previous;
      previous = sample;
      if (sample.nics.size === 0) {
        return [{ subject: '', status: 'ok', reason: 'NICOK', message: `no interfaces to watch (ignored: ${cfg.ignore.join(', ')})` }];
      }
      const seconds = before ? (sample.at - before.at) / 1000 : 0;
      const findings: Finding[] = [];
      const fresh: string[] = [];
      for (const [name, after] of sample.nics) {
        const then = before?.nics.get(name);
        // New, or recreated with its counters reset: this sample is its baseline.
        if (!then || seconds <= 0 || (Object.keys(after) as Array<keyof NicCounters>).some((k) => after[k] < then[k])) {
          fresh.push(name);
          continue;
        }
        findings.push(judgeNic(name, then, after, seconds, cfg));
      }
      if (fresh.length > 0) findings.push(baseline(fresh, sample));
      return findings;
    },
  };
}

function baseline(names: string[], sample: NicSample): Finding {
  const since = names.map((n) => {
    const c = sample.nics.get(n) as NicCounters;
    return `${n} ${count(c.errors)} errors, ${count(c.drops)} drops in ${count(c.rxPackets + c.txPackets)} packets`;
  });
  return {
    subject: '',
    status: 'ok',
    reason: 'NICBaseline',
    message: `baseline taken; rates are judged from the next run (since boot: ${since.join('; ')})`,
  };
}

export const nicProbe = defineProbe({
  section: nicSection,
  healthy: { reason: 'NICOK', message: 'network interfaces show few errors and drops' },
  make: (cfg) => nicCheck(cfg),
});
