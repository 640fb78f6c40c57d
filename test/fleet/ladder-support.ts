// The whole ladder raced by many nodes on a real API server. Each node runs the agent's ladder wired as
// the daemon wires it (src/repair/ladder/assembly.ts, startLadder): the NodeReporter with the node's own kubelet client
// certificate (conditions and Events), a KubeClient with the same credentials for the NodeApi, the real
// Coordinator with the coordination ServiceAccount's token, the real Ladder with its ledger on disk. What
// a node needs and nothing here runs is played by the harness: the machine (reboot = the agent stopped,
// a new boot ID after a delay, the condition gone), the kubelet (Ready after a boot, evicted pods ended).
//
// A crash is a power cut as the rest of the cluster sees it: every connection of that agent is cut at
// once and refused from then on (each agent talks to the API server through a proxy of its own), and the
// next start reads its ledger as it was on disk at that instant (each start has a state directory of its
// own, filled with that copy). The dead instance's timers are stopped afterwards; nothing it does after
// the cut reaches the API server or the next instance's disk.
//
// Judged afterwards from what admin watches recorded of Nodes and Leases (every version, with its
// resourceVersion, which with etcd is one revision counter for all objects: the two histories merge
// into one order) and from the Events on the Nodes, not from what the agents believe.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { request } from 'node:https';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maintenanceWindows } from '../../src/config/sections/ladder';
import { KubeClient, type RequestRecord } from '../../src/outputs/kubernetes/client';
import { loadKubeconfig } from '../../src/outputs/kubernetes/kubeconfig';
import { NodeReporter } from '../../src/outputs/kubernetes/reporter';
import { userAgent } from '../../src/outputs/kubernetes/connect';
import { Coordinator } from '../../src/repair/fleet/coordinator';
import { CORDONED_BY_AGENT } from '../../src/repair/ladder/cordon';
import { Ladder } from '../../src/repair/ladder/ladder';
import { LADDER_LEDGER_FILE, LadderLedger } from '../../src/repair/ladder/ledger';
import type { Rebooter } from '../../src/repair/ladder/login1';
import { NodeApi } from '../../src/repair/ladder/node-api';
import type { LadderSettings } from '../../src/repair/ladder/settings';
import type { NodeCondition } from '../../src/types';
import type { Cluster, EventView } from '../helpers/cluster';
import { kubernetesConfig, recordingLogger, type RecordingLogger } from '../kubernetes/support';
import { createPod, ensureDefaultServiceAccount } from '../ladder/support';
import type { LeaseEvent } from './simulation';
import { NAMESPACE, setCondition, sleep, type Fleet, type LeaseView } from './support';
import { seededRandom } from '../helpers/random';

export interface LadderSimOptions {
  nodes: number;
  slots: number;
  ttlMs: number;
  skewMs: number;
  minGapMs: number;
  /** [coordination] retry_interval. */
  retryMs: number;
  /** [remediate] after. */
  afterMs: number;
  /** How often the ladder reads the Node while draining and verifying (the daemon: 5 s). */
  pollMs: number;
  /** How soon the ladder asks again after an API error (the daemon: 5 min). */
  recheckMs: number;
  /** Share of nodes whose agent crashes once while its ladder is active (rounded to whole nodes). */
  crashRate: number;
  /** A crashing node crashes once its ladder has been active this long (uniform). */
  crashAfterMs: [number, number];
  /** From logind accepting the reboot to the agent being stopped (systemd stopping units). */
  shutdownMs: [number, number];
  /** From the machine going down to the next boot starting the agent. */
  bootMs: [number, number];
  /** From the boot to the kubelet reporting Ready. */
  kubeletReadyMs: [number, number];
  seed: number;
  timeoutMs: number;
  condition: string;
  prefix: string;
}

export interface WatchEvent<T> {
  /** When the watch delivered it (this process's clock, which every agent here shares). */
  at: number;
  /** metadata.resourceVersion: etcd's revision of the write. */
  rv: number;
  type: string;
  object: T;
}

