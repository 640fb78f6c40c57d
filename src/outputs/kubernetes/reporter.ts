// The Kubernetes output: NodeConditions and Events on this node's Node object, written with the kubelet's
// own credentials. Connecting (kubeconfig → node name → reading the Node) is retried with back-off, so
// the agent may start before the kubelet has joined the cluster or while the API server is away;
// conditions and events given meanwhile are kept (bounded) and written once connected.
import { hostname as osHostname } from 'node:os';
import type { Config } from '../../config/schema';
import { messageOf } from '../../errors';
import { background } from '../../system/background';
import type { EventReport, NodeCondition } from '../../types';
import type { Logger } from '../log';
import { KubeClient, type RequestRecord } from './client';
import { ConditionWriter } from './condition-writer';
import { KubeError } from './errors';
import { EventWriter } from './event-writer';
import { explain, OnceLog, type Identity } from './explain';
import { createKubeClient, whoAmI } from './connect';
import { resolveNodeName } from './node-name';
import { Backoff } from '../../system/backoff';
import type { EventObject, NodeObject } from './types';
import type { ReporterStatus } from '../../types';
export type { ReporterStatus };

export type KubernetesConfig = Config['kubernetes'];

export interface ReporterOptions {
  /** --node-name from the command line. */
  nodeName?: string | undefined;
  env?: NodeJS.ProcessEnv;
  hostname?: () => string;
  /** Called after every API request (for metrics). */
  onRequest?: (r: RequestRecord) => void;
  /**
   * Called once, when the Node is first read, with adopted(); synchronously, before the condition writer's
   * first write, so the owner's desired state can take the Node's in first.
   */
  onAdopted?: (conditions: NodeCondition[]) => void;
}

const NAMESPACE = 'default';

export class NodeReporter {
  private client: KubeClient | undefined;
  private who: Identity & { identity?: string | undefined } = { nodeName: '', nodeNameSource: 'hostname' };
  private resolved = false;
  private adoptedConditions: NodeCondition[] = [];
  private adoptedResolve!: (c: NodeCondition[]) => void;
  private readonly adoption = new Promise<NodeCondition[]>((r) => {
    this.adoptedResolve = r;
  });
  private connected = false;
  /** The Node was read: from then on `connected` follows each request (served()). */
  private nodeRead = false;
  private connectError: string | null = null;
  private connectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff: Backoff;
  private readonly connectFailures: OnceLog;
  private readonly conditions: ConditionWriter;
  private readonly events: EventWriter;
  private readonly fieldManager: string;

  private constructor(
    private readonly cfg: KubernetesConfig,
    private readonly log: Logger,
    private readonly opts: ReporterOptions,
  ) {
    this.fieldManager = cfg.field_manager;
    this.backoff = new Backoff(1000, cfg.retry_max);
    this.connectFailures = new OnceLog(log, 'connecting to the API server');
    const identity = () => this.who;
    this.conditions = new ConditionWriter(
      { patchStatus: (body) => this.api().request<NodeObject>('PATCH', `/api/v1/nodes/${this.who.nodeName}/status`, this.patch(body)) },
      {
        heartbeatMs: cfg.heartbeat,
        burst: cfg.status_burst,
        refillMs: cfg.status_refill,
        retryMaxMs: cfg.retry_max,
        removeStale: cfg.remove_stale_conditions,
        fieldManager: cfg.field_manager,
        log,
        identity,
      },
    );
    const events = `/api/v1/namespaces/${NAMESPACE}/events`;
    this.events = new EventWriter(
      {
        create: (event) => this.api().request<EventObject>('POST', events, { body: event, query: { fieldManager: this.fieldManager } }),
        patch: (name, body) => this.api().request<EventObject>('PATCH', `${events}/${name}`, this.patch(body)),
      },
      {
        burst: cfg.event_burst,
        refillMs: cfg.event_refill,
        retryMaxMs: cfg.retry_max,
        component: cfg.field_manager,
        namespace: NAMESPACE,
        log,
        identity,
      },
    );
  }

  /**
   * Starts reporting and returns at once: finding the kubeconfig, resolving the node name (which may run
   * an exec credential plugin) and reading the Node go on in the background, retried with back-off.
   */
  static start(cfg: KubernetesConfig, log: Logger, opts: ReporterOptions = {}): NodeReporter {
    const reporter = new NodeReporter(cfg, log, opts);
    void background('connecting to the API server', () => reporter.connect());
    return reporter;
  }

