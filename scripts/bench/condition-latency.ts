// Journal line in a node in a box → condition visible through the API server, over many trials.
// The .deb is installed in a box with kubelet credentials from the test cluster; a test ini adds a
// source and a permanent rule with a revert pattern, so one condition can be set and cleared again and
// again. Each trial writes one line with systemd-cat (journald's live path, its notification timer
// included) and times it until an admin watch on the Node shows the change.
// With --npd=BIN, node-problem-detector then runs in the same box (the agent stopped) against a second
// Node of the same cluster with that node's kubelet credentials, reading a journald system-log-monitor
// config with two permanent rules on one condition: NPD never sets a log condition back to False, so
// its trials alternate the condition's reason.
// Run by condition-latency.mjs; prints p50/p90/p99/max in all and per stage (stage times from the box's
// journal: the probe line's receive time, and that of the detector's own line saying it changed the
// condition), and the agent's API writes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Box } from '../../test/helpers/box';
import { Cluster } from '../../test/helpers/cluster';
import { ensurePackages } from '../../test/helpers/packages';

const argv = process.argv.slice(2);
const TRIALS = Number(argv.find((a) => /^\d+$/.test(a)) ?? 120);
const NPD = argv.find((a) => a.startsWith('--npd='))?.slice('--npd='.length);
const TAG = 'nha-latency';
const TYPE = 'LatencyProbe';
const ini = (metricsPort: number) => `[source "latency"]
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

[metrics]
; boxes share the host's network: a port of its own, not another box's agent's
port = ${metricsPort}
`;
/** NPD's system-log-monitor config for the same source (its journald plugin matches SYSLOG_IDENTIFIER). */
const NPD_CONFIG = {
  plugin: 'journald',
  pluginConfig: { source: TAG },
  logPath: '/var/log/journal',
  lookback: '5m',
  bufferSize: 10,
  source: 'latency-monitor',
  conditions: [{ type: TYPE, reason: 'LatencyProbeClear', message: 'no probe line' }],
  rules: [
    { type: 'permanent', condition: TYPE, reason: 'LatencyProbeA', pattern: 'probe a \\d+' },
    { type: 'permanent', condition: TYPE, reason: 'LatencyProbeB', pattern: 'probe b \\d+' },
  ],
};
const NPD_UNIT = 'npd-latency';

const teardowns: Array<() => unknown> = [];
const host = { teardown: (fn: () => unknown) => void teardowns.unshift(fn) };

interface Trial {
  /** Wall-clock ms: before systemd-cat, journald's receive time of the line, the detector's change line, the watch event. */
  sentMs: number;
  journaldMs: number;
  changedMs: number;
  seenMs: number;
  /** journald's receive time → `journalctl -f` in the box printed the line (agent runs only). */
  followMs?: number;
}

