// The parts of Kubernetes API objects the agent reads and writes.

export interface ApiCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

export interface NodeObject {
  metadata: { name: string; uid: string; managedFields?: ManagedFieldsEntry[] };
  status?: { conditions?: ApiCondition[] };
}

export interface EventObject {
  metadata: { name: string; namespace: string };
  count?: number;
}

/** The call the condition writer makes, bound to one Node. */
export interface NodeStatusApi {
  patchStatus(body: unknown): Promise<NodeObject>;
}

/** Condition types the kubelet owns. Writing them would fight the kubelet over the node's readiness. */
export const KUBELET_CONDITION_TYPES: readonly string[] = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable'];

/**
 * Types EKS's node monitoring agent reports: EKS and Karpenter may replace a node on which one of them is
 * False. Allowed, but warned about.
 */
export const EKS_CONDITION_TYPES: readonly string[] = [
  'ContainerRuntimeReady',
  'KernelReady',
  'NetworkingReady',
  'StorageReady',
  'AcceleratedHardwareReady',
];
