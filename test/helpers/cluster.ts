// A real kube-apiserver (Node,RBAC + NodeRestriction) with etcd for tests, run by scripts/cluster/cluster.sh
// (docs/kubernetes.md). The first use builds the binaries from their Go modules (minutes; cached after).
// Assertions go through a plain https client with the admin certificate, independent of the agent's client.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { TeardownHost } from './box';

export const clusterScript = join(__dirname, '../../scripts/cluster/cluster.sh');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCluster(args: string[], timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [clusterScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cluster.sh ${args.join(' ')}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === null) {
        reject(new Error(`cluster.sh ${args.join(' ')}: timed out after ${timeoutMs} ms; stderr: ${stderr.trim()}`));
        return;
      }
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
  });
}

async function check(args: string[], timeoutMs?: number): Promise<string> {
  const r = await runCluster(args, timeoutMs);
  if (r.code !== 0) throw new Error(`cluster.sh ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

let counter = 0;

export class Cluster {
  private stopped = false;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly server: string,
  ) {}

  /** Starts a cluster with Node objects and kubelet credentials for `nodes`; stopped when `t` ends. */
  static async up(t: TeardownHost, nodes: string[]): Promise<Cluster> {
    const name = `t${process.pid}-${++counter}`;
    let cluster: Cluster | undefined;
    t.teardown(() => (cluster ? cluster.down() : runCluster(['down', name])));
    // A cold build of kube-apiserver and etcd takes minutes; later runs find them cached.
    const server = await check(['up', name, ...nodes], 20 * 60_000);
    const env = Object.fromEntries(
      (await check(['env', name])).split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    cluster = new Cluster(name, env.NODE_HEALTH_CLUSTER_DIR as string, server);
    return cluster;
  }

  get caFile(): string {
    return join(this.dir, 'pki/ca.crt');
  }

  get adminKubeconfig(): string {
    return join(this.dir, 'admin.kubeconfig');
  }

  /** The node's credentials as laid out on a kubeadm node under /. */
  nodeRoot(node: string): string {
    return join(this.dir, 'nodes', node);
  }

  kubeletConf(node: string): string {
    return join(this.nodeRoot(node), 'etc/kubernetes/kubelet.conf');
  }

  /** A bearer token the API server maps to system:node:<node> (nodes named at up only). */
  token(node: string): string {
    return readFileSync(join(this.nodeRoot(node), 'token'), 'utf8').trim();
  }

  async addNode(node: string, validSeconds?: number): Promise<void> {
    await check(['node', this.name, node, ...(validSeconds ? ['--valid', String(validSeconds)] : [])]);
  }

  /** Issues a new client certificate and swaps kubelet-client-current.pem as the kubelet does. */
  async rotate(node: string, validSeconds?: number): Promise<string> {
    return check(['rotate', this.name, node, ...(validSeconds ? ['--valid', String(validSeconds)] : [])]);
  }

  async stopApiserver(): Promise<void> {
    await check(['apiserver', this.name, 'stop']);
  }

  async startApiserver(): Promise<void> {
    await check(['apiserver', this.name, 'start'], 120_000);
  }

  /** Runs kube-controller-manager (every controller) until `stopControllerManager` or `down`. */
  async startControllerManager(): Promise<void> {
    await check(['controller-manager', this.name, 'start'], 120_000);
  }

  async stopControllerManager(): Promise<void> {
    await check(['controller-manager', this.name, 'stop']);
  }

  /** Runs kube-scheduler, which binds pods that name no node (a DaemonSet's), until `down`. */
  async startScheduler(): Promise<void> {
    await check(['scheduler', this.name, 'start'], 120_000);
  }

  async down(): Promise<void> {
    if (this.stopped) return;
    await check(['down', this.name]);
    this.stopped = true;
  }

  /** A request with the admin certificate (system:masters). */
  admin<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> {
    return this.raw<T>(method, path, {
      cert: readFileSync(join(this.dir, 'pki/admin.crt')),
      key: readFileSync(join(this.dir, 'pki/admin.key')),
    }, body, contentType);
  }

  /** A request as the node, with its current kubelet client certificate (as the kubelet itself would). */
  asNode<T = unknown>(node: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> {
    const pem = readFileSync(join(this.nodeRoot(node), 'var/lib/kubelet/pki/kubelet-client-current.pem'));
    return this.raw<T>(method, path, { cert: pem, key: pem }, body, contentType);
  }

  async node(name: string): Promise<NodeView> {
    const r = await this.admin<NodeView>('GET', `/api/v1/nodes/${name}`);
    if (r.status !== 200) throw new Error(`GET node ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async condition(node: string, type: string): Promise<ConditionView | undefined> {
    return (await this.node(node)).status?.conditions?.find((c) => c.type === type);
  }

  async events(node: string): Promise<EventView[]> {
    const r = await this.admin<{ items: EventView[] }>(
      'GET',
      `/api/v1/namespaces/default/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${node}`)}`,
    );
    if (r.status !== 200) throw new Error(`list events: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.items;
  }

  /** A request with a bearer token (e.g. a ServiceAccount's), no client certificate. */
  asBearer<T = unknown>(token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> {
    return this.raw<T>(method, path, {}, body, contentType, token);
  }

  /** Creates every object of a multi-document YAML manifest as the admin (kubectl apply for new objects). */
  async applyManifest(file: string): Promise<void> {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const obj = doc.toJS() as { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } | null;
      if (!obj) continue;
      const plural = { Namespace: 'namespaces', ServiceAccount: 'serviceaccounts', Role: 'roles', RoleBinding: 'rolebindings', ClusterRole: 'clusterroles', ClusterRoleBinding: 'clusterrolebindings' }[obj.kind];
      if (!plural) throw new Error(`${file}: applyManifest does not know kind ${obj.kind}`);
      const group = obj.apiVersion === 'v1' ? '/api/v1' : `/apis/${obj.apiVersion}`;
      const ns = obj.metadata.namespace ? `/namespaces/${obj.metadata.namespace}` : '';
      const r = await this.admin('POST', `${group}${ns}/${plural}`, obj);
      if (r.status !== 201 && r.status !== 409) throw new Error(`${file}: create ${obj.kind} ${obj.metadata.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }

  /** A token for a ServiceAccount (TokenRequest, as `kubectl create token` asks for). */
  async serviceAccountToken(namespace: string, name: string, seconds = 3600): Promise<string> {
    const r = await this.admin<{ status?: { token?: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: seconds },
    });
    if (r.status !== 201 || !r.body.status?.token) throw new Error(`token for ${namespace}/${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.status.token;
  }

  private raw<T>(
    method: string,
    path: string,
    tls: { cert?: Buffer; key?: Buffer },
    body: unknown,
    contentType: string,
    bearer?: string,
  ): Promise<ApiResponse<T>> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(this.server + path),
        {
          method,
          ca: readFileSync(this.caFile),
          ...tls,
          headers: {
            Accept: 'application/json',
            // Content-Length always: Node sends a DELETE's body with neither a length nor chunking, and the
            // server then reads it as the start of the next request on the kept-alive connection.
            ...(data ? { 'Content-Type': contentType, 'Content-Length': data.length } : {}),
            ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}),
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            // JSON from the API; text from /metrics (Prometheus' format) and the like. A throw here would be an
            // uncaught exception that ends the test: JSON that does not parse is an error of the request.
            const json = /json/.test(res.headers['content-type'] ?? '');
            try {
              resolve({ status: res.statusCode ?? 0, body: (text ? (json ? JSON.parse(text) : text) : undefined) as T });
            } catch {
              reject(new Error(`${method} ${path}: HTTP ${res.statusCode ?? 0} with a body that is not JSON: ${JSON.stringify(text.slice(0, 200))}`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(data);
    });
  }
}

export interface ConditionView {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

export interface NodeView {
  metadata: { name: string; uid: string; managedFields?: Array<{ manager: string; subresource?: string; fieldsV1?: unknown }> };
  status?: { conditions?: ConditionView[] };
}

export interface EventView {
  metadata: { name: string; namespace: string };
  involvedObject: { kind: string; name: string; uid: string; apiVersion?: string; namespace?: string };
  reason: string;
  message: string;
  type: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
}

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `; last error: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