interface Detector {
  name: string;
  node: string;
  /** Line of trial i (from 1) and the condition that line must produce. */
  line(i: number): string;
  want(i: number): { status: string; reason?: string };
  /** journalctl arguments selecting the detector's own log lines that say it changed the condition. */
  changeLog: string[];
  /** Its condition writes so far, where it counts them. */
  writes?: () => Promise<number>;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** An admin watch on one Node: every change of the probe condition's status or reason, with the time seen. */
function watchNode(cluster: Cluster, node: string) {
  const seen: Array<{ status: string; reason: string; at: number }> = [];
  let last = '';
  let buf = '';
  const req = request(new URL(`${cluster.server}/api/v1/nodes?watch=1&fieldSelector=metadata.name%3D${node}`), {
    ca: readFileSync(cluster.caFile),
    cert: readFileSync(join(cluster.dir, 'pki/admin.crt')),
    key: readFileSync(join(cluster.dir, 'pki/admin.key')),
  }, (res) => {
    res.on('data', (d: Buffer) => {
      const now = performance.timeOrigin + performance.now();
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const ev = JSON.parse(buf.slice(0, nl)) as { object: { status?: { conditions?: Array<{ type: string; status: string; reason?: string }> } } };
        buf = buf.slice(nl + 1);
        const c = ev.object.status?.conditions?.find((x) => x.type === TYPE);
        const key = c ? `${c.status}/${c.reason ?? ''}` : '';
        if (c && key !== last) {
          last = key;
          seen.push({ status: c.status, reason: c.reason ?? '', at: now });
        }
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  host.teardown(() => req.destroy());
  const until = async (want: { status: string; reason?: string }, timeoutMs: number): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = seen.find((x) => x.status === want.status && (want.reason === undefined || x.reason === want.reason));
      if (f) return f.at;
      if (Date.now() > deadline) throw new Error(`${node}: ${TYPE} not ${want.status}${want.reason ? `/${want.reason}` : ''} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { seen, until };
}

async function runTrials(box: Box, cluster: Cluster, d: Detector, ready: { status: string; reason?: string }): Promise<{ trials: Trial[]; writes?: number }> {
  const watch = watchNode(cluster, d.node);
  await watch.until(ready, 60_000);
  const writesBefore = await d.writes?.();
  const trials: Trial[] = [];
  for (let i = 1; i <= TRIALS; i++) {
    watch.seen.length = 0;
    // Timestamp taken in the box right before systemd-cat; the box shares the host's clock.
    const out = await box.check(['sh', '-c', `date +%s%N; echo "${d.line(i)}" | systemd-cat -t ${TAG}`]);
    const sentMs = Number(BigInt(out.trim()) / 1000n) / 1000;
    const seenMs = await watch.until(d.want(i), 30_000);
    trials.push({ sentMs, seenMs, journaldMs: NaN, changedMs: NaN });
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
  }
  const writesAfter = await d.writes?.();
  // Stage times from the box's journal: journald's receive time of each probe line, and of the
  // detector's own line saying the condition changed (logged as it changes the condition).
  const since = `@${Math.floor(trials[0]!.sentMs / 1000) - 1}`;
  const probes = await journalTimes(box, ['-t', TAG, '--since', since]);
  const changes = await journalTimes(box, [...d.changeLog, '--since', since]);
  if (probes.length !== TRIALS || changes.length !== TRIALS) {
    throw new Error(`${d.name}: expected ${TRIALS} probe lines and condition changes in the box's journal, found ${probes.length} and ${changes.length}`);
  }
  trials.forEach((tr, i) => {
    tr.journaldMs = probes[i]!;
    tr.changedMs = changes[i]!;
  });
  return { trials, ...(writesBefore !== undefined && writesAfter !== undefined ? { writes: writesAfter - writesBefore } : {}) };
}

function report(name: string, trials: Trial[]): void {
  const f = (x: number) => `${x.toFixed(1)} ms`;
  const row = (label: string, xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    console.log(`  ${label.padEnd(44)} p50 ${f(pct(v, 50))}  p90 ${f(pct(v, 90))}  p99 ${f(pct(v, 99))}  max ${f(v[v.length - 1] as number)}  min ${f(v[0] as number)}`);
  };
  console.log(`${name}: ${trials.length} trials, systemd-cat in the box → ${TYPE} change seen by an admin watch`);
  row('total: systemd-cat → watch event', trials.map((x) => x.seenMs - x.sentMs));
  row('journald stamps the line → watch event', trials.map((x) => x.seenMs - x.journaldMs));
  row('  systemd-cat → journald stamps the line', trials.map((x) => x.journaldMs - x.sentMs));
  row(`  journald → ${name} changes the condition`, trials.map((x) => x.changedMs - x.journaldMs));
  row('  condition change → watch event', trials.map((x) => x.seenMs - x.changedMs));
  const follow = trials.flatMap((x) => (x.followMs === undefined ? [] : [x.followMs]));
  if (follow.length > 0) row('journald → `journalctl -f` prints the line', follow);
}

/** __REALTIME_TIMESTAMP (ms) of the box journal's entries selected by `args`, oldest first. */
async function journalTimes(box: Box, args: string[]): Promise<number[]> {
  const out = await box.check(['journalctl', '--no-pager', '-o', 'json', '--output-fields=MESSAGE', ...args]);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => Number((JSON.parse(l) as { __REALTIME_TIMESTAMP: string }).__REALTIME_TIMESTAMP) / 1000);
}

/** A TCP port free on 127.0.0.1 now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** PATCHes of node status the agent made, from its metrics endpoint. */
async function apiWrites(box: Box, port: number): Promise<number> {
  const text = await box.check(['curl', '-sf', `http://127.0.0.1:${port}/metrics`]);
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('node_health_api_requests_total{') && line.includes('verb="PATCH"') && line.includes('resource="nodes/status"')) {
      n += Number(line.split(' ').pop());
    }
  }
  return n;
}

/** A node's kubelet credentials, laid out under `root` in the box as under / on a kubeadm node. */
async function copyCredentials(box: Box, cluster: Cluster, node: string, work: string, root: string): Promise<void> {
  const tar = join(work, `${node}.tar`);
  execFileSync('tar', ['-C', cluster.nodeRoot(node), '-cf', tar, 'etc', 'var']);
  await box.copyIn(tar, '/tmp/');
  await box.check(['mkdir', '-p', root]);
  await box.check(['tar', '-C', root, '-xf', `/tmp/${node}.tar`]);
}

async function main(): Promise<void> {
  const node = `latency-${process.pid}`;
  const npdNode = `latency-npd-${process.pid}`;
  const { deb } = ensurePackages();
  const cluster = await Cluster.up(host, NPD ? [node, npdNode] : [node]);
  const box = await Box.up(host, 'latency');
  const work = mkdtempSync(join(tmpdir(), 'nha-latency-'));
  host.teardown(() => rmSync(work, { recursive: true, force: true }));
  await copyCredentials(box, cluster, node, work, '/');
  const metricsPort = await freePort();
  writeFileSync(join(work, '50-test.ini'), ini(metricsPort));
  await box.check(['mkdir', '-p', '/etc/node-health']);
  await box.copyIn(join(work, '50-test.ini'), '/etc/node-health/');
  await box.copyIn(deb, '/tmp/');
  await box.check(['apt-get', 'install', '-y', '-q', `/tmp/${deb.split('/').pop() as string}`], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 180_000 });

  // journalctl -f beside the agent, stamping each line as it prints it: the floor any journal reader has.
  await box.check(['systemd-run', '--unit=latency-follow', '--quiet', 'bash', '-c',
    `journalctl -f -n 0 -t ${TAG} -o cat | while IFS= read -r l; do echo "$EPOCHREALTIME $l"; done >/run/latency-follow.txt`]);
  const { trials: agent, writes } = await runTrials(box, cluster, {
    name: 'agent',
    node,
    line: (i) => `probe ${i % 2 === 1 ? 'set' : 'clear'} ${i}`,
    want: (i) => ({ status: i % 2 === 1 ? 'True' : 'False' }),
    changeLog: ['-u', 'node-health-agent', `NODE_HEALTH_CONDITION=${TYPE}`],
    writes: () => apiWrites(box, metricsPort),
  }, { status: 'False' });
  await box.check(['systemctl', 'stop', 'latency-follow']);
  const followed = new Map<string, number>();
  for (const l of (await box.check(['cat', '/run/latency-follow.txt'])).split('\n')) {
    const sp = l.indexOf(' ');
    if (sp > 0) followed.set(l.slice(sp + 1), Number(l.slice(0, sp)) * 1000);
  }
  agent.forEach((tr, i) => {
    const at = followed.get(`probe ${(i + 1) % 2 === 1 ? 'set' : 'clear'} ${i + 1}`);
    if (at !== undefined) tr.followMs = at - tr.journaldMs;
  });
  report('agent', agent);
  console.log(`  condition writes (PATCH nodes/status) during the trials: ${writes ?? '?'} for ${TRIALS} changes`);
  if (!NPD) return;

  // node-problem-detector on the same box, the agent stopped, reporting on the second Node.
  await box.check(['systemctl', 'stop', 'node-health-agent']);
  await copyCredentials(box, cluster, npdNode, work, '/opt/npd-node');
  await box.check(['mkdir', '-p', '/opt/npd']);
  await box.copyIn(NPD, '/opt/npd/');
  writeFileSync(join(work, 'latency-monitor.json'), JSON.stringify(NPD_CONFIG, null, 2));
  await box.copyIn(join(work, 'latency-monitor.json'), '/opt/npd/');
  await box.check(['systemd-run', `--unit=${NPD_UNIT}`, '--quiet', '/opt/npd/node-problem-detector',
    '--config.system-log-monitor=/opt/npd/latency-monitor.json',
    `--apiserver-override=${cluster.server}?inClusterConfig=false&auth=/opt/npd-node/etc/kubernetes/kubelet.conf`,
    `--hostname-override=${npdNode}`, '--port=0', '--prometheus-port=0']);
  const { trials: npd } = await runTrials(box, cluster, {
    name: 'NPD',
    node: npdNode,
    line: (i) => `probe ${i % 2 === 1 ? 'a' : 'b'} ${i}`,
    want: (i) => ({ status: 'True', reason: i % 2 === 1 ? 'LatencyProbeA' : 'LatencyProbeB' }),
    changeLog: ['-u', NPD_UNIT, '--grep', 'New status generated'],
  }, { status: 'False' });
  report('NPD', npd);
}

main()
  .catch((err: unknown) => {
    console.error(`condition-latency: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const fn of teardowns) await fn();
  });
