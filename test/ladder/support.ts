// Pieces the ladder tests share: an in-memory gate (the Lease gate has tests of its own), a rebooter that
// records instead of rebooting this machine, and helpers that play the parts of a cluster nothing runs
// here — the kubelet that ends evicted pods, the pods themselves, a Node's Ready condition.
import { KubeClient, type RequestRecord } from '../../src/outputs/kubernetes/client';
import { loadKubeconfig } from '../../src/outputs/kubernetes/kubeconfig';
import type { RepairGate, Refusal, Slot, EventReport, NodeCondition } from '../../src/types';
import type { Rebooter } from '../../src/repair/ladder/login1';
import { NodeApi } from '../../src/repair/ladder/node-api';
import type { Cluster } from '../helpers/cluster';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** k slots in memory; records every call so a test can check what the ladder asked and gave back. */
export class MemoryGate implements RepairGate {
  readonly calls: string[] = [];
  readonly releases: Array<{ lease: string; repaired: boolean; rebootFailed?: boolean }> = [];
  private held: Slot | undefined;
  private loseHeld: (() => void) | undefined;
  /** Answers to give before granting, e.g. a refusal for the first ask. */
  readonly refusals: Refusal[] = [];

  async acquire(condition: string): Promise<Slot | Refusal> {
    this.calls.push(`acquire ${condition}`);
    const refusal = this.refusals.shift();
    if (refusal) return refusal;
    if (this.held) return { granted: false, reason: 'SlotsBusy', message: 'the only slot is held' };
    return this.grant();
  }

  async resume(): Promise<Slot | undefined> {
    this.calls.push('resume');
    return this.held;
  }

  /** Ends the held slot as a failed renewal would. */
  lose(): void {
    this.loseHeld?.();
    this.held = undefined;
  }

  get holding(): boolean {
    return this.held !== undefined;
  }

  private grant(): Slot {
    let lose!: () => void;
    const lost = new Promise<void>((r) => {
      lose = r;
    });
    const slot: Slot = {
      granted: true,
      lease: 'node-health/slot-0',
      lost,
      release: async (outcome) => {
        this.calls.push('release');
        this.releases.push({ lease: slot.lease, ...outcome });
        if (this.held === slot) this.held = undefined;
      },
    };
    this.held = slot;
    this.loseHeld = lose;
    return slot;
  }
}

/** Records reboot requests; this machine is not rebooted (the box test does a real one). */
export class RecordingRebooter implements Rebooter {
  reboots = 0;
  private rebooted: () => void = () => undefined;
  readonly asked = new Promise<void>((r) => {
    this.rebooted = r;
  });

  async canReboot(): Promise<string> {
    return 'yes';
  }

  async reboot(): Promise<void> {
    this.reboots++;
    this.rebooted();
  }
}

export class RecordingEvents {
  readonly list: EventReport[] = [];
  event(e: EventReport): void {
    this.list.push(e);
  }
  reasons(): string[] {
    return this.list.map((e) => e.reason);
  }
  messages(reason: string): string[] {
    return this.list.filter((e) => e.reason === reason).map((e) => e.message);
  }
}

/** The agent's condition table as the ladder sees it, set by the test. */
export class Conditions {
  private readonly map = new Map<string, NodeCondition>();
  set(type: string, status: NodeCondition['status'], sinceMs = Date.now()): NodeCondition {
    const c: NodeCondition = { type, status, reason: status === 'True' ? `${type}Found` : `No${type}`, message: '', lastTransitionTime: new Date(sinceMs).toISOString() };
    this.map.set(type, c);
    return c;
  }
  get = (type: string): NodeCondition | undefined => this.map.get(type);
}

export function nodeApi(cluster: Cluster, credentialsOf: string, node = credentialsOf, onRequest?: (r: RequestRecord) => void): NodeApi {
  const client = new KubeClient(loadKubeconfig(cluster.kubeletConf(credentialsOf)), { userAgent: 'ladder-test', timeoutMs: 10_000, ...(onRequest ? { onRequest } : {}) });
  return new NodeApi(client, node, 'node-health-agent');
}

export interface PodSpec {
  labels?: Record<string, string>;
  /** A DaemonSet as the pod's controller. */
  daemonSet?: string;
  /** Created by the node as a mirror pod of a static pod, as the kubelet does. */
  mirror?: boolean;
  /** Status patched to Running and Ready (only such pods are guarded by a PodDisruptionBudget). */
  running?: boolean;
  phase?: 'Succeeded' | 'Failed';
}

export interface PodView {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
}

