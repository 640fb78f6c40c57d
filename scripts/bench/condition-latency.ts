// Journal line in a node in a box → condition visible through the API server, over many trials.
// The .deb is installed in a box with kubelet credentials from the test cluster; a test ini adds a
// source and a permanent rule with a revert pattern, so one condition can be set and cleared again and
// again. Each trial writes one line with systemd-cat (journald's live path, its 250 ms notify timer
// included) and times it until an admin watch on the Node shows the flip.
// Run by condition-latency.mjs; prints p50/p90/p99/max in all and per stage (stage times from the box's
// journal: the probe line's and the agent's own condition-change line's receive times), and the API writes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Box } from '../../test/helpers/box';
import { Cluster } from '../../test/helpers/cluster';
import { ensurePackages } from '../../test/helpers/packages';

const TRIALS = Number(process.argv[2] ?? 120);
const TAG = 'nha-latency';
const TYPE = 'LatencyProbe';
const INI = `[source "latency"]
matches = SYSLOG_IDENTIFIER=${TAG}

[condition "${TYPE}"]
reason = LatencyProbeClear
message = no probe line
clear_on_reboot = false

[rule "${TYPE}"]
source = latency
kind = permanent
condition = ${TYPE}
reason = LatencyProbeSet
pattern = probe set \\d+
revert_pattern = probe clear \\d+

[kubernetes]
; one write per flip: the trials are spaced wider than the refill
status_burst = 100
status_refill = 100ms
`;