export interface SimNode {
  metadata: { name: string; resourceVersion: string; annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status?: { conditions?: Array<{ type: string; status: string; lastHeartbeatTime?: string; lastTransitionTime?: string }> };
}

export interface AgentRequest {
  at: number;
  node: string;
  identity: 'kubelet' | 'coordination';
  verb: string;
  resource: string;
  code: string;
}

export interface CrashRecord {
  node: string;
  at: number;
  /** The ladder step the agent was in. */
  step: string;
  backAfterMs: number;
  /** When the fresh instance started; undefined if the run ended first. */
  backAt: number | undefined;
}

export interface RebootRecord {
  node: string;
  acceptedAt: number;
  downAt: number | undefined;
  upAt: number | undefined;
}

export interface LadderSimResult {
  options: LadderSimOptions;
  nodes: string[];
  /** When every node's condition turned True. */
  hitAt: number;
  /** When the harness saw every node repaired (or gave up). */
  endAt: number;
  done: boolean;
  nodeHistory: WatchEvent<SimNode>[];
  leaseHistory: WatchEvent<LeaseView>[];
  watchErrors: string[];
  events: EventView[];
  crashes: CrashRecord[];
  reboots: RebootRecord[];
  requests: AgentRequest[];
  /** Each node's agent log, all its instances in order. */
  logs: Map<string, string[]>;
}

/**
 * A TCP proxy in front of the API server for one agent instance (TLS passes through untouched). cut()
 * is the power cut: every connection is destroyed and new ones are refused — the port stays bound
 * until close(), so a dead instance reconnecting never reaches a proxy that reused its port.
 */
export class ApiProxy {
  private readonly sockets = new Set<Socket>();
  private dead = false;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static start(target: URL): Promise<ApiProxy> {
    return new Promise((resolve, reject) => {
      let proxy: ApiProxy | undefined;
      const server = createServer((client) => {
        if (!proxy || proxy.dead) {
          client.destroy();
          return;
        }
        const upstream = connect(Number(target.port), target.hostname);
        for (const s of [client, upstream]) {
          proxy.sockets.add(s);
          s.on('close', () => proxy?.sockets.delete(s));
          s.on('error', () => undefined);
        }
        client.pipe(upstream);
        upstream.pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (address === null || typeof address === 'string') {
          reject(new Error('proxy: no TCP address'));
          return;
        }
        proxy = new ApiProxy(server, `https://127.0.0.1:${address.port}`);
        resolve(proxy);
      });
    });
  }

  cut(): void {
    this.dead = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Watches a collection as the admin and records every version it delivers; carries on when the API server ends the watch. */
export class AdminWatch<T extends { metadata: { resourceVersion?: string } }> {
  readonly events: WatchEvent<T>[] = [];
  /** Set when the API server sent an ERROR (e.g. 410 Gone): the history is incomplete then. */
  error: string | undefined;
  private req: ClientRequest | undefined;
  private closed = false;

  private constructor(
    private readonly cluster: Cluster,
    private readonly path: string,
    private readonly onEvent: ((e: WatchEvent<T>) => void) | undefined,
  ) {}

  static async start<T extends { metadata: { resourceVersion?: string } }>(cluster: Cluster, path: string, onEvent?: (e: WatchEvent<T>) => void): Promise<AdminWatch<T>> {
    const w = new AdminWatch<T>(cluster, path, onEvent);
    const list = await cluster.admin<{ metadata: { resourceVersion: string }; items: T[] }>('GET', path);
    if (list.status !== 200) throw new Error(`list ${path}: ${list.status} ${JSON.stringify(list.body)}`);
    const now = Date.now();
    for (const item of list.body.items) w.push({ at: now, rv: Number(item.metadata.resourceVersion), type: 'EXISTING', object: item });
    await w.open(list.body.metadata.resourceVersion);
    return w;
  }

  stop(): void {
    this.closed = true;
    this.req?.destroy();
  }

  private push(e: WatchEvent<T>): void {
    this.events.push(e);
    this.onEvent?.(e);
  }

  private open(resourceVersion: string): Promise<void> {
    const url = new URL(`${this.cluster.server}${this.path}`);
    url.searchParams.set('watch', '1');
    url.searchParams.set('resourceVersion', resourceVersion);
    url.searchParams.set('allowWatchBookmarks', 'false');
    return new Promise((resolve, reject) => {
      const req = request(url, {
        ca: readFileSync(this.cluster.caFile),
        cert: readFileSync(join(this.cluster.dir, 'pki/admin.crt')),
        key: readFileSync(join(this.cluster.dir, 'pki/admin.key')),
        headers: { Accept: 'application/json' },
      });
      this.req = req;
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`watch ${this.path}: ${res.statusCode}`));
          return;
        }
        resolve();
        let buffered = '';
        let last = resourceVersion;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (line.trim() === '') continue;
            const e = JSON.parse(line) as { type: string; object: T };
            if (e.type === 'ERROR') {
              this.error = `watch ${this.path}: ${line}`;
              continue;
            }
            last = e.object.metadata.resourceVersion ?? last;
            this.push({ at: Date.now(), rv: Number(e.object.metadata.resourceVersion), type: e.type, object: e.object });
          }
        });
        res.on('end', () => {
          if (!this.closed) this.open(last).catch((err: unknown) => (this.error = `watch ${this.path}: reconnect: ${String(err)}`));
        });
      });
      req.on('error', (err) => {
        if (!this.closed) reject(err);
      });
      req.end();
    });
  }
}

