// Cordon and uncordon the node, remembering who cordoned it: the agent marks its own cordon with an
// annotation and only ever undoes a cordon that carries it, so a node an operator cordoned (kubectl
// cordon sets spec.unschedulable and nothing else) stays cordoned whatever the ladder does. Every write
// is conditional on the resourceVersion it was decided on.
import { KubeApiError } from '../../outputs/kubernetes';
import type { LadderNode, NodeApi } from './node-api';

/** Set by the agent with its cordon; its value says for which condition and run. */
export const CORDONED_BY_AGENT = 'node-health-agent/cordoned';

const CONFLICT_RETRIES = 5;

export type CordonResult =
  /** The agent cordoned the node now. */
  | 'cordoned'
  /** The agent's own cordon was already in place (a run resumed). */
  | 'already-by-agent'
  /** Someone else cordoned the node; the agent leaves it cordoned when it is done. */
  | 'already-by-operator';

export type UncordonResult =
  | 'uncordoned'
  /** Cordoned, but not by the agent: left as it is. */
  | 'not-ours'
  /** Not cordoned (someone uncordoned it already); the agent's mark, if any, is removed. */
  | 'not-cordoned';

export function cordonedByAgent(node: LadderNode): boolean {
  return node.spec?.unschedulable === true && node.metadata.annotations?.[CORDONED_BY_AGENT] !== undefined;
}

export async function cordon(api: NodeApi, mark: string): Promise<CordonResult> {
  return retryConflicts(async () => {
    const node = await api.getNode();
    if (node.spec?.unschedulable === true) return cordonedByAgent(node) ? 'already-by-agent' : 'already-by-operator';
    await api.patchNode(node.metadata.resourceVersion, {
      metadata: { annotations: { [CORDONED_BY_AGENT]: mark } },
      spec: { unschedulable: true },
    });
    return 'cordoned';
  });
}

export async function uncordon(api: NodeApi): Promise<UncordonResult> {
  return retryConflicts(async () => {
    const node = await api.getNode();
    const marked = node.metadata.annotations?.[CORDONED_BY_AGENT] !== undefined;
    if (node.spec?.unschedulable !== true) {
      if (marked) await api.patchNode(node.metadata.resourceVersion, { metadata: { annotations: { [CORDONED_BY_AGENT]: null } } });
      return 'not-cordoned';
    }
    if (!marked) return 'not-ours';
    await api.patchNode(node.metadata.resourceVersion, {
      metadata: { annotations: { [CORDONED_BY_AGENT]: null } },
      spec: { unschedulable: null },
    });
    return 'uncordoned';
  });
}

/** Re-reads and decides again when the Node changed between the read and the write (the kubelet writes it too). */
async function retryConflicts<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 409) || i >= CONFLICT_RETRIES) throw err;
    }
  }
}
