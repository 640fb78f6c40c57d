// The API calls of the ladder, made with the node's own kubelet credentials: what the Node authorizer
// and NodeRestriction allow a node to do to itself (docs/ladder.md, "What a node may do"). Read its own
// Node, patch its spec.unschedulable and annotations, list the pods bound to it (the field selector
// spec.nodeName is required), and evict those pods through the Eviction API, which honours
// PodDisruptionBudgets. Never DELETE a pod: that skips the budgets.
import { type KubeClient, KubeApiError, type ApiCondition } from '../../outputs/kubernetes';

export interface LadderNode {
  metadata: { name: string; uid: string; resourceVersion: string; annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status?: { conditions?: ApiCondition[] };
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  controller?: boolean;
}

export interface LadderPod {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
  };
  status?: { phase?: string };
}

export type EvictResult =
  | { result: 'evicted' }
  /** The pod was gone already. */
  | { result: 'gone' }
  /** 429: a PodDisruptionBudget does not allow it now (or 409: the pod changed); ask again later. */
  | { result: 'blocked'; message: string; retryAfterMs?: number };

export class NodeApi {
  constructor(
    private readonly client: KubeClient,
    readonly nodeName: string,
    private readonly fieldManager: string,
  ) {}

  getNode(): Promise<LadderNode> {
    return this.client.request<LadderNode>('GET', `/api/v1/nodes/${this.nodeName}`);
  }

  /**
   * A JSON merge patch of the Node that fails with 409 Conflict when the Node changed since
   * `resourceVersion` was read, so a decision made on what was read is never applied to a newer state.
   */
  patchNode(resourceVersion: string, patch: { metadata?: { annotations?: Record<string, string | null> }; spec?: Record<string, unknown> }): Promise<LadderNode> {
    const body = { ...patch, metadata: { ...patch.metadata, resourceVersion } };
    return this.client.request<LadderNode>('PATCH', `/api/v1/nodes/${this.nodeName}`, {
      body,
      contentType: 'application/merge-patch+json',
      query: { fieldManager: this.fieldManager },
    });
  }

  /** Pods bound to this node, optionally only those matching a label selector. */
  async listPods(labelSelector = ''): Promise<LadderPod[]> {
    const query: Record<string, string> = { fieldSelector: `spec.nodeName=${this.nodeName}` };
    if (labelSelector !== '') query.labelSelector = labelSelector;
    const list = await this.client.request<{ items?: LadderPod[] }>('GET', '/api/v1/pods', { query });
    return list.items ?? [];
  }

  /** Asks the API server to evict a pod (policy/v1 Eviction); throws KubeApiError for anything but 2xx, 404, 409 and 429. */
  async evict(pod: LadderPod): Promise<EvictResult> {
    const { name, namespace, uid } = pod.metadata;
    try {
      await this.client.request('POST', `/api/v1/namespaces/${namespace}/pods/${name}/eviction`, {
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name, namespace },
          // Only this very pod: a pod of the same name created meanwhile is not evicted by mistake.
          deleteOptions: { preconditions: { uid } },
        },
      });
      return { result: 'evicted' };
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return { result: 'gone' };
      // 409: the pod changed under the request (a new pod of that name); the next listing tells.
      if (err instanceof KubeApiError && (err.status === 429 || err.status === 409)) {
        return {
          result: 'blocked',
          message: err.serverMessage,
          ...(err.retryAfterSeconds !== undefined ? { retryAfterMs: err.retryAfterSeconds * 1000 } : {}),
        };
      }
      throw err;
    }
  }
}