/** The Ladder settings the daemon would build from [ladder] and [remediate "<condition>"], with the simulation's short times. */
function simLadderSettings(o: LadderSimOptions): LadderSettings {
  return {
    enabled: true,
    dryRun: false,
    windows: maintenanceWindows.parse('always'),
    blockingPods: '',
    drainTimeoutMs: 30_000,
    uncordonOnFailure: true,
    rebootTimeoutMs: 30_000,
    afterBootTimeoutMs: 30_000,
    retryMs: 1000,
    conditions: new Map([[o.condition, { afterMs: o.afterMs, steps: ['cordon', 'drain', 'reboot'] as const }]]),
  };
}

interface SimContext {
  o: LadderSimOptions;
  fleet: Fleet;
  target: URL;
  random: () => number;
  settings: LadderSettings;
  stateRoot: string;
  requests: AgentRequest[];
  crashes: CrashRecord[];
  reboots: RebootRecord[];
  proxies: ApiProxy[];
  /** Pending harness work (shutdowns, boots, restarts, kubelet reports): the run is not over while any is. */
  pending: Set<Promise<unknown>>;
  failures: string[];
}

const between = (random: () => number, [lo, hi]: [number, number]): number => lo + random() * (hi - lo);

/** One start of the agent on a machine, until it is stopped (shutdown) or killed (crash). */
class Instance {
  alive = true;
  ladder: Ladder | undefined;
  readonly started: Promise<void>;
  private proxy: ApiProxy | undefined;
  private reporter: NodeReporter | undefined;
  private coordinator: Coordinator | undefined;
  private ladderClient: KubeClient | undefined;
  private readonly log: RecordingLogger = recordingLogger();
  private readonly dir: string;

  constructor(
    private readonly ctx: SimContext,
    private readonly machine: Machine,
    readonly id: string,
    readonly bootId: string,
    disk: Buffer | undefined,
  ) {
    this.dir = join(ctx.stateRoot, machine.node, id);
    mkdirSync(this.dir, { recursive: true });
    if (disk) writeFileSync(join(this.dir, LADDER_LEDGER_FILE), disk, { mode: 0o600 });
    this.started = this.start();
  }

  private record(identity: AgentRequest['identity'], r: RequestRecord): void {
    if (!this.alive) return;
    this.ctx.requests.push({ at: Date.now(), node: this.machine.node, identity, verb: r.verb, resource: r.resource, code: r.code });
  }

  private async start(): Promise<void> {
    const { ctx, machine } = this;
    this.proxy = await ApiProxy.start(ctx.target);
    ctx.proxies.push(this.proxy);
    if (!this.alive) return;
    const cluster = ctx.fleet.cluster;
    // The node's kubelet.conf with the server moved to this instance's proxy, beside the original so
    // its relative paths to the client certificate still resolve.
    const kubeconfig = join(cluster.nodeRoot(machine.node), 'etc/kubernetes', `kubelet-${this.id}.conf`);
    writeFileSync(kubeconfig, readFileSync(cluster.kubeletConf(machine.node), 'utf8').replace(/^(\s*server:).*$/m, `$1 ${this.proxy.url}`), { mode: 0o600 });
    const kcfg = kubernetesConfig({ kubeconfig_paths: [kubeconfig], retry_max: 1000, request_timeout: 10_000 });
    const kubelet = (r: RequestRecord): void => this.record('kubelet', r);
    this.reporter = await NodeReporter.create(kcfg, this.log, { onRequest: kubelet });
    const reporter = this.reporter;
    reporter.setConditions([machine.condition]);
    await reporter.whenAdopted();
    if (!this.alive) return;
    const node = reporter.status().nodeName;
    if (node !== machine.node) throw new Error(`${machine.node}: the reporter resolved the node name ${node} from the kubelet certificate`);
    this.ladderClient = new KubeClient(loadKubeconfig(kubeconfig), { userAgent: userAgent(kcfg.field_manager), timeoutMs: kcfg.request_timeout, onRequest: kubelet });
    const o = ctx.o;
    const config = ctx.fleet.config(
      {
        server: this.proxy.url,
        slots: o.slots,
        lease_ttl: o.ttlMs,
        max_clock_skew: o.skewMs,
        min_gap: o.minGapMs,
        retry_interval: o.retryMs,
        new_node_grace: 0,
        reboot_lockout: 60_000,
        // Every node has the condition at once, which is what the breaker stops in the field; here the
        // subject is the semaphore, so the breaker's floor is the whole pool.
        breaker_max_nodes: o.nodes,
      },
      { request_timeout: 10_000 },
    );
    this.coordinator = new Coordinator(config, node, { log: this.log, onRequest: (r) => this.record('coordination', r), random: ctx.random });
    this.coordinator.start();
    const rebooter: Rebooter = {
      canReboot: async () => 'yes',
      reboot: async () => {
        if (!this.alive) throw new Error('org.freedesktop.login1.Manager.Reboot: cannot connect to the system bus');
        machine.rebootAccepted(this);
      },
    };
    this.ladder = new Ladder({
      settings: ctx.settings,
      gate: this.coordinator,
      node: new NodeApi(this.ladderClient, node, kcfg.field_manager),
      rebooter,
      ledger: LadderLedger.open(this.dir),
      events: {
        event: (e) => reporter.event(e),
        flush: async (ms) => {
          const until = Date.now() + ms;
          while (Date.now() < until && reporter.status().events.queued > 0) await sleep(50);
        },
      },
      condition: (type) => (type === machine.condition.type ? machine.condition : undefined),
      log: this.log,
      bootId: this.bootId,
      pollMs: o.pollMs,
      recheckMs: o.recheckMs,
    });
    this.ladder.start();
  }

