// Run by fleet-coordination.mjs: one racing simulation on a fresh test cluster, then the figures and the
// extrapolation of the coordination's API load to a large cluster with the shipped defaults.
//
// The extrapolation: an idle node makes no coordination request at all (the gate is asked only when a
// repair is due). A node waiting for a slot asks once per 0.5–1.5 × retry_interval, each time one list
// of the namespace's Leases (a few small objects) plus, rarely, a lost claim: `poll` requests, measured.
// A holder renews every lease_ttl / 3. Each repair costs one granted acquire (list, claim, gap marker,
// the Node list for the breaker, which at N nodes takes ⌈N / 500⌉ pages) and one release (gap marker,
// slot). So at N nodes with W of them waiting:
//   QPS ≈ W × poll / retry_interval + k × 3 / lease_ttl + repairs/s × (grant + release)
// with repairs/s at most 1 / (2 × min_gap), since each repair's start and finish both reset the gap.
// W is bounded by the breaker: with more than max(breaker_max_nodes, breaker_max_percent × N) unhealthy
// nodes it trips, and the waiting nodes then ask once per storm_cooldown.
import { loadAgentConfig } from '../../src/sections';
import { parseDuration } from '../../src/config/values';
import { fleetUp } from '../../test/fleet/support';
import { costs, holdsOf, maxConcurrent, simulate, type SimOptions } from '../../test/fleet/simulation';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

const [holdMin, holdMax] = arg('hold', '300-1200').split('-').map(Number) as [number, number];
const options: SimOptions = {
  nodes: Number(arg('nodes', '50')),
  slots: Number(arg('slots', '3')),
  ttlMs: parseDuration(arg('ttl', '3s')),
  skewMs: 200,
  minGapMs: parseDuration(arg('gap', '100ms')),
  retryMs: parseDuration(arg('retry', '1s')),
  holdMs: [holdMin, holdMax],
  crashRate: Number(arg('crash', '0.2')),
  seed: Number(arg('seed', String(Math.floor(Math.random() * 1e9)))),
  timeoutMs: 600_000,
};
const AT = arg('at', '50,5000').split(',').map(Number);

const teardowns: Array<() => unknown> = [];
const host = { teardown: (fn: () => unknown) => void teardowns.unshift(fn) };

async function main(): Promise<void> {
  const o = options;
  console.log(
    `simulation: ${o.nodes} nodes, k = ${o.slots}, hold ${o.holdMs[0]}–${o.holdMs[1]} ms, crash rate ${o.crashRate}, ` +
      `lease_ttl ${o.ttlMs} ms, min_gap ${o.minGapMs} ms, retry_interval ${o.retryMs} ms, seed ${o.seed}`,
  );
  const fleet = await fleetUp(host);
  const r = await simulate(fleet, o);
  const { holds, takeovers } = holdsOf(r.history);
  const c = costs(r);
  const peak = maxConcurrent(holds);
  const early = takeovers.filter((k) => k.at < k.fromEnd + o.skewMs).length;
  if (r.allDoneMs === undefined) throw new Error(`only ${r.finished.size} of ${o.nodes} nodes were repaired within ${o.timeoutMs / 1000} s`);
  if (peak.max > o.slots || early > 0) throw new Error(`the semaphore was violated: peak ${peak.max} holders, ${early} early takeovers`);
  const meanHold = (o.holdMs[0] + o.holdMs[1]) / 2;
  console.log(`all ${o.nodes} repaired in ${(r.allDoneMs / 1000).toFixed(1)} s (the holds alone, ${o.nodes} × ${meanHold} ms / k, are ${((o.nodes * meanHold) / o.slots / 1000).toFixed(1)} s); peak holders ${peak.max}; ${r.crashes.length} crashes, ${takeovers.length} TTL takeovers`);
  console.log(`requests: ${c.requests} in ${c.seconds.toFixed(1)} s = ${c.qps.toFixed(1)}/s; ${c.meanWaiting.toFixed(1)} nodes waiting on average, each asking ${c.pollsPerWaitingNodeSecond.toFixed(2)} times/s`);
  for (const [k, v] of Object.entries(c.perCall)) console.log(`  ${k.padEnd(16)} ${String(v.calls).padStart(5)} calls × ${v.requests.toFixed(2)} requests`);
  console.log(`  renewals         ${String(c.renewals).padStart(5)}`);
  console.log(`  by call: ${Object.entries(c.byCall).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);

  // Extrapolation with the shipped defaults.
  const d = loadAgentConfig('/nonexistent/node-health').config.coordination;
  const poll = c.perCall['acquire refused']?.requests ?? 1;
  const release = c.perCall.release?.requests ?? 3;
  const check = c.perCall.check?.requests ?? 4;
  const repairsPerSecond = 1 / ((2 * d.min_gap) / 1000);
  const holders = (d.slots * 3) / (d.lease_ttl / 1000);
  console.log(
    `\nwith the defaults (k = ${d.slots}, retry_interval ${d.retry_interval / 1000} s, lease_ttl ${d.lease_ttl / 1000} s, min_gap ${d.min_gap / 1000} s, storm_cooldown ${d.storm_cooldown / 1000} s; requests/s, upper bounds):`,
  );
  for (const n of AT) {
    // The simulation's Node list was one page; at n nodes it is ⌈n / 500⌉.
    const grant = (c.perCall['acquire granted']?.requests ?? 4) - 1 + Math.ceil(n / 500);
    const allowed = Math.max(d.breaker_max_nodes, Math.floor((d.breaker_max_percent * n) / 100));
    const qps = (waiting: number, every: number) => (waiting * poll) / (every / 1000) + holders + repairsPerSecond * (grant + release);
    const rows: Array<[string, string]> = [
      ['no repair due anywhere', '0'],
      ['one node repairing, none waiting', holders.toFixed(4)],
      ['1 node waiting', qps(1, d.retry_interval).toFixed(2)],
    ];
    if (n >= 1000) rows.push([`${n / 100} nodes waiting (1 %)`, qps(n / 100, d.retry_interval).toFixed(2)]);
    rows.push([`${allowed} nodes waiting (the breaker's limit)`, qps(allowed, d.retry_interval).toFixed(2)]);
    rows.push([`all ${n} waiting, breaker tripped`, qps(n, d.storm_cooldown).toFixed(2)]);
    rows.push(['agent start on every node', `${n * check} requests once`]);
    console.log(`  ${n} nodes (per repair ${(grant + release).toFixed(1)} requests, the Node list in ${Math.ceil(n / 500)} page(s)):`);
    for (const [what, v] of rows) console.log(`    ${what.padEnd(40)} ${v}`);
  }
  console.log(`  (per ask ${poll.toFixed(2)} requests; at most ${repairsPerSecond.toFixed(4)} repairs/s)`);
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const fn of teardowns) await fn();
  });
