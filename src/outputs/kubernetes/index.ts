// The Kubernetes client's public face: all that layers other than outputs/ may use (repair's ladder
// and coordination, the agent). The writers and the reporter's internals stay behind it.
export { KubeClient, type RequestRecord } from './client';
export { createKubeClient, userAgent, whoAmI, type KubeClientOptions } from './connect';
export { KubeApiError, KubeError, type KubeErrorCode } from './errors';
export { findKubeconfig, loadKubeconfig, type Kubeconfig } from './kubeconfig';
export { nodeOfIdentity, resolveNodeName, type NodeNameSource } from './node-name';
export type { ApiCondition, NodeObject } from './types';