  idle(): boolean {
    return this.alive && this.ladder?.status().active == null && this.reporter?.status().events.queued === 0;
  }

  conditionChanged(c: NodeCondition): void {
    if (!this.alive) return;
    this.reporter?.setConditions([c]);
    // Not started yet: the ladder reads the machine's condition when it starts.
    this.ladder?.conditionChanged(c);
  }

  /** The agent stopped by systemd: what Agent.stop() does, in its order. Returns the ledger as left on disk. */
  async stop(): Promise<Buffer | undefined> {
    await this.started.catch(() => undefined);
    await this.ladder?.stop();
    this.coordinator?.stop();
    this.ladderClient?.close();
    await this.reporter?.stop();
    this.alive = false;
    this.proxy?.cut();
    return this.disk();
  }

  /** The power cut: connections cut at once, the ledger as it is on disk now; the dead code is stopped afterwards. */
  kill(): Buffer | undefined {
    this.alive = false;
    this.proxy?.cut();
    const disk = this.disk();
    const cleanup = this.started
      .catch(() => undefined)
      .then(async () => {
        await this.ladder?.stop();
        this.coordinator?.stop();
        this.ladderClient?.close();
        await this.reporter?.stop();
      });
    this.ctx.pending.add(cleanup);
    void cleanup.finally(() => this.ctx.pending.delete(cleanup));
    return disk;
  }

  logLines(): string[] {
    return this.log.entries.map((e) => `[${this.id}] ${e.level}: ${e.message}`);
  }

  private disk(): Buffer | undefined {
    const file = join(this.dir, LADDER_LEDGER_FILE);
    return existsSync(file) ? readFileSync(file) : undefined;
  }
}

/** A node's machine: boots, its agent's starts, its condition (kept across agent restarts, gone with a reboot). */
class Machine {
  state: 'up' | 'going-down' | 'down' = 'up';
  instance: Instance | undefined;
  condition: NodeCondition;
  /** The ledger file as on disk while no agent runs. */
  private disk: Buffer | undefined;
  private boot = 1;
  private starts = 0;
  private bootId = randomUUID();
  /** Harness timers not yet fired, with what ends them. */
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private ended = false;
  readonly instances: Instance[] = [];
  /** Crash once the ladder has been active this long; undefined: this node does not crash (any more). */
  crashAfterMs: number | undefined;
  activeMs = 0;

  constructor(
    private readonly ctx: SimContext,
    readonly node: string,
  ) {
    this.condition = { type: ctx.o.condition, status: 'False', reason: `No${ctx.o.condition}`, message: '', lastTransitionTime: new Date().toISOString() };
  }

  startAgent(): Instance {
    const inst = new Instance(this.ctx, this, `boot${this.boot}-start${++this.starts}`, this.bootId, this.disk);
    this.instance = inst;
    this.instances.push(inst);
    inst.started.catch((err: unknown) => this.ctx.failures.push(`${this.node}: agent start ${inst.id} failed: ${String(err)}`));
    return inst;
  }

  /** Every node hits the condition at the same instant. */
  hit(at: number): void {
    this.condition = { type: this.ctx.o.condition, status: 'True', reason: `${this.ctx.o.condition}Found`, message: 'simulated', lastTransitionTime: new Date(at).toISOString() };
    this.instance?.conditionChanged(this.condition);
  }

  /** Whether the agent runs a ladder now (the harness picks the moment of a crash with it). */
  active(): boolean {
    return this.state === 'up' && this.instance?.alive === true && this.instance.ladder?.status().active != null;
  }

  crash(): void {
    const inst = this.instance;
    if (!inst || this.state !== 'up') return;
    const step = inst.ladder?.status().active?.step ?? 'none';
    this.instance = undefined;
    this.crashAfterMs = undefined;
    this.disk = inst.kill();
    const { o, random } = this.ctx;
    // Half come back within the TTL (they take their slot back), half after it (it was taken over).
    const backAfterMs = random() < 0.5 ? o.ttlMs * (0.1 + 0.3 * random()) : o.ttlMs * (1.5 + random());
    const record: CrashRecord = { node: this.node, at: Date.now(), step, backAfterMs, backAt: undefined };
    this.ctx.crashes.push(record);
    this.later(backAfterMs, () => {
      record.backAt = Date.now();
      this.startAgent();
    });
  }

