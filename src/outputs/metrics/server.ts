// The agent's Prometheus metrics and the HTTP endpoint that serves them (GET /metrics). The names of
// node-problem-detector's two metrics are kept, so dashboards and alerts built on NPD keep working.
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Config } from '../../config/schema';
import type { CheckResult, NodeCondition } from '../../types';
import { VERSION } from '../../version';
import type { RequestRecord } from '../kubernetes/client';
import type { ReporterStatus } from '../kubernetes/reporter';
import type { Logger } from '../log';
import { Registry, type Labels } from './registry';

export type MetricsConfig = Config['metrics'];

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the metrics read of the repair module's status (RuntimeHealth.status()). */
interface RepairBudgets {
  components: ReadonlyArray<{ name: string; unit: string | null; repair: { enabled: boolean; allowed: boolean; exhausted: boolean } | null }>;
}

/** What the metrics read of the ladder's status (Ladder.status()). */
interface LadderStep {
  active: { condition: string; step: string | null; stepSince: string | null } | null;
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly problemCounter = this.registry.counter(
    'problem_counter',
    'Number of times a specific type of problem have occurred.',
    ['reason'],
  );
  private readonly problemGauge = this.registry.gauge(
    'problem_gauge',
    'Whether a specific type of problem is affecting the node or not.',
    ['type', 'reason'],
  );
  private readonly checkDuration = this.registry.histogram(
    'node_health_check_duration_seconds',
    'How long one run of a check took.',
    ['check'],
    DURATION_BUCKETS,
  );
  private readonly apiRequests = this.registry.counter(
    'node_health_api_requests_total',
    'Kubernetes API requests by verb, resource and HTTP status ("error": no response).',
    ['verb', 'resource', 'code'],
  );
  private readonly apiDuration = this.registry.histogram(
    'node_health_api_request_duration_seconds',
    'Kubernetes API request latency by verb.',
    ['verb'],
    DURATION_BUCKETS,
  );
  private readonly journalLag = this.registry.gauge(
    'node_health_journal_lag_seconds',
    'Age of the newest journal entry processed when it was processed.',
  );
  private readonly repairs = this.registry.counter(
    'node_health_repairs_total',
    'Repair actions by unit, action and result.',
    ['unit', 'action', 'result'],
  );
  /** Reason last set per condition type, so a new reason clears the old one's series (as NPD does). */
  private readonly reasons = new Map<string, string>();
  private reporter: (() => ReporterStatus) | undefined;
  private runtime: (() => RepairBudgets | null) | undefined;
  private ladder: (() => LadderStep) | undefined;

