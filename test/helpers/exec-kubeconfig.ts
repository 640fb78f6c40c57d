// A kubeconfig whose user gets its token from a client-go exec credential plugin (as EKS, GKE and AKS
// nodes are set up), and a plugin that hands out a fixed token with a short expiry and counts its runs.
import { stringify } from 'yaml';

export interface ExecKubeconfigOptions {
  server: string;
  /** The plugin's command; a relative one is resolved against the kubeconfig's directory. */
  command: string;
  args?: string[];
  /** The API server's CA, base64 (certificate-authority-data); none: the system's trust store. */
  caData?: string;
}

/** The kubeconfig's text: one cluster, one context, one user with `exec`. */
export function execKubeconfig(o: ExecKubeconfigOptions): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: o.server, ...(o.caData ? { 'certificate-authority-data': o.caData } : {}) } }],
    contexts: [{ name: 'k', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'k',
    users: [
      {
        name: 'u',
        user: {
          exec: { apiVersion: 'client.authentication.k8s.io/v1', command: o.command, ...(o.args ? { args: o.args } : {}), interactiveMode: 'Never' },
        },
      },
    ],
  });
}

/**
 * A plugin script (sh) that prints an ExecCredential with the token in `tokenFile`, expiring `ttlSeconds`
 * after the run, and appends a line to `callsFile` each time it runs.
 */
export function expiringTokenPlugin(o: { tokenFile: string; callsFile: string; ttlSeconds: number }): string {
  return `#!/bin/sh
echo run >> ${o.callsFile}
exp=$(date -u -d "@$(( $(date +%s) + ${o.ttlSeconds} ))" +%Y-%m-%dT%H:%M:%SZ)
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}' "$(cat ${o.tokenFile})" "$exp"
`;
}
