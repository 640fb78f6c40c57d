// The one place a Kubernetes client is made: the reporter, the ladder, its readiness check and the
// coordination identity all build theirs here, with the same user agent and request timeout.
import type { Config } from '../../config/schema';
import { VERSION } from '../../version';
import { KubeClient, type RequestRecord } from './client';
import { findKubeconfig, loadKubeconfig, type Kubeconfig } from './kubeconfig';

export interface KubeClientOptions {
  /** Credentials other than the kubelet's (the coordination identity); default the first of kubeconfig_paths. */
  kubeconfig?: Kubeconfig;
  onRequest?: (r: RequestRecord) => void;
}

/** A client for `cfg`'s API server; `file` is the kubeconfig read, when it was one of kubeconfig_paths. */
export function createKubeClient(cfg: Config['kubernetes'], opts: KubeClientOptions = {}): { client: KubeClient; file?: string } {
  const file = opts.kubeconfig ? undefined : findKubeconfig(cfg.kubeconfig_paths);
  const kubeconfig = opts.kubeconfig ?? loadKubeconfig(file as string);
  const client = new KubeClient(kubeconfig, {
    userAgent: userAgent(cfg.field_manager),
    timeoutMs: cfg.request_timeout,
    ...(opts.onRequest ? { onRequest: opts.onRequest } : {}),
  });
  return file === undefined ? { client } : { client, file };
}

/** The user the API server authenticates the credentials as (SelfSubjectReview, GA since 1.28). */
export async function whoAmI(client: KubeClient): Promise<string> {
  const review = await client.request<{ status?: { userInfo?: { username?: string } } }>(
    'POST',
    '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
  );
  return review.status?.userInfo?.username ?? '';
}

export function userAgent(product: string): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return `${product}/${VERSION} (${process.platform}/${arch})`;
}