/** Creates a pod bound to `node` (nothing runs it: there is no kubelet). */
export async function createPod(cluster: Cluster, node: string, name: string, spec: PodSpec = {}): Promise<PodView> {
  const metadata: Record<string, unknown> = { name, namespace: 'default', labels: spec.labels ?? { app: name } };
  if (spec.daemonSet) {
    metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: spec.daemonSet, uid: '5b1f0f54-8f8e-4d7e-9b1a-0d2c4f6a8e10', controller: true }];
  }
  const body = { apiVersion: 'v1', kind: 'Pod', metadata, spec: { nodeName: node, automountServiceAccountToken: false, containers: [{ name: 'c', image: 'registry.invalid/none' }] } };
  let r;
  if (spec.mirror) {
    const owner = await cluster.node(node);
    metadata.annotations = { 'kubernetes.io/config.mirror': 'a1b2c3', 'kubernetes.io/config.source': 'file' };
    metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'Node', name: node, uid: owner.metadata.uid, controller: true }];
    r = await cluster.asNode<PodView>(node, 'POST', '/api/v1/namespaces/default/pods', body);
  } else {
    r = await cluster.admin<PodView>('POST', '/api/v1/namespaces/default/pods', body);
  }
  if (r.status !== 201) throw new Error(`create pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  const phase = spec.running ? 'Running' : spec.phase;
  if (phase) {
    const conditions = spec.running ? [{ type: 'Ready', status: 'True' }] : [];
    const s = await cluster.admin('PATCH', `/api/v1/namespaces/default/pods/${name}/status`, { status: { phase, conditions } }, 'application/merge-patch+json');
    if (s.status !== 200) throw new Error(`pod ${name} status: ${s.status} ${JSON.stringify(s.body)}`);
  }
  return r.body;
}

/** The pods bound to `node`, as the admin sees them. */
export async function podsOn(cluster: Cluster, node: string): Promise<PodView[]> {
  const r = await cluster.admin<{ items: PodView[] }>('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`);
  if (r.status !== 200) throw new Error(`list pods on ${node}: ${r.status}`);
  return r.body.items;
}

/**
 * Plays the kubelet for evicted pods: nothing runs them here, so once a pod on `node` has a
 * deletionTimestamp (the eviction was accepted) it is deleted for good, as the kubelet does after
 * stopping its containers. Returns the names it ended, in order.
 */
export function playKubelet(t: Teardown, cluster: Cluster, node: string, everyMs = 200): string[] {
  const ended: string[] = [];
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      for (const p of await podsOn(cluster, node).catch(() => [])) {
        if (p.metadata.deletionTimestamp === undefined) continue;
        const r = await cluster.admin('DELETE', `/api/v1/namespaces/default/pods/${p.metadata.name}?gracePeriodSeconds=0`);
        if (r.status === 200) ended.push(p.metadata.name);
      }
      await sleep(everyMs);
    }
  };
  const running = loop();
  t.teardown(async () => {
    stopped = true;
    await running;
  });
  return ended;
}

/** Sets the Node's Ready condition as the kubelet reports it, heartbeat now. */
export async function setReady(cluster: Cluster, node: string, status: 'True' | 'False'): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const r = await cluster.admin(
    'PATCH',
    `/api/v1/nodes/${node}/status`,
    { status: { conditions: [{ type: 'Ready', status, reason: status === 'True' ? 'KubeletReady' : 'KubeletNotReady', message: 'set by the test', lastHeartbeatTime: now, lastTransitionTime: now }] } },
    'application/strategic-merge-patch+json',
  );
  if (r.status !== 200) throw new Error(`Ready on ${node}: ${r.status} ${JSON.stringify(r.body)}`);
}

/** A PodDisruptionBudget whose status the disruption controller would keep; set here by hand. */
export async function createBudget(cluster: Cluster, name: string, app: string, disruptionsAllowed: number): Promise<void> {
  const r = await cluster.admin('POST', '/apis/policy/v1/namespaces/default/poddisruptionbudgets', {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name },
    spec: { minAvailable: 1, selector: { matchLabels: { app } } },
  });
  if (r.status !== 201) throw new Error(`create budget ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  await setBudget(cluster, name, disruptionsAllowed);
}

export async function setBudget(cluster: Cluster, name: string, disruptionsAllowed: number): Promise<void> {
  const r = await cluster.admin(
    'PATCH',
    `/apis/policy/v1/namespaces/default/poddisruptionbudgets/${name}/status`,
    { status: { observedGeneration: 1, disruptionsAllowed, currentHealthy: 1, desiredHealthy: 1, expectedPods: 1 } },
    'application/merge-patch+json',
  );
  if (r.status !== 200) throw new Error(`budget ${name} status: ${r.status} ${JSON.stringify(r.body)}`);
}

export async function ensureDefaultServiceAccount(cluster: Cluster): Promise<void> {
  // No controller manager runs: the ServiceAccount admission needs the namespace's default account.
  const r = await cluster.admin('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'default' } });
  if (r.status !== 201 && r.status !== 409) throw new Error(`create ServiceAccount default: ${r.status}`);
}

export interface NodeSpecView {
  metadata: { annotations?: Record<string, string>; resourceVersion: string };
  spec?: { unschedulable?: boolean };
}

export async function nodeSpec(cluster: Cluster, node: string): Promise<NodeSpecView> {
  return (await cluster.node(node)) as unknown as NodeSpecView;
}

export interface LeaseView {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { holderIdentity?: string; renewTime?: string };
}

/** The gate's slot Leases (not its gap or breaker markers), as the admin reads them. */
export async function slotLeases(cluster: Cluster): Promise<LeaseView[]> {
  const r = await cluster.admin<{ items: LeaseView[] }>('GET', '/apis/coordination.k8s.io/v1/namespaces/node-health/leases');
  if (r.status !== 200) throw new Error(`list Leases in node-health: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.items.filter((l) => l.metadata.labels?.['node-health-agent/kind'] === 'slot');
}

/** The names of the slot Leases `node` holds. */
export async function heldSlots(cluster: Cluster, node: string): Promise<string[]> {
  return (await slotLeases(cluster)).filter((l) => l.spec.holderIdentity === node).map((l) => l.metadata.name);
}
