// Which Node this agent reports on. The Node authorizer lets the kubelet's credentials write only the
// Node named in their identity (system:node:<name>), so after the explicit settings the identity itself
// decides: the client certificate's CN, or for tokens and exec plugins the user the API server reports
// (SelfSubjectReview). The hostname is the last resort, as the kubelet's own default.
import { KubeError } from './errors';
import type { NodeNameSource } from '../../types';
export type { NodeNameSource };

export interface NodeNameInputs {
  /** --node-name on the command line. */
  flag?: string | undefined;
  /** [kubernetes] node_name; "" when unset. */
  configured: string;
  env: NodeJS.ProcessEnv;
  /** CN of the client certificate in use, e.g. "system:node:worker-1". */
  certificateCN?: string | undefined;
  /** Asks the API server who the credentials are; resolves to the username, e.g. "system:node:worker-1". */
  whoAmI?: (() => Promise<string>) | undefined;
  hostname: () => string;
}

export interface ResolvedNodeName {
  name: string;
  source: NodeNameSource;
  /** The identity the credentials carry when known, e.g. "system:node:worker-1". */
  identity?: string;
}

const NODE_PREFIX = 'system:node:';

/** RFC 1123 subdomain, the rule for Node names. */
export function isNodeName(name: string): boolean {
  return name.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name);
}

export function nodeOfIdentity(identity: string | undefined): string | undefined {
  return identity?.startsWith(NODE_PREFIX) ? identity.slice(NODE_PREFIX.length) : undefined;
}

export async function resolveNodeName(inputs: NodeNameInputs): Promise<ResolvedNodeName> {
  const identityFromCert = inputs.certificateCN;
  const pick = (name: string, source: NodeNameSource, identity?: string): ResolvedNodeName => {
    if (!isNodeName(name)) {
      throw new KubeError(
        'NODE_NAME_INVALID',
        `node name "${name}" (from ${describeSource(source)}) is not a valid Node name: use lowercase letters, digits, '-' and '.'`,
      );
    }
    return identity === undefined ? { name, source } : { name, source, identity };
  };

  const explicit: Array<[string | undefined, NodeNameSource]> = [
    [inputs.flag, 'flag'],
    [inputs.configured, 'config'],
    [inputs.env.NODE_NAME, 'NODE_NAME'],
  ];
  for (const [value, source] of explicit) {
    const v = value?.trim();
    if (v) return pick(v, source, identityFromCert);
  }
  const fromCert = nodeOfIdentity(identityFromCert);
  if (fromCert !== undefined) return pick(fromCert, 'certificate', identityFromCert);
  if (identityFromCert === undefined && inputs.whoAmI) {
    // Network errors propagate: guessing the hostname while the server is unreachable could pick a
    // different Node than the credentials may write.
    const user = await inputs.whoAmI();
    const fromServer = nodeOfIdentity(user);
    if (fromServer !== undefined) return pick(fromServer, 'server', user);
    return pick(inputs.hostname().toLowerCase(), 'hostname', user);
  }
  return pick(inputs.hostname().toLowerCase(), 'hostname', identityFromCert);
}

export function describeSource(source: NodeNameSource): string {
  switch (source) {
    case 'flag':
      return '--node-name';
    case 'config':
      return '[kubernetes] node_name';
    case 'NODE_NAME':
      return 'the NODE_NAME environment variable';
    case 'certificate':
      return "the kubelet client certificate's CN";
    case 'server':
      return 'the API server (SelfSubjectReview)';
    case 'hostname':
      return 'the hostname';
  }
}
