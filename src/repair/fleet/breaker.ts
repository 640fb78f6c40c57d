// The unhealthy-fraction breaker: no node starts a disruptive repair while more than
// max(max_nodes, max_percent of the nodes) are unhealthy. Many nodes failing at once points at a cause
// outside them (an overloaded control plane, a bad rollout, the network) that rebooting nodes would only
// worsen (gardener#12930). The absolute floor lets a small pool heal, which a percentage alone would
// forbid (karpenter#2134: 20 % of 3 nodes is no node at all).
import type { KubeClient } from '../../outputs/kubernetes';
import { CORDONED_BY_AGENT } from '../ladder/cordon';

/** What the gate reads of a Node: its age, its conditions, and whether an agent's cordon is on it. */
export interface NodeLite {
  /** annotations: only the agent's cordon mark (CORDONED_BY_AGENT), when present. */
  metadata: { name: string; creationTimestamp?: string; annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status?: { conditions?: Array<{ type: string; status: string }> };
}

export interface BreakerPolicy {
  maxNodes: number;
  /** 0–100. */
  maxPercent: number;
  /** Conditions that make a node unhealthy when True, besides Ready not being True. */
  conditions: readonly string[];
  /** Nodes younger than this are still joining: not counted at all. */
  graceMs: number;
}

export interface BreakerVerdict {
  tripped: boolean;
  /** Nodes counted (old enough). */
  total: number;
  unhealthy: string[];
  /** Unhealthy nodes allowed: max(maxNodes, ⌊maxPercent × total⌋). */
  allowed: number;
}

/**
 * Judges a node list. Nodes in `repairing` (holders of a slot) are left out of the unhealthy count:
 * the semaphore already bounds them, and counting them would let the repairs themselves trip the
 * breaker.
 */
export function judge(nodes: readonly NodeLite[], policy: BreakerPolicy, repairing: ReadonlySet<string>, now: number): BreakerVerdict {
  const watched = new Set(policy.conditions);
  let total = 0;
  const unhealthy: string[] = [];
  for (const n of nodes) {
    const created = Date.parse(n.metadata.creationTimestamp ?? '');
    if (Number.isFinite(created) && now - created < policy.graceMs) continue;
    total++;
    if (repairing.has(n.metadata.name)) continue;
    const conditions = n.status?.conditions ?? [];
    const ready = conditions.find((c) => c.type === 'Ready')?.status === 'True';
    if (!ready || conditions.some((c) => watched.has(c.type) && c.status === 'True')) unhealthy.push(n.metadata.name);
  }
  const allowed = Math.max(policy.maxNodes, Math.floor((policy.maxPercent * total) / 100));
  return { tripped: unhealthy.length > allowed, total, unhealthy, allowed };
}

/** Every Node, in pages so a large cluster's list does not arrive as one response; a consistent read. */
export async function listNodes(client: KubeClient, pageSize = 500): Promise<NodeLite[]> {
  const nodes: NodeLite[] = [];
  let cont = '';
  do {
    const page = await client.request<{ items?: NodeLite[]; metadata?: { continue?: string } }>('GET', '/api/v1/nodes', {
      query: { limit: String(pageSize), ...(cont ? { continue: cont } : {}) },
    });
    for (const n of page.items ?? []) {
      const mark = n.metadata.annotations?.[CORDONED_BY_AGENT];
      nodes.push({
        metadata: {
          name: n.metadata.name,
          ...(n.metadata.creationTimestamp ? { creationTimestamp: n.metadata.creationTimestamp } : {}),
          ...(mark !== undefined ? { annotations: { [CORDONED_BY_AGENT]: mark } } : {}),
        },
        ...(n.spec?.unschedulable === true ? { spec: { unschedulable: true } } : {}),
        status: { conditions: (n.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status })) },
      });
    }
    cont = page.metadata?.continue ?? '';
  } while (cont !== '');
  return nodes;
}
