// coordination.k8s.io/v1 Leases in the coordination namespace: the object shape, the names and labels of
// ours, the calls (list, get, create, update with a resourceVersion precondition, delete) and the one
// rule for when a Lease has run out.
//
// Clocks: a Lease carries its holder's wall-clock renewTime, and every reader compares it with its own
// clock. So expiry is judged with a margin (max_clock_skew) on both sides: a holder gives up `skew`
// before renewTime + leaseDurationSeconds by its own monotonic clock, any other node waits until
// `skew` after it by its wall clock. Clocks up to 2 × skew apart can never see two holders at once.
import { KubeApiError, type KubeClient } from '../../outputs/kubernetes';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  /** RFC 3339 with microseconds (metav1.MicroTime). */
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: LeaseSpec;
}

export type LeaseKind = 'slot' | 'gap' | 'breaker' | 'lockout' | 'cordoned';

export const MANAGED_BY = 'node-health-agent';
const PREFIX = 'node-health-agent';
export const LABEL_KIND = `${PREFIX}/kind`;
export const SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY}`;
/** Annotations: what the Lease was last used for, readable with kubectl. */
export const ANN = {
  condition: `${PREFIX}/condition`,
  releasedAt: `${PREFIX}/released-at`,
  lastHolder: `${PREFIX}/last-holder`,
  outcome: `${PREFIX}/outcome`,
  unhealthy: `${PREFIX}/unhealthy`,
  /** On the cordoned-nodes marker: the nodes found cordoned by their agents without a slot, comma-separated. */
  cordonedNodes: `${PREFIX}/cordoned-nodes`,
} as const;

export const slotName = (i: number): string => `node-health-repair-${i}`;
export const GAP_LEASE = 'node-health-repair-gap';
export const BREAKER_LEASE = 'node-health-repair-breaker';
export const CORDONED_LEASE = 'node-health-repair-cordoned';

/** The lockout Lease of a node. Node names may be 253 long: a long one is shortened with a hash. */
export function lockoutName(node: string): string {
  const name = `node-health-lockout-${node}`;
  if (name.length <= 253) return name;
  let h = 0x811c9dc5;
  for (const c of node) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return `${name.slice(0, 244).replace(/[.-]+$/, '')}-${h.toString(16).padStart(8, '0')}`;
}

/** metav1.MicroTime: the API server parses exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/(\.\d{3})Z$/, '$1000Z');
}

export function parseTime(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/** Wall-clock ms when the Lease runs out as its holder wrote it (renewTime, else acquireTime, + duration). */
export function leaseEnd(spec: LeaseSpec): number | undefined {
  const base = parseTime(spec.renewTime) ?? parseTime(spec.acquireTime);
  if (base === undefined || !spec.leaseDurationSeconds) return undefined;
  return base + spec.leaseDurationSeconds * 1000;
}

/** The holder, when another node must still count the Lease as held at `now` (with the skew margin). */
export function heldBy(lease: Lease | undefined, now: number, skewMs: number): string | undefined {
  const holder = lease?.spec.holderIdentity;
  if (!lease || !holder) return undefined;
  const end = leaseEnd(lease.spec);
  return end !== undefined && now < end + skewMs ? holder : undefined;
}

export function newLease(namespace: string, name: string, kind: LeaseKind, spec: LeaseSpec, annotations: Record<string, string> = {}): Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/managed-by': MANAGED_BY, [LABEL_KIND]: kind },
      annotations,
    },
    spec,
  };
}

export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.status === 409;
export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.status === 404;

/** The Lease calls, bound to one namespace. */
export class LeaseApi {
  private readonly base: string;

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    private readonly fieldManager: string,
  ) {
    this.base = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
  }

  async list(): Promise<Lease[]> {
    const r = await this.client.request<{ items?: Lease[] }>('GET', this.base, { query: { labelSelector: SELECTOR } });
    return r.items ?? [];
  }

  get(name: string): Promise<Lease> {
    return this.client.request<Lease>('GET', `${this.base}/${name}`);
  }

  /** 409 AlreadyExists when another node created it first. */
  create(lease: Lease): Promise<Lease> {
    return this.client.request<Lease>('POST', this.base, { body: lease, query: { fieldManager: this.fieldManager } });
  }

  /** Replaces the Lease; 409 Conflict when it changed since `lease.metadata.resourceVersion` was read. */
  update(lease: Lease): Promise<Lease> {
    return this.client.request<Lease>('PUT', `${this.base}/${lease.metadata.name}`, {
      body: lease,
      query: { fieldManager: this.fieldManager },
    });
  }

  /** Deletes the Lease only if it is still the version read (a precondition on resourceVersion). */
  async delete(lease: Lease): Promise<void> {
    await this.client.request('DELETE', `${this.base}/${lease.metadata.name}`, {
      body: {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { resourceVersion: lease.metadata.resourceVersion },
      },
    });
  }
}