  /** logind accepted the reboot: systemd stops the agent, the machine goes down, boots again later. */
  rebootAccepted(by: Instance): void {
    if (this.state !== 'up' || this.instance !== by) return;
    this.state = 'going-down';
    const { o, random } = this.ctx;
    const record: RebootRecord = { node: this.node, acceptedAt: Date.now(), downAt: undefined, upAt: undefined };
    this.ctx.reboots.push(record);
    this.later(between(random, o.shutdownMs), async () => {
      const inst = this.instance;
      this.instance = undefined;
      if (inst) this.disk = await inst.stop();
      this.state = 'down';
      record.downAt = Date.now();
      this.later(between(random, o.bootMs), () => {
        this.boot++;
        this.bootId = randomUUID();
        this.state = 'up';
        record.upAt = Date.now();
        // A new boot: the fault is gone, and the agent's checks say so.
        this.condition = { type: o.condition, status: 'False', reason: `No${o.condition}`, message: '', lastTransitionTime: new Date().toISOString() };
        this.later(between(random, o.kubeletReadyMs), () => setCondition(this.ctx.fleet.cluster, this.node, 'Ready', 'True'));
        this.startAgent();
      });
    });
  }

  /**
   * Idle: up, its agent running with no ladder active and no Event waiting to be sent (a run's last
   * Event follows its release), nothing of the harness pending for it.
   */
  settled(): boolean {
    return this.state === 'up' && this.instance?.idle() === true && this.timers.size === 0;
  }

  /** The end of the run: what is still scheduled is dropped, the agent stopped. */
  async stop(): Promise<void> {
    this.ended = true;
    for (const [timer, finish] of this.timers) {
      clearTimeout(timer);
      finish();
    }
    const inst = this.instance;
    this.instance = undefined;
    if (inst) this.disk = await inst.stop();
  }

  logLines(): string[] {
    return this.instances.flatMap((i) => i.logLines());
  }

  /** Harness work for later; pending until done, so the run does not end before it. */
  private later(ms: number, fn: () => unknown): void {
    if (this.ended) return;
    let done!: () => void;
    const p = new Promise<void>((r) => (done = r));
    this.ctx.pending.add(p);
    const finish = () => {
      this.timers.delete(timer);
      this.ctx.pending.delete(p);
      done();
    };
    const timer = setTimeout(() => {
      if (this.ended) {
        finish();
        return;
      }
      Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.ctx.failures.push(`${this.node}: ${String(err)}`))
        .finally(finish);
    }, ms);
    this.timers.set(timer, finish);
  }
}

/**
 * Plays the kubelet for evicted pods: nothing runs them here, so a pod the API server marked for
 * deletion (the eviction was accepted) is deleted for good, as the kubelet does once its containers stop.
 */
function endEvictedPods(cluster: Cluster): (e: WatchEvent<PodObject>) => void {
  const ending = new Set<string>();
  return (e) => {
    const p = e.object.metadata;
    if (p.deletionTimestamp === undefined || ending.has(p.uid)) return;
    ending.add(p.uid);
    void cluster.admin('DELETE', `/api/v1/namespaces/${p.namespace}/pods/${p.name}?gracePeriodSeconds=0`);
  };
}

interface PodObject {
  metadata: { name: string; namespace: string; uid: string; resourceVersion?: string; deletionTimestamp?: string };
}

