// The metrics endpoint, scraped over HTTP and parsed by Prometheus' own Go parser and linter (promcheck/,
// built by scripts/build-test-tools.sh), so the exposition is checked by the real consumer, not by our
// reading of the format.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AgentMetrics, MetricsError, MetricsServer } from '../../src/outputs/metrics/server';
import type { ReporterStatus } from '../../src/outputs/kubernetes/reporter';
import type { RuntimeHealthStatus } from '../../src/repair/health';
import type { LadderStatus } from '../../src/repair/ladder/ladder';
import { recordingLogger } from './support';

interface Sample {
  labels: Record<string, string>;
  value: number;
  buckets?: Record<string, number>;
  count?: number;
}
interface Parsed {
  families: Record<string, { type: string; help: string; samples: Sample[] }>;
  lint: string[];
}

const source = join(__dirname, 'promcheck');

/** The promcheck binary for the current sources; a test never builds it (a cold build outlasts a scrape). */
function promcheck(): string {
  const sum = createHash('sha256').update(readFileSync(join(source, 'main.go'))).update(readFileSync(join(source, 'go.sum'))).digest('hex').slice(0, 12);
  const bin = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'node-health-agent', 'test', `promcheck-${sum}`);
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/setup.sh (or scripts/build-test-tools.sh) first`);
  return bin;
}

function parse(text: string): Parsed {
  const r = spawnSync(promcheck(), { input: text });
  if (r.status !== 0) throw new Error(`promcheck rejected the exposition: ${r.stderr.toString()}\n${text}`);
  return JSON.parse(r.stdout.toString()) as Parsed;
}

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    // A connection of its own per request: a kept-alive socket may be closed by the server between two.
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the exposition parses and lints clean with Prometheus tooling; NPD metrics keep their names and meaning', async (t) => {
  const metrics = new AgentMetrics(new Date('2026-01-01T00:00:00Z'));
  const server = await MetricsServer.start({ enabled: true, address: '127.0.0.1', port: 0 }, metrics, recordingLogger());
  t.teardown(() => server.stop());

  metrics.setCondition({ type: 'KernelDeadlock', status: 'True', reason: 'TaskHung', message: '', lastTransitionTime: '' });
  metrics.setCondition({ type: 'ReadonlyFilesystem', status: 'False', reason: 'FilesystemIsNotReadOnly', message: '', lastTransitionTime: '' });
  metrics.countProblem('OOMKilling', 3);
  metrics.countProblem('TaskHung');
  metrics.recordCheck('disk', 0.002);
  metrics.recordCheck('disk', 0.3);
  metrics.recordApiRequest({ verb: 'PATCH', resource: 'nodes/status', code: '200', seconds: 0.012 });
  metrics.recordApiRequest({ verb: 'PATCH', resource: 'nodes/status', code: 'error', seconds: 10 });
  metrics.setJournalLag(0.25);
  metrics.countRepair('containerd.service', 'restart', 'ok');
  // Label values are escaped: quotes, backslashes and newlines survive the round trip.
  metrics.countProblem('Weird "reason" \\ with\nnewline');
  const status: ReporterStatus = {
    apiServer: 'https://x',
    identity: 'system:node:n',
    credentials: 'c',
    nodeName: 'n',
    nodeNameSource: 'certificate',
    connected: true,
    lastWriteAt: '2026-01-01T00:01:00.000Z',
    lastError: null,
    pending: 2,
    conditionWrites: 1,
    events: { queued: 1, held: 1, sent: 5, suppressed: 7, failed: 2 },
  };
  metrics.watchReporter(() => status);
  const finding = { component: 'host', check: 'disk', severity: 'critical' as const, durationMs: 1, message: 'm' };
  metrics.watchChecks(() => [
    { ...finding, status: 'problem', reason: 'DiskSpaceCritical', subject: '/var/lib/containerd' },
    { ...finding, status: 'ok', reason: 'DiskSpaceOK', subject: '/' },
  ]);

  const res = await get(server.port, '/metrics');
  t.equal(res.status, 200);
  t.equal(res.type, 'text/plain; version=0.0.4; charset=utf-8');
  const { families: f, lint } = parse(res.body);

  t.same(f.problem_gauge?.samples.map((s) => [s.labels, s.value]).sort(), [
    [{ type: 'KernelDeadlock', reason: 'TaskHung' }, 1],
    [{ type: 'ReadonlyFilesystem', reason: 'FilesystemIsNotReadOnly' }, 0],
  ].sort());
  t.equal(f.problem_gauge?.type, 'GAUGE');
  t.equal(f.problem_counter?.type, 'COUNTER');
  t.same(Object.fromEntries(f.problem_counter?.samples.map((s) => [s.labels.reason, s.value]) ?? []), { OOMKilling: 3, TaskHung: 1, 'Weird "reason" \\ with\nnewline': 1 });
  t.match(f.node_health_check_duration_seconds?.samples[0], { labels: { check: 'disk' }, count: 2, buckets: { '0.001': 0, '0.005': 1, '0.25': 1, '0.5': 2, '10': 2 } });
  t.same(f.node_health_api_requests_total?.samples.map((s) => [s.labels.code, s.value]).sort(), [['200', 1], ['error', 1]]);
  t.equal(f.node_health_journal_lag_seconds?.samples[0]?.value, 0.25);
  t.same(f.node_health_check_finding?.samples.map((s) => [s.labels, s.value]), [
    [{ check: 'host/disk', subject: '/var/lib/containerd', status: 'problem', reason: 'DiskSpaceCritical' }, 1],
    [{ check: 'host/disk', subject: '/', status: 'ok', reason: 'DiskSpaceOK' }, 1],
  ]);
  t.same(f.node_health_repairs_total?.samples[0], { labels: { unit: 'containerd.service', action: 'restart', result: 'ok' }, value: 1 });
  t.equal(f.node_health_kubernetes_pending?.samples[0]?.value, 2);
  t.equal(f.node_health_kubernetes_connected?.samples[0]?.value, 1);
  t.equal(f.node_health_kubernetes_last_write_timestamp_seconds?.samples[0]?.value, Date.parse('2026-01-01T00:01:00Z') / 1000);
  t.equal(f.node_health_events_suppressed_total?.samples[0]?.value, 7);
  t.equal(f.node_health_events_failed_total?.samples[0]?.value, 2, 'events dropped unwritten');
  t.equal(f.process_start_time_seconds?.samples[0]?.value, Date.parse('2026-01-01T00:00:00Z') / 1000);
  t.ok((f.process_resident_memory_bytes?.samples[0]?.value ?? 0) > 10e6, 'RSS');
  t.ok((f.process_open_fds?.samples[0]?.value ?? 0) > 3, 'open fds');
  t.match(f.node_health_info?.samples[0]?.labels, { version: /.+/ });
  // NPD's names predate the naming conventions; they are kept for compatibility. Nothing else may fail.
  t.same(lint.sort(), [
    'problem_counter: counter metrics should have "_total" suffix',
    "problem_counter: metric name should not include type 'counter'",
    "problem_gauge: metric name should not include type 'gauge'",
  ]);

  // A reason change clears the old reason's series, as NPD does.
  metrics.setCondition({ type: 'KernelDeadlock', status: 'False', reason: 'KernelHasNoDeadlock', message: '', lastTransitionTime: '' });
  const after = parse((await get(server.port, '/metrics')).body).families.problem_gauge?.samples.filter((s) => s.labels.type === 'KernelDeadlock');
  t.same(after?.map((s) => [s.labels.reason, s.value]).sort(), [['KernelHasNoDeadlock', 0], ['TaskHung', 0]]);
});

t.test('only GET/HEAD /metrics; a port in use is named with what to do', async (t) => {
  const metrics = new AgentMetrics();
  const server = await MetricsServer.start({ enabled: true, address: '127.0.0.1', port: 0 }, metrics, recordingLogger());
  t.teardown(() => server.stop());
  t.equal((await get(server.port, '/')).status, 404);
  t.equal((await get(server.port, '/metrics', 'POST')).status, 405);
  const head = await get(server.port, '/metrics', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '');
  const err = await MetricsServer.start({ enabled: true, address: '127.0.0.1', port: server.port }, metrics, recordingLogger()).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof MetricsError);
  t.equal(
    (err as Error).message,
    `metrics: cannot listen on 127.0.0.1:${server.port}: EADDRINUSE (node-problem-detector uses 20257 too): stop what listens there or set [metrics] port`,
  );
});

t.test('the repair budgets and the running ladder step, for the alerts', async (t) => {
  const metrics = new AgentMetrics();
  const server = await MetricsServer.start({ enabled: true, address: '127.0.0.1', port: 0 }, metrics, recordingLogger());
  t.teardown(() => server.stop());
  const scrape = async (): Promise<Parsed['families']> => parse((await get(server.port, '/metrics')).body).families;

  let f = await scrape();
  t.same(f.node_health_repair_budget_exhausted?.samples ?? [], [], 'no series without repair');
  t.same(f.node_health_ladder_step_start_timestamp_seconds?.samples ?? [], [], 'no series without a ladder');

  const repair = { enabled: true, allowed: true, used: 3, max: 3, nextAllowedAt: null, exhausted: true };
  const component = { health: { state: 'healthy' as const, reason: '', message: '' }, failingSince: null, unitState: null, findings: [], restartsInWindow: null };
  const runtime: RuntimeHealthStatus = {
    mode: 'repair',
    bus: { connected: true, lastError: '' },
    components: [
      { ...component, name: 'containerd', unit: 'containerd.service', repair },
      { ...component, name: 'kubelet', unit: 'kubelet.service', repair: { ...repair, used: 1, exhausted: false } },
      // Not allowed to be repaired: no budget to run out.
      { ...component, name: 'kube-proxy', unit: 'kube-proxy.service', repair: { ...repair, allowed: false } },
      { ...component, name: 'kernel', unit: null, repair: null },
    ],
    legacyUnits: [],
    lastActions: [],
    actionsTotal: {},
  };
  metrics.watchRuntime(() => runtime);
  const ladder: LadderStatus = { enabled: true, dryRun: false, conditions: ['KernelDeadlock'], active: null, waiting: [], lastRuns: [] };
  metrics.watchLadder(() => ladder);

  f = await scrape();
  t.same(f.node_health_repair_budget_exhausted?.samples.map((s) => [s.labels, s.value]), [
    [{ component: 'containerd', unit: 'containerd.service' }, 1],
    [{ component: 'kubelet', unit: 'kubelet.service' }, 0],
  ]);
  t.same(f.node_health_ladder_step_start_timestamp_seconds?.samples ?? [], [], 'no series while no ladder runs');

  ladder.active = { run: 'r1', condition: 'KernelDeadlock', lease: 'l', step: 'drain', stepSince: '2026-01-01T00:05:00.000Z' };
  f = await scrape();
  t.same(f.node_health_ladder_step_start_timestamp_seconds?.samples.map((s) => [s.labels, s.value]), [
    [{ condition: 'KernelDeadlock', step: 'drain' }, Date.parse('2026-01-01T00:05:00Z') / 1000],
  ]);
  t.equal(f.node_health_ladder_step_start_timestamp_seconds?.type, 'GAUGE');
});