const teardowns: Array<() => unknown> = [];
const host = { teardown: (fn: () => unknown) => void teardowns.unshift(fn) };

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function main(): Promise<void> {
  const node = `latency-${process.pid}`;
  const { deb } = ensurePackages();
  const cluster = await Cluster.up(host, [node]);
  const box = await Box.up(host, 'latency');
  const work = mkdtempSync(join(tmpdir(), 'nha-latency-'));
  host.teardown(() => rmSync(work, { recursive: true, force: true }));
  execFileSync('tar', ['-C', cluster.nodeRoot(node), '-cf', join(work, 'creds.tar'), 'etc', 'var']);
  await box.copyIn(join(work, 'creds.tar'), '/tmp/');
  await box.check(['tar', '-C', '/', '-xf', '/tmp/creds.tar']);
  writeFileSync(join(work, '50-test.ini'), INI);
  await box.check(['mkdir', '-p', '/etc/node-health']);
  await box.copyIn(join(work, '50-test.ini'), '/etc/node-health/');
  await box.copyIn(deb, '/tmp/');
  await box.check(['apt-get', 'install', '-y', '-q', `/tmp/${deb.split('/').pop() as string}`], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 180_000 });

  // An admin watch on the Node: every change of the probe condition's status, with the time seen.
  const flips: Array<{ status: string; at: number }> = [];
  let last = '';
  let buf = '';
  const watch = request(new URL(`${cluster.server}/api/v1/nodes?watch=1&fieldSelector=metadata.name%3D${node}`), {
    ca: readFileSync(cluster.caFile),
    cert: readFileSync(join(cluster.dir, 'pki/admin.crt')),
    key: readFileSync(join(cluster.dir, 'pki/admin.key')),
  }, (res) => {
    res.on('data', (d: Buffer) => {
      const now = performance.timeOrigin + performance.now();
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const ev = JSON.parse(buf.slice(0, nl)) as { object: { status?: { conditions?: Array<{ type: string; status: string }> } } };
        buf = buf.slice(nl + 1);
        const c = ev.object.status?.conditions?.find((x) => x.type === TYPE);
        if (c && c.status !== last) {
          last = c.status;
          flips.push({ status: c.status, at: now });
        }
      }
    });
  });
  watch.on('error', () => undefined);
  watch.end();
  host.teardown(() => watch.destroy());

  const until = async (status: string, timeoutMs: number): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = flips.find((x) => x.status === status);
      if (f) return f.at;
      if (Date.now() > deadline) throw new Error(`${TYPE} not ${status} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await until('False', 60_000);

  const writesBefore = await apiWrites(box);
  const trials: Trial[] = [];
  for (let i = 1; i <= TRIALS; i++) {
    const want = i % 2 === 1 ? 'True' : 'False';
    flips.length = 0;
    // Timestamp taken in the box right before systemd-cat; the box shares the host's clock.
    const out = await box.check(['sh', '-c', `date +%s%N; echo "probe ${want === 'True' ? 'set' : 'clear'} ${i}" | systemd-cat -t ${TAG}`]);
    const sentMs = Number(BigInt(out.trim()) / 1000n) / 1000;
    const seenMs = await until(want, 30_000);
    trials.push({ sentMs, seenMs, journaldMs: NaN, changedMs: NaN });
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
  }
  const writes = (await apiWrites(box)) - writesBefore;

  // Stage times from the box's journal: journald's receive time of each probe line, and of the agent's
  // own "condition … is now …" line, logged in the same event-loop turn as the condition table changed.
  const since = `@${Math.floor(trials[0]!.sentMs / 1000) - 1}`;
  const probes = await journalTimes(box, ['-t', TAG, '--since', since]);
  const changes = await journalTimes(box, ['-u', 'node-health-agent', `NODE_HEALTH_CONDITION=${TYPE}`, '--since', since]);
  if (probes.length !== TRIALS || changes.length !== TRIALS) {
    throw new Error(`expected ${TRIALS} probe lines and condition changes in the box's journal, found ${probes.length} and ${changes.length}`);
  }
  trials.forEach((tr, i) => {
    tr.journaldMs = probes[i]!;
    tr.changedMs = changes[i]!;
  });

  const f = (x: number) => `${x.toFixed(1)} ms`;
  const row = (name: string, xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    console.log(`  ${name.padEnd(46)} p50 ${f(pct(v, 50))}  p90 ${f(pct(v, 90))}  p99 ${f(pct(v, 99))}  max ${f(v[v.length - 1] as number)}  min ${f(v[0] as number)}`);
  };
  console.log(`${trials.length} trials, systemd-cat in the box → ${TYPE} flip seen by an admin watch:`);
  row('total: systemd-cat → watch event', trials.map((x) => x.seenMs - x.sentMs));
  row('systemd-cat → journald stamps the line', trials.map((x) => x.journaldMs - x.sentMs));
  row('journald → agent changes the condition', trials.map((x) => x.changedMs - x.journaldMs));
  row('condition change → watch event (PATCH, watch)', trials.map((x) => x.seenMs - x.changedMs));
  console.log(`  condition writes (PATCH nodes/status) during the trials: ${writes} for ${TRIALS} flips`);
}

interface Trial {
  /** Wall-clock ms: before systemd-cat, journald's receive time of the line, the agent's change log line, the watch event. */
  sentMs: number;
  journaldMs: number;
  changedMs: number;
  seenMs: number;
}

/** __REALTIME_TIMESTAMP (ms) of the box journal's entries selected by `args`, oldest first. */
async function journalTimes(box: Box, args: string[]): Promise<number[]> {
  const out = await box.check(['journalctl', '--no-pager', '-o', 'json', '--output-fields=MESSAGE', ...args]);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => Number((JSON.parse(l) as { __REALTIME_TIMESTAMP: string }).__REALTIME_TIMESTAMP) / 1000);
}

/** PATCHes of node status the agent made, from its metrics endpoint. */
async function apiWrites(box: Box): Promise<number> {
  const text = await box.check(['curl', '-s', 'http://127.0.0.1:20257/metrics']);
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('node_health_api_requests_total{') && line.includes('verb="PATCH"') && line.includes('resource="nodes/status"')) {
      n += Number(line.split(' ').pop());
    }
  }
  return n;
}

main()
  .catch((err: unknown) => {
    console.error(`condition-latency: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const fn of teardowns) await fn();
  });