/** Runs the simulation on a fleet whose cluster has kubelet credentials for `names`. */
export async function simulateLadder(fleet: Fleet, names: readonly string[], o: LadderSimOptions): Promise<LadderSimResult> {
  const cluster = fleet.cluster;
  const stateRoot = mkdtempSync(join(tmpdir(), 'nha-ladder-sim-'));
  const ctx: SimContext = {
    o,
    fleet,
    target: new URL(cluster.server),
    random: seededRandom(o.seed),
    settings: simLadderSettings(o),
    stateRoot,
    requests: [],
    crashes: [],
    reboots: [],
    proxies: [],
    pending: new Set(),
    failures: [],
  };
  await ensureDefaultServiceAccount(cluster);
  // One bare pod per node for the drain to evict.
  for (const n of names) await createPod(cluster, n, `${n}-app`);
  const pods = await AdminWatch.start<PodObject>(cluster, '/api/v1/pods', endEvictedPods(cluster));
  const nodeWatch = await AdminWatch.start<SimNode>(cluster, '/api/v1/nodes');
  const leaseWatch = await AdminWatch.start<LeaseView>(cluster, `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`);

  const machines = names.map((n) => new Machine(ctx, n));
  // Exactly round(crashRate × nodes) of them, picked at random.
  const order = machines.map((m) => ({ m, key: ctx.random() })).sort((a, b) => a.key - b.key);
  for (const { m } of order.slice(0, Math.round(o.crashRate * machines.length))) m.crashAfterMs = between(ctx.random, o.crashAfterMs);
  let hitAt = 0;
  let done = false;
  let endAt = 0;
  try {
    // The agents start (one after another, as nodes boot at different times) and settle before the fault.
    for (const m of machines) await m.startAgent().started;
    await sleep(500);
    hitAt = Date.now();
    for (const m of machines) m.hit(hitAt);

    const deadline = hitAt + o.timeoutMs;
    let lastCheck = 0;
    let lastTick = Date.now();
    while (Date.now() < deadline) {
      await sleep(50);
      const tick = Date.now() - lastTick;
      lastTick += tick;
      for (const m of machines) {
        if (m.crashAfterMs === undefined || !m.active()) continue;
        m.activeMs += tick;
        if (m.activeMs >= m.crashAfterMs) m.crash();
      }
      if (Date.now() - lastCheck < 500) continue;
      lastCheck = Date.now();
      if (ctx.pending.size > 0 || !machines.every((m) => m.settled())) continue;
      if (await repairedByApi(cluster, names, o.condition)) {
        done = true;
        break;
      }
    }
    endAt = Date.now();
  } finally {
    await Promise.all(machines.map((m) => m.stop().catch((err: unknown) => ctx.failures.push(`${m.node}: stop: ${String(err)}`))));
    await Promise.all([...ctx.pending]);
    // The last watch events.
    await sleep(300);
    for (const w of [pods, nodeWatch, leaseWatch]) w.stop();
    await Promise.all(ctx.proxies.map((p) => p.close()));
    rmSync(stateRoot, { recursive: true, force: true });
  }
  if (ctx.failures.length > 0) throw new Error(`the harness failed: ${ctx.failures.join('; ')}`);
  const events = await cluster.admin<{ items: EventView[] }>('GET', '/api/v1/namespaces/default/events');
  if (events.status !== 200) throw new Error(`list events: ${events.status}`);
  return {
    options: o,
    nodes: [...names],
    hitAt,
    endAt,
    done,
    nodeHistory: nodeWatch.events,
    leaseHistory: leaseWatch.events,
    watchErrors: [nodeWatch.error, leaseWatch.error, pods.error].filter((e): e is string => e !== undefined),
    events: events.body.items,
    crashes: ctx.crashes,
    reboots: ctx.reboots,
    requests: ctx.requests,
    logs: new Map(machines.map((m) => [m.node, m.logLines()])),
  };
}