  /**
   * Starts reporting: finds the kubeconfig, resolves the node name and reads the Node. Waits for the first
   * attempt only; when it fails the reporter keeps trying in the background (see status().lastError).
   */
  static async create(cfg: KubernetesConfig, log: Logger, opts: ReporterOptions = {}): Promise<NodeReporter> {
    const reporter = new NodeReporter(cfg, log, opts);
    await reporter.connect();
    return reporter;
  }

  /** The Node's conditions as read at start, except the kubelet's; [] until the Node has been read. */
  adopted(): NodeCondition[] {
    return this.adoptedConditions.map((c) => ({ ...c }));
  }

  /** Resolves with adopted() once the Node has been read (at once when create() could read it). */
  whenAdopted(): Promise<NodeCondition[]> {
    return this.adoption;
  }

  /** Desired state of every owned condition type; written on change (coalesced) and on the heartbeat. */
  setConditions(conditions: readonly NodeCondition[]): void {
    this.conditions.setConditions(conditions);
  }

  event(e: EventReport): void {
    this.events.event(e);
  }

  status(): ReporterStatus {
    const w = this.conditions.status();
    const e = this.events.status();
    return {
      apiServer: this.client?.server ?? '',
      identity: this.who.identity ?? '',
      credentials: this.client?.credentials.describe() ?? '',
      nodeName: this.resolved ? this.who.nodeName : '',
      nodeNameSource: this.resolved ? this.who.nodeNameSource : '',
      connected: this.connected,
      lastWriteAt: w.lastWriteAt,
      lastError: this.connectError ?? w.lastError,
      pending: w.pending + e.queued + e.held,
      conditionWrites: w.writes,
      events: e,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.conditions.stop();
    this.events.stop();
    this.client?.close();
  }

  private api(): KubeClient {
    // The writers start only after the Node was read, which needs the client.
    if (!this.client) throw new KubeError('KUBECONFIG_NOT_FOUND', 'not connected to the API server yet');
    return this.client;
  }

  private patch(body: unknown) {
    return { body, contentType: 'application/strategic-merge-patch+json', query: { fieldManager: this.fieldManager } };
  }

  /**
   * Keeps `connected` true to what the last request saw. 404, 409 and 422 are answers about one object
   * (an expired Event, an Event already written) from a server that works and accepted the credentials.
   */
  private served(r: RequestRecord): void {
    if (!this.nodeRead) return;
    const code = Number(r.code);
    this.connected = !(r.code === 'error' || code === 401 || code === 403 || code === 429 || code >= 500);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.client) {
        const { client, file } = createKubeClient(this.cfg, {
          onRequest: (r) => {
            this.served(r);
            this.opts.onRequest?.(r);
          },
        });
        this.client = client;
        this.log.info(`kubernetes: using ${file} (${this.client.credentials.describe()}) for ${this.client.server}`, { file });
      }
      const client = this.client;
      if (!this.resolved) {
        await client.credentials.get();
        const r = await resolveNodeName({
          flag: this.opts.nodeName,
          configured: this.cfg.node_name,
          env: this.opts.env ?? process.env,
          certificateCN: client.credentials.certificateCommonName(),
          whoAmI: () => whoAmI(client),
          hostname: this.opts.hostname ?? osHostname,
        });
        this.who = { nodeName: r.name, nodeNameSource: r.source, identity: r.identity };
        this.resolved = true;
        this.log.info(`kubernetes: reporting on Node ${r.name} (name from ${r.source}) as ${r.identity ?? 'an unverified identity'}`, {
          node: r.name,
          node_name_source: r.source,
        });
      }
      const node = await client.request<NodeObject>('GET', `/api/v1/nodes/${this.who.nodeName}`).catch((err: unknown) => {
        throw new KubeError('API', explain(err, `read Node ${this.who.nodeName}`, this.who), { cause: err });
      });
      this.adoptedConditions = this.conditions.adopt(node);
      this.events.setNode({ name: node.metadata.name, uid: node.metadata.uid });
      this.nodeRead = true;
      this.connected = true;
      this.connectError = null;
      this.connectFailures.recovered();
      const adopted = this.adopted();
      void background("adopting the Node's conditions", () => this.opts.onAdopted?.(adopted));
      this.adoptedResolve(this.adopted());
    } catch (err) {
      this.connectError = messageOf(err);
      this.connectFailures.failed(err instanceof KubeError && err.cause !== undefined ? err.cause : err, this.connectError);
      const delay = this.backoff.next();
      this.connectTimer = setTimeout(() => void background('connecting to the API server', () => this.connect()), delay);
      this.connectTimer.unref();
    }
  }
}
