// A test cluster prepared for coordination: the shipped manifest applied (namespace, ServiceAccount,
// Role, ClusterRole, bindings), a token of the ServiceAccount in a file, Node objects, and the agent's
// config pointing [coordination] at them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig } from '../../src/sections';
import type { Config } from '../../src/config/schema';
import type { TeardownHost } from '../helpers/box';
import { Cluster } from '../helpers/cluster';

export const MANIFEST = join(__dirname, '../../packaging/kubernetes/coordination.yaml');
export const NAMESPACE = 'node-health';
export const ACCOUNT = 'node-health-coordinator';

export type CoordinationConfig = Config['coordination'];

export interface Fleet {
  cluster: Cluster;
  dir: string;
  token: string;
  tokenFile: string;
  /** The agent's config with [coordination] enabled on the ServiceAccount token, plus overrides. */
  config(overrides?: Partial<CoordinationConfig>, kubernetes?: Partial<Config['kubernetes']>): Config;
}

/** Starts a cluster; `kubeletNodes` get kubelet credentials (cluster.sh), all of them a Ready Node. */
export async function fleetUp(t: TeardownHost, kubeletNodes: string[] = []): Promise<Fleet> {
  const cluster = await Cluster.up(t, kubeletNodes);
  await cluster.applyManifest(MANIFEST);
  const token = await cluster.serviceAccountToken(NAMESPACE, ACCOUNT);
  const dir = mkdtempSync(join(tmpdir(), 'nha-fleet-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'coordination.token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  await setReady(cluster, kubeletNodes);
  const base = loadAgentConfig('/nonexistent/node-health').config;
  return {
    cluster,
    dir,
    token,
    tokenFile,
    config: (overrides = {}, kubernetes = {}) => ({
      ...base,
      kubernetes: { ...base.kubernetes, request_timeout: 10_000, ...kubernetes },
      coordination: {
        ...base.coordination,
        enabled: true,
        token_file: tokenFile,
        server: cluster.server,
        ca_file: cluster.caFile,
        ...overrides,
      },
    }),
  };
}

/** Creates Nodes (as the admin; they need no kubelet credentials here) and marks them Ready. */
export async function addNodes(cluster: Cluster, names: readonly string[]): Promise<void> {
  const queue = [...names];
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const r = await cluster.admin('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } });
      if (r.status !== 201 && r.status !== 409) throw new Error(`create Node ${name}: ${r.status} ${JSON.stringify(r.body)}`);
      await setCondition(cluster, name, 'Ready', 'True');
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

async function setReady(cluster: Cluster, names: readonly string[]): Promise<void> {
  for (const n of names) await setCondition(cluster, n, 'Ready', 'True');
}

export async function setCondition(cluster: Cluster, node: string, type: string, status: string): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const r = await cluster.admin(
    'PATCH',
    `/api/v1/nodes/${node}/status`,
    { status: { conditions: [{ type, status, reason: `Test${status}`, message: 'set by the test', lastHeartbeatTime: now, lastTransitionTime: now }] } },
    'application/strategic-merge-patch+json',
  );
  if (r.status !== 200) throw new Error(`set ${type}=${status} on Node ${node}: ${r.status} ${JSON.stringify(r.body)}`);
}

export interface LeaseView {
  metadata: { name: string; resourceVersion: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

export async function lease(cluster: Cluster, name: string): Promise<LeaseView | undefined> {
  const r = await cluster.admin<LeaseView>('GET', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${name}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET Lease ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