/** The end as the API server shows it: every Node uncordoned with the condition False, no slot held. */
async function repairedByApi(cluster: Cluster, names: readonly string[], condition: string): Promise<boolean> {
  const nodes = await cluster.admin<{ items: SimNode[] }>('GET', '/api/v1/nodes');
  const leases = await cluster.admin<{ items: LeaseView[] }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`);
  if (nodes.status !== 200 || leases.status !== 200) return false;
  const byName = new Map(nodes.body.items.map((n) => [n.metadata.name, n]));
  const repaired = names.every((n) => {
    const node = byName.get(n);
    return node !== undefined && !cordoned(node) && node.spec?.unschedulable !== true && conditionOf(node, condition) === 'False';
  });
  const held = leases.body.items.some((l) => /^node-health-repair-\d+$/.test(l.metadata.name) && (l.spec.holderIdentity ?? '') !== '');
  return repaired && !held;
}

// ── judging ──────────────────────────────────────────────────────────────────────────────────────────

/** Cordoned by the agent: spec.unschedulable with the agent's annotation. */
export function cordoned(n: SimNode): boolean {
  return n.spec?.unschedulable === true && n.metadata.annotations?.[CORDONED_BY_AGENT] !== undefined;
}

export function conditionOf(n: SimNode, type: string): string | undefined {
  return n.status?.conditions?.find((c) => c.type === type)?.status;
}

/** The Lease history in the form holdsOf() (simulation.ts) reads. */
export function leaseEvents(history: readonly WatchEvent<LeaseView>[]): LeaseEvent[] {
  return history.map((e) => ({ at: e.at, type: e.type, lease: e.object }));
}

export interface CordonSpan {
  node: string;
  fromRv: number;
  from: number;
  toRv: number | undefined;
  to: number | undefined;
}

/** Each node's spans between the agent's cordon and its uncordon, from the Node history. */
export function cordonSpans(history: readonly WatchEvent<SimNode>[]): CordonSpan[] {
  const spans: CordonSpan[] = [];
  const open = new Map<string, CordonSpan>();
  for (const e of history) {
    const name = e.object.metadata.name;
    const now = cordoned(e.object) && e.type !== 'DELETED';
    const span = open.get(name);
    if (now && !span) {
      const s: CordonSpan = { node: name, fromRv: e.rv, from: e.at, toRv: undefined, to: undefined };
      spans.push(s);
      open.set(name, s);
    } else if (!now && span) {
      span.toRv = e.rv;
      span.to = e.at;
      open.delete(name);
    }
  }
  return spans;
}

export interface Orphan {
  node: string;
  lease: string;
  /** The node that took the slot over. */
  by: string;
  rv: number;
  at: number;
}

export interface RevisionVerdict {
  /** Broken rules, each with the revision where it happened. */
  violations: string[];
  /** Most nodes cordoned by the agents at one revision, orphans included: the bound is on these. */
  peakCordoned: number;
  /** Most cordoned nodes still holding a slot (or never let go of one) at one revision. */
  peakCordonedHolding: number;
  /** Most orphans at one revision. */
  peakOrphans: number;
  /** Most distinct slot holders at one revision. */
  peakHolders: number;
  /**
   * Nodes whose slot was taken over by TTL while they were cordoned (their agent was down past the
   * TTL): cordoned without a slot until their agent came back and uncordoned.
   */
  orphans: Orphan[];
  /** Writes judged, and whether the revisions of each history rose strictly. */
  writes: number;
  ordered: boolean;
}

/**
 * Replays the Node and Lease histories in etcd's revision order, write by write. A node may become
 * cordoned only while a slot Lease names it; a slot may be given back only after its holder's
 * uncordon; a holder whose slot is taken over while it is still cordoned is an orphan from then on
 * (allowed only when its agent was down: `down(node, at)`). The bound: at no revision more than k
 * nodes cordoned by the agents, orphans included (an orphan's slot may go to another node, which then
 * must not cordon while the two together would exceed k).
 */
export function judgeByRevision(
  nodes: readonly WatchEvent<SimNode>[],
  leases: readonly WatchEvent<LeaseView>[],
  slots: number,
  down: (node: string, at: number) => boolean,
): RevisionVerdict {
  const rising = (h: ReadonlyArray<{ rv: number; type: string }>) =>
    h.filter((e) => e.type !== 'EXISTING').every((e, i, a) => i === 0 || (a[i - 1] as { rv: number }).rv < e.rv);
  type Step = { rv: number; at: number } & ({ kind: 'node'; node: SimNode } | { kind: 'lease'; lease: LeaseView });
  const steps: Step[] = [
    ...nodes.map((e): Step => ({ rv: e.rv, at: e.at, kind: 'node', node: e.object })),
    ...leases.filter((e) => /^node-health-repair-\d+$/.test(e.object.metadata.name)).map((e): Step => ({ rv: e.rv, at: e.at, kind: 'lease', lease: e.object })),
  ].sort((a, b) => a.rv - b.rv);
  const verdict: RevisionVerdict = {
    violations: [],
    peakCordoned: 0,
    peakCordonedHolding: 0,
    peakOrphans: 0,
    peakHolders: 0,
    orphans: [],
    writes: steps.length,
    ordered: rising(nodes) && rising(leases),
  };
  const holder = new Map<string, string>();
  const isCordoned = new Set<string>();
  const orphan = new Set<string>();
  const holding = (node: string) => [...holder.values()].includes(node);
  let lastRv = -1;
  let excess = 0;
  for (const s of steps) {
    if (s.rv === lastRv) continue;
    lastRv = s.rv;
    if (s.kind === 'lease') {
      const name = s.lease.metadata.name;
      const prev = holder.get(name) ?? '';
      const next = s.lease.spec.holderIdentity ?? '';
      holder.set(name, next);
      if (prev !== '' && prev !== next && isCordoned.has(prev) && !holding(prev) && !orphan.has(prev)) {
        if (next === '') {
          verdict.violations.push(`rv ${s.rv}: ${prev} gave back ${name} while still cordoned`);
        } else {
          orphan.add(prev);
          verdict.orphans.push({ node: prev, lease: name, by: next, rv: s.rv, at: s.at });
          if (!down(prev, s.at)) verdict.violations.push(`rv ${s.rv}: ${next} took ${name} from ${prev}, which was cordoned and whose agent was running`);
        }
      }
    } else {
      const name = s.node.metadata.name;
      const now = cordoned(s.node);
      if (now && !isCordoned.has(name)) {
        if (!holding(name)) verdict.violations.push(`rv ${s.rv}: ${name} was cordoned while no slot Lease named it`);
        isCordoned.add(name);
      } else if (!now && isCordoned.has(name)) {
        isCordoned.delete(name);
        orphan.delete(name);
      }
    }
    const holders = new Set([...holder.values()].filter((h) => h !== ''));
    const cordonedHolding = [...isCordoned].filter((n) => !orphan.has(n));
    const stray = cordonedHolding.filter((n) => !holders.has(n));
    if (stray.length > 0) verdict.violations.push(`rv ${s.rv}: cordoned without a slot: ${stray.join(', ')}`);
    // Told once per excess and each time it grows, not at every write while it lasts.
    if (isCordoned.size > Math.max(slots, excess)) {
      const shown = [...isCordoned].map((n) => (orphan.has(n) ? `${n} (orphan)` : n));
      verdict.violations.push(`rv ${s.rv}: ${isCordoned.size} nodes cordoned by the agents with ${slots} slots: ${shown.join(', ')}`);
    }
    excess = isCordoned.size > slots ? Math.max(excess, isCordoned.size) : 0;
    verdict.peakCordoned = Math.max(verdict.peakCordoned, isCordoned.size);
    verdict.peakCordonedHolding = Math.max(verdict.peakCordonedHolding, cordonedHolding.length);
    verdict.peakOrphans = Math.max(verdict.peakOrphans, orphan.size);
    verdict.peakHolders = Math.max(verdict.peakHolders, holders.size);
    if (holders.size > slots) verdict.violations.push(`rv ${s.rv}: ${holders.size} holders of ${slots} slots`);
  }
  return verdict;
}

export interface CrashOutcome {
  crash: CrashRecord;
  /** The slot Lease naming the node when it crashed; undefined when it held none (between release and the end of its run). */
  lease: string | undefined;
  /** resumed: the node's next start renewed it; ttl: another node took it after renewTime + TTL + skew; early: before that. */
  how: 'resumed' | 'ttl' | 'early' | 'released-before' | 'unresolved';
  detail: string;
}

/** What became of the slot each crashed agent held, from the Lease history. */
export function crashOutcomes(history: readonly WatchEvent<LeaseView>[], crashes: readonly CrashRecord[], skewMs: number): CrashOutcome[] {
  const ms = (s: string | undefined) => Date.parse(s ?? '');
  const slotsOnly = history.filter((e) => /^node-health-repair-\d+$/.test(e.object.metadata.name));
  return crashes.map((crash) => {
    // The last version of each slot delivered before the crash (the dead agent's in-flight writes may follow).
    const before = new Map<string, LeaseView>();
    for (const e of slotsOnly) if (e.at <= crash.at) before.set(e.object.metadata.name, e.object);
    const held = [...before.values()].find((l) => l.spec.holderIdentity === crash.node);
    if (!held) return { crash, lease: undefined, how: 'released-before', detail: 'no slot Lease named it at the crash' };
    const name = held.metadata.name;
    let last = held;
    for (const e of slotsOnly) {
      if (e.object.metadata.name !== name || e.at <= crash.at) continue;
      const l = e.object;
      const h = l.spec.holderIdentity ?? '';
      if (h === crash.node) {
        if (crash.backAt !== undefined && ms(l.spec.renewTime) >= crash.backAt) {
          return { crash, lease: name, how: 'resumed', detail: `renewed by its next start at ${l.spec.renewTime}` };
        }
        last = l;
        continue;
      }
      if (h === '') return { crash, lease: name, how: 'unresolved', detail: `given back (${l.metadata.annotations?.['node-health-agent/released-at']}) without its node taking it back first` };
      const end = ms(last.spec.renewTime) + (last.spec.leaseDurationSeconds ?? 0) * 1000 + skewMs;
      const at = ms(l.spec.acquireTime);
      return at >= end
        ? { crash, lease: name, how: 'ttl', detail: `${h} took it ${at - end} ms after renewTime + TTL + skew` }
        : { crash, lease: name, how: 'early', detail: `${h} took it ${end - at} ms before renewTime + TTL + skew` };
    }
    return { crash, lease: name, how: 'unresolved', detail: 'still named it at the end' };
  });
}

/** Events on each node, summed by reason (a repeated Event counts its repeats). */
export function eventsByNode(events: readonly EventView[]): Map<string, Map<string, number>> {
  const by = new Map<string, Map<string, number>>();
  for (const e of events) {
    if (e.involvedObject.kind !== 'Node') continue;
    const m = by.get(e.involvedObject.name) ?? new Map<string, number>();
    m.set(e.reason, (m.get(e.reason) ?? 0) + (e.count || 1));
    by.set(e.involvedObject.name, m);
  }
  return by;
}

export interface Rates {
  seconds: number;
  requests: number;
  perSecond: number;
  /** "VERB resource" → requests, and of those the answers other than 2xx by code. */
  byCall: Array<[string, { requests: number; refused: Map<string, number> }]>;
}

/** API requests of one identity between `from` and `to`. */
export function rates(requests: readonly AgentRequest[], identity: AgentRequest['identity'], from: number, to: number): Rates {
  const mine = requests.filter((r) => r.identity === identity && r.at >= from && r.at <= to);
  const byCall = new Map<string, { requests: number; refused: Map<string, number> }>();
  for (const r of mine) {
    const call = `${r.verb} ${r.resource}`;
    const c = byCall.get(call) ?? { requests: 0, refused: new Map<string, number>() };
    c.requests++;
    if (!/^2\d\d$/.test(r.code)) c.refused.set(r.code, (c.refused.get(r.code) ?? 0) + 1);
    byCall.set(call, c);
  }
  const seconds = (to - from) / 1000;
  return { seconds, requests: mine.length, perSecond: mine.length / seconds, byCall: [...byCall].sort((a, b) => b[1].requests - a[1].requests) };
}
