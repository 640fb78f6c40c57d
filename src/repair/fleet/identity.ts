// The coordination identity: a second credential, separate from the kubelet's, that may use Leases in one
// namespace and read Nodes. Since Kubernetes 1.32 the kubelet's identity may read only its own Node and
// no Leases outside kube-node-lease, so cross-node coordination cannot run on it. Everything else the
// agent does keeps using the kubelet's credentials.
import type { Config } from '../../config/schema';
import { messageOf } from '../../errors';
import { type KubeClient, KubeApiError, findKubeconfig, loadKubeconfig, type Kubeconfig, nodeOfIdentity } from '../../outputs/kubernetes';
import { SELECTOR } from './leases';

export type CoordinationConfig = Config['coordination'];

/** Where the manifest that creates the identity is installed. */
export const MANIFEST = '/usr/share/node-health-agent/kubernetes/coordination.yaml';
const SEE = `apply ${MANIFEST} and give the node its ServiceAccount token (docs/fleet.md)`;

export type Configured = { kubeconfig: Kubeconfig } | { disabled: string };

/** The identity the config names, without any I/O beyond reading the kubeconfig; or why there is none. */
export function configuredIdentity(cfg: CoordinationConfig, kubernetes: Config['kubernetes']): Configured {
  if (!cfg.enabled) {
    return { disabled: '[coordination] enabled = false: disruptive repairs (cordon, drain, reboot) need cluster-wide coordination and are off' };
  }
  if (cfg.kubeconfig && cfg.token_file) {
    return { disabled: '[coordination] sets both kubeconfig and token_file: set one of them' };
  }
  if (!cfg.kubeconfig && !cfg.token_file) {
    return { disabled: `[coordination] names no coordination identity (kubeconfig or token_file): ${SEE}` };
  }
  try {
    if (cfg.kubeconfig) return { kubeconfig: loadKubeconfig(cfg.kubeconfig) };
    return { kubeconfig: tokenKubeconfig(cfg, kubernetes) };
  } catch (err) {
    return { disabled: `coordination identity: ${messageOf(err)}` };
  }
}

/** A token file with the server and CA from [coordination], or else from the kubelet's kubeconfig. */
function tokenKubeconfig(cfg: CoordinationConfig, kubernetes: Config['kubernetes']): Kubeconfig {
  const tokenFile = cfg.token_file as string;
  if (cfg.server) {
    return {
      file: '[coordination] server and ca_file',
      context: '',
      server: cfg.server,
      ...(cfg.ca_file ? { ca: { file: cfg.ca_file } } : {}),
      tokenFile,
      clusterInfo: { server: cfg.server },
    };
  }
  const kubelet = findKubeconfig(kubernetes.kubeconfig_paths);
  const k = loadKubeconfig(kubelet);
  // Only where the server is and how to verify it: never the kubelet's own credentials.
  return {
    file: `${kubelet} (server and CA for [coordination] token_file)`,
    context: k.context,
    server: k.server,
    ...(k.tlsServerName ? { tlsServerName: k.tlsServerName } : {}),
    ...(cfg.ca_file ? { ca: { file: cfg.ca_file } } : k.ca ? { ca: k.ca } : {}),
    tokenFile,
    clusterInfo: k.clusterInfo,
  };
}

export interface Verified {
  /** The user the API server knows the credentials as, e.g. system:serviceaccount:node-health:node-health-coordinator. */
  identity: string;
  /** This node's creationTimestamp (ms), for the new-node grace. */
  nodeCreated: number | undefined;
}

/** Thrown when the identity cannot coordinate; the message says why and what to do. */
export class CoordinationUnavailable extends Error {
  override name = 'CoordinationUnavailable';
}

/**
 * Proves the identity can do what coordination needs (list Leases in the namespace, read this Node and
 * list Nodes). Permission problems become CoordinationUnavailable; an unreachable server is rethrown.
 */
export async function verifyIdentity(client: KubeClient, namespace: string, node: string): Promise<Verified> {
  let identity = '';
  try {
    const review = await client.request<{ status?: { userInfo?: { username?: string } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    identity = review.status?.userInfo?.username ?? '';
  } catch (err) {
    // Who we are only improves the messages; a server that will not say is no reason to stop.
    if (!(err instanceof KubeApiError) || err.status === 401) throw unavailable(err, 'ask the API server who it is', '', client, namespace);
  }
  const as = identity || client.credentials.describe();
  if (nodeOfIdentity(identity) !== undefined) {
    throw new CoordinationUnavailable(
      `the coordination identity is ${identity}, a kubelet identity, which may not use Leases outside kube-node-lease nor read other Nodes (Kubernetes 1.32+): ${SEE}`,
    );
  }
  const step = async <T>(doing: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw unavailable(err, doing, as, client, namespace);
    }
  };
  await step(`list Leases in namespace ${namespace}`, () =>
    client.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`, { query: { labelSelector: SELECTOR, limit: '1' } }),
  );
  const own = await step(`read Node ${node}`, () => client.request<{ metadata?: { creationTimestamp?: string } }>('GET', `/api/v1/nodes/${node}`));
  await step('list Nodes', () => client.request('GET', '/api/v1/nodes', { query: { limit: '1' } }));
  const created = Date.parse(own.metadata?.creationTimestamp ?? '');
  return { identity, nodeCreated: Number.isFinite(created) ? created : undefined };
}

function unavailable(err: unknown, doing: string, as: string, client: KubeClient, namespace: string): Error {
  if (!(err instanceof KubeApiError)) return err instanceof Error ? err : new Error(String(err));
  const who = as || client.credentials.describe();
  const server = `${err.status} ${err.reason || 'error'}: ${err.serverMessage}`;
  switch (err.status) {
    case 401:
      return new CoordinationUnavailable(
        `the API server rejected the coordination credentials (${client.credentials.describe()}) when trying to ${doing} (${server}): the token may have expired or its ServiceAccount been deleted; ${SEE}`,
      );
    case 403:
      return new CoordinationUnavailable(
        `the coordination identity ${who} may not ${doing} (${server}): ${MANIFEST} grants Leases in namespace ${namespace} and get/list on Nodes; apply it and check [coordination] namespace`,
      );
    case 404:
      return new CoordinationUnavailable(`cannot ${doing}: not found (${server}); the Node must exist before this node can take part in repairs`);
    default:
      return err;
  }
}
