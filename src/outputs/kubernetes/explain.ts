// Turns API failures into one line an operator can act on, and logs each kind of failure once per outage
// instead of once per retry.
import { messageOf } from '../../errors';
import type { Logger } from '../log';
import { KubeApiError, KubeError } from './errors';
import { describeSource, nodeOfIdentity, type NodeNameSource } from './node-name';

export interface Identity {
  nodeName: string;
  nodeNameSource: NodeNameSource;
  /** e.g. "system:node:worker-1"; undefined when the credentials do not say. */
  identity?: string | undefined;
}

/** What was being done, e.g. "write the status of Node worker-1". */
export function explain(err: unknown, doing: string, who: Identity): string {
  if (!(err instanceof KubeApiError)) return `cannot ${doing}: ${messageOf(err)}`;
  const as = who.identity ?? 'these credentials';
  const server = `${err.status} ${err.reason || 'error'}: ${err.serverMessage}`;
  switch (err.status) {
    case 401:
      return `the API server rejected the credentials (${as}) when trying to ${doing} (${server}); the kubelet's credentials may have expired or been revoked`;
    case 403: {
      const own = nodeOfIdentity(who.identity);
      if (own !== undefined && own !== who.nodeName) {
        return (
          `the API server refused to let ${as} ${doing} (${server}): a node's credentials may only write its own Node, ` +
          `and the node name ${who.nodeName} came from ${describeSource(who.nodeNameSource)}; unset it or use ${own}`
        );
      }
      return (
        `the API server refused to let ${as} ${doing} (${server}); the kubelet's credentials (user system:node:<name>, group ` +
        'system:nodes, with the Node authorizer and NodeRestriction) may get and patch their own Node and its status and create and patch core/v1 Events'
      );
    }
    case 404:
      return `cannot ${doing}: Node ${who.nodeName} does not exist (${server}); the kubelet registers it when it starts, and writes resume once it does`;
    default:
      return `cannot ${doing} (${server})`;
  }
}

/** Logs a failure the first time it happens; the same kind again is silent until recovered() is called. */
export class OnceLog {
  private readonly seen = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  failed(err: unknown, message: string): void {
    const key = err instanceof KubeApiError ? `api:${err.status}` : err instanceof KubeError ? err.code : 'other';
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const forbidden = err instanceof KubeApiError && (err.status === 403 || err.status === 401);
    const retry = forbidden ? '; retrying with back-off' : '; retrying with back-off, the latest state is sent once it succeeds';
    this.log[forbidden ? 'error' : 'warning'](`kubernetes: ${message}${retry}`, { action: this.what });
  }

  recovered(): void {
    if (this.seen.size === 0) return;
    this.seen.clear();
    this.log.info(`kubernetes: ${this.what} succeeds again`, { action: this.what });
  }
}
