// The outputs the daemon writes to, started together: the metrics (and their HTTP endpoint) and the
// Kubernetes reporter (NodeConditions and Events with the kubelet's credentials). They are told what
// the engine decided and read the rest (checks, sources, degraded writers) when asked.
import type { Config } from '../config/schema';
import type { Degradation, EventReport, Logger, NodeCondition, RecordedResult, SourcesStatus } from '../types';
import type { RequestRecord } from './kubernetes/client';
import { NodeReporter } from './kubernetes/reporter';
import { AgentMetrics, MetricsError, MetricsServer } from './metrics/server';

export interface OutputsOptions {
  /** --node-name from the command line. */
  nodeName?: string | undefined;
  /** The Node's conditions when the reporter first reads it, before its first write. */
  onNodeRead(conditions: NodeCondition[]): void;
  checks(): readonly RecordedResult[];
  degraded(): Degradation[];
  sources(): SourcesStatus;
}

export class Outputs {
  /** Absent when [kubernetes] is off. */
  readonly reporter: NodeReporter | undefined;
  private readonly lagTimer: NodeJS.Timeout;

  private constructor(
    readonly metrics: AgentMetrics,
    private readonly server: MetricsServer | undefined,
    config: Config,
    log: Logger,
    o: OutputsOptions,
  ) {
    this.metrics.watchChecks(() => o.checks());
    this.metrics.watchDegraded(() => o.degraded());
    this.metrics.watchRuntime(() => o.sources().runtime);
    if (config.kubernetes.enabled) {
      // Connects in the background: an API server that is slow or away never holds back READY.
      const reporter = NodeReporter.start(config.kubernetes, log, {
        nodeName: o.nodeName,
        onRequest: (r) => this.apiRequest(r),
        onAdopted: (conditions) => o.onNodeRead(conditions),
      });
      this.reporter = reporter;
      this.metrics.watchReporter(() => reporter.status());
    }
    this.lagTimer = setInterval(() => {
      const lags = o.sources().journal.map((j) => j.lagMs ?? 0);
      if (lags.length > 0) this.metrics.setJournalLag(Math.max(...lags) / 1000);
    }, 5000);
    this.lagTimer.unref();
  }

  /** Serves the metrics (a port that cannot be had is logged, not fatal) and starts the reporter. */
  static async start(config: Config, log: Logger, o: OutputsOptions): Promise<Outputs> {
    let server: MetricsServer | undefined;
    const metrics = new AgentMetrics();
    if (config.metrics.enabled) {
      try {
        server = await MetricsServer.start(config.metrics, metrics, log);
      } catch (err) {
        if (!(err instanceof MetricsError)) throw err;
        log.error(`metrics are not served: ${err.message}`);
      }
    }
    return new Outputs(metrics, server, config, log, o);
  }

  conditionChanged(c: NodeCondition, all: NodeCondition[]): void {
    this.metrics.setCondition(c);
    if (c.status === 'True') this.metrics.countProblem(c.reason);
    this.publish(all);
  }

  event(e: EventReport): void {
    this.reporter?.event(e);
    if (e.severity === 'Warning') this.metrics.countProblem(e.reason, e.count ?? 1);
  }

  /** Hands the whole desired state to the Kubernetes writer (it writes only what changed). */
  publish(all: NodeCondition[]): void {
    this.reporter?.setConditions(all);
  }

  apiRequest(r: RequestRecord): void {
    this.metrics.recordApiRequest(r);
  }

  async stop(): Promise<void> {
    clearInterval(this.lagTimer);
    await this.reporter?.stop();
    await this.server?.stop();
  }
}