  constructor(private readonly startedAt: Date = new Date()) {
    const r = this.registry;
    r.collect('node_health_info', 'The running agent; the value is always 1.', 'gauge', () => [[{ version: VERSION }, 1]]);
    r.collect('node_health_kubernetes_connected', 'Whether the Node could be read with the kubelet credentials (1) or not (0).', 'gauge', () =>
      this.reporter ? [[{}, this.reporter().connected ? 1 : 0]] : [],
    );
    r.collect('node_health_kubernetes_pending', 'Condition changes and events not yet written to the API server.', 'gauge', () =>
      this.reporter ? [[{}, this.reporter().pending]] : [],
    );
    r.collect('node_health_kubernetes_last_write_timestamp_seconds', 'When node conditions were last written (Unix time).', 'gauge', () => {
      const at = this.reporter?.().lastWriteAt;
      return at ? [[{}, Date.parse(at) / 1000]] : [];
    });
    r.collect('node_health_events_suppressed_total', 'Events held back by the per-reason rate limit and reported in summaries.', 'counter', () =>
      this.reporter ? [[{}, this.reporter().events.suppressed]] : [],
    );
    r.collect('node_health_events_failed_total', 'Events dropped unwritten: refused for what they are, or refused (401/403) for 5 minutes.', 'counter', () =>
      this.reporter ? [[{}, this.reporter().events.failed]] : [],
    );
    // For the alerts (packaging/monitoring/): a budget that ran out, a ladder step that never ends.
    r.collect(
      'node_health_repair_budget_exhausted',
      'Whether the repair budget of a component is used up (1): the agent no longer repairs it until repairs leave the window.',
      'gauge',
      () =>
        (this.runtime?.()?.components ?? []).flatMap((c) =>
          c.repair?.enabled && c.repair.allowed && c.unit ? [[{ component: c.name, unit: c.unit }, c.repair.exhausted ? 1 : 0] as [Labels, number]] : [],
        ),
    );
    r.collect('node_health_ladder_step_start_timestamp_seconds', 'When the step the running ladder is in began (Unix time); absent while no ladder runs.', 'gauge', () => {
      const a = this.ladder?.().active;
      return a?.step && a.stepSince ? [[{ condition: a.condition, step: a.step }, Date.parse(a.stepSince) / 1000]] : [];
    });
    r.collect('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => [[{}, process.memoryUsage.rss()]]);
    r.collect('process_cpu_seconds_total', 'User and system CPU time spent in seconds.', 'counter', () => {
      const u = process.cpuUsage();
      return [[{}, (u.user + u.system) / 1e6]];
    });
    r.collect('process_start_time_seconds', 'Start time of the process since the Unix epoch in seconds.', 'gauge', () => [[{}, this.startedAt.getTime() / 1000]]);
    r.collect('process_open_fds', 'Number of open file descriptors.', 'gauge', () => [[{}, readdirSync('/proc/self/fd').length]]);
    r.collect('nodejs_heap_size_used_bytes', 'V8 heap in use in bytes.', 'gauge', () => [[{}, process.memoryUsage().heapUsed]]);
  }

  /** NPD's problem_gauge: 1 for the condition's type and reason while it is True, the reason it replaced set to 0. */
  setCondition(c: NodeCondition): void {
    const previous = this.reasons.get(c.type);
    if (previous !== undefined && previous !== c.reason) this.problemGauge.set({ type: c.type, reason: previous }, 0);
    this.reasons.set(c.type, c.reason);
    this.problemGauge.set({ type: c.type, reason: c.reason }, c.status === 'True' ? 1 : 0);
  }

  /** NPD's problem_counter: each temporary problem (a Warning event) and each condition turning True. */
  countProblem(reason: string, count = 1): void {
    this.problemCounter.inc({ reason }, count);
  }

  recordCheck(check: string, seconds: number): void {
    this.checkDuration.observe({ check }, seconds);
  }

  /** Pass as the reporter's onRequest option. */
  recordApiRequest(r: RequestRecord): void {
    this.apiRequests.inc({ verb: r.verb, resource: r.resource, code: r.code });
    this.apiDuration.observe({ verb: r.verb }, r.seconds);
  }

  setJournalLag(seconds: number): void {
    this.journalLag.set({}, seconds);
  }

  countRepair(unit: string, action: string, result: string): void {
    this.repairs.inc({ unit, action, result });
  }

  /** Exposes the Kubernetes reporter's state; pass a new one after it is recreated. */
  watchReporter(status: (() => ReporterStatus) | undefined): void {
    this.reporter = status;
  }

  /** Exposes the repair budgets of the runtime components (null while runtime health does not run). */
  watchRuntime(status: (() => RepairBudgets | null) | undefined): void {
    this.runtime = status;
  }

  /** Exposes the step of the running ladder. */
  watchLadder(status: (() => LadderStep) | undefined): void {
    this.ladder = status;
  }

  /** Exposes what cannot write to the state directory now: 1 per component and errno; none when all is well. */
  watchDegraded(list: () => ReadonlyArray<{ component: string; reason: string }>): void {
    this.registry.collect(
      'node_health_degraded',
      'A component that cannot write to the state directory (ENOSPC, EROFS, EIO…) and keeps its data in memory, retrying; the value is always 1.',
      'gauge',
      () => list().map((d) => [{ component: d.component, reason: d.reason }, 1]),
    );
  }

  /** Exposes the latest finding of every check and subject; a finding that changed status drops its old series. */
  watchChecks(results: () => readonly CheckResult[]): void {
    this.registry.collect(
      'node_health_check_finding',
      'Latest finding of a check about one subject (a mount, an interface; empty for the host), by status; the value is always 1.',
      'gauge',
      () => results().map((r) => [{ check: `${r.component}/${r.check}`, subject: r.subject ?? '', status: r.status, reason: r.reason }, 1]),
    );
  }
}

export class MetricsError extends Error {
  readonly code = 'METRICS_UNAVAILABLE';
  override name = 'MetricsError';
}

export class MetricsServer {
  private constructor(
    private readonly server: Server,
    readonly address: string,
    readonly port: number,
  ) {}

  /** Listens on cfg.address:cfg.port; a port in use is a MetricsError that names it. */
  static start(cfg: MetricsConfig, metrics: AgentMetrics, log: Logger): Promise<MetricsServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('use GET\n');
        return;
      }
      let body: string;
      try {
        body = metrics.registry.expose();
      } catch (err) {
        log.error(`metrics: could not render the metrics: ${String(err)}`);
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('could not render the metrics; see the agent log\n');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    // A scraper that stalls must not hold sockets open for ever.
    server.requestTimeout = 10_000;
    server.headersTimeout = 10_000;
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const hint =
          err.code === 'EADDRINUSE'
            ? ' (node-problem-detector uses 20257 too): stop what listens there or set [metrics] port'
            : err.code === 'EADDRNOTAVAIL'
              ? ': no interface has this address; set [metrics] address'
              : '';
        reject(new MetricsError(`metrics: cannot listen on ${cfg.address}:${cfg.port}: ${err.code ?? err.message}${hint}`, { cause: err }));
      });
      server.listen(cfg.port, cfg.address, () => {
        const a = server.address();
        const port = typeof a === 'object' && a ? a.port : cfg.port;
        log.info(`metrics: serving http://${cfg.address.includes(':') ? `[${cfg.address}]` : cfg.address}:${port}/metrics`);
        resolve(new MetricsServer(server, cfg.address, port));
      });
    });
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
