// One probe of each component, turned into a verdict (does it work?) and findings (what was seen,
// warnings included). A verdict's failure is what the repair policy acts on; warnings — no CNI
// network yet, slow image listing — are reported but never restart anything.
import type { Config } from '../../config/schema';
import type { Finding, Probe, ProbeResult, RuntimeProbes } from '../../types';
import { ContainerdClient, GrpcStatus, RuntimeCallError } from './containerd';
import { probeHttpHealth } from './http-health';

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;

export async function probeContainerd(client: ContainerdClient, cfg: Config['containerd']): Promise<Probe> {
  const at = Date.now();
  const findings: Finding[] = [];
  const fail = (reason: string, message: string, absent = false): Probe => {
    findings.unshift({ subject: 'Version', status: 'problem', reason, message });
    return { result: { ok: false, reason, message, absent, at }, findings };
  };

  let version: string;
  try {
    version = (await client.version(cfg.timeout)).version;
  } catch (err) {
    if (!(err instanceof RuntimeCallError)) throw err;
    if (err.timedOut) {
      return fail(
        'ContainerdUnresponsive',
        `containerd did not answer Version() on ${cfg.socket} within ${seconds(cfg.timeout)}: the socket accepts ` +
          `connections but the daemon does not answer (hung); see journalctl -u ${cfg.unit}`,
      );
    }
    return fail(
      'ContainerdUnreachable',
      `cannot reach containerd on ${cfg.socket}: ${err.detail}; is ${cfg.unit} running?`,
      err.code === GrpcStatus.UNAVAILABLE,
    );
  }
  findings.push({ subject: 'Version', status: 'ok', reason: 'ContainerdAnswers', message: `containerd ${version} answers` });

  let verdict: ProbeResult = { ok: true, reason: 'ContainerRuntimeIsHealthy', message: `containerd ${version} answers and its runtime is ready`, at };
  try {
    const conditions = await client.runtimeConditions(cfg.timeout);
    for (const type of ['RuntimeReady', 'NetworkReady']) {
      const c = conditions.find((x) => x.type === type);
      if (!c) {
        findings.push({ subject: type, status: 'warning', reason: 'CRIConditionMissing', message: `the CRI status has no ${type} condition` });
      } else if (c.status) {
        findings.push({ subject: type, status: 'ok', reason: type, message: `${type} is true` });
      } else if (type === 'RuntimeReady') {
        const message = `containerd's CRI reports RuntimeReady false: ${c.reason}: ${c.message}`;
        findings.push({ subject: type, status: 'problem', reason: 'ContainerRuntimeNotReady', message });
        verdict = { ok: false, reason: 'ContainerRuntimeNotReady', message, at };
      } else {
        // Normal before a CNI plugin is installed, and not something a restart fixes.
        findings.push({
          subject: type,
          status: 'warning',
          reason: 'NetworkNotReady',
          message: `containerd's CRI reports NetworkReady false: ${c.reason}: ${c.message}; check the CNI configuration`,
        });
      }
    }
  } catch (err) {
    if (!(err instanceof RuntimeCallError)) throw err;
    if (err.code === GrpcStatus.UNIMPLEMENTED) {
      findings.push({
        subject: 'RuntimeReady',
        status: 'warning',
        reason: 'CRIDisabled',
        message: `containerd on ${cfg.socket} does not serve the CRI (runtime.v1); the kubelet cannot use it — is the cri plugin disabled in /etc/containerd/config.toml?`,
      });
    } else {
      const message = `containerd answered Version() but not the CRI Status(): ${err.detail}`;
      findings.push({ subject: 'RuntimeReady', status: 'problem', reason: 'ContainerdCRIUnresponsive', message });
      verdict = { ok: false, reason: 'ContainerdCRIUnresponsive', message, at };
    }
    return { result: verdict, findings };
  }

  const started = performance.now();
  try {
    const images = await client.listImages(cfg.timeout);
    const took = performance.now() - started;
    const listing = `listing ${images.length} images took ${seconds(took)}`;
    findings.push(
      took > cfg.images_slow
        ? {
            subject: 'ListImages',
            status: 'warning',
            reason: 'ContainerdSlow',
            message: `${listing} (over ${seconds(cfg.images_slow)}): often disk or I/O pressure on /var/lib/containerd`,
          }
        : { subject: 'ListImages', status: 'ok', reason: 'ContainerdImagesListed', message: listing },
    );
  } catch (err) {
    if (!(err instanceof RuntimeCallError)) throw err;
    findings.push({
      subject: 'ListImages',
      status: 'warning',
      reason: 'ContainerdSlow',
      message: `listing images failed after ${seconds(err.elapsedMs)}: ${err.detail}`,
    });
  }
  return { result: verdict, findings };
}

/** The kubelet's healthz, or kube-proxy's livez: `title` names the component in reasons ("Kubelet"). */
export async function probeHealthz(title: 'Kubelet' | 'KubeProxy', what: string, url: string, timeoutMs: number): Promise<Probe> {
  const at = Date.now();
  const r = await probeHttpHealth(url, timeoutMs);
  let result: ProbeResult;
  if (r.healthy) {
    result = { ok: true, reason: `${title}IsHealthy`, message: `${what} answers ${url} with ${r.body || 'an empty body'}`, at };
  } else if (r.timedOut) {
    result = { ok: false, reason: `${title}Unresponsive`, message: `${what} gave no answer on ${url} within ${seconds(timeoutMs)} (hung)`, at };
  } else if (r.statusCode !== undefined) {
    result = {
      ok: false,
      reason: `${title}Unhealthy`,
      message: `${what} answers ${url} with HTTP ${r.statusCode}: ${r.body.replace(/\s+/g, ' ').slice(0, 300)}`,
      at,
    };
  } else {
    result = { ok: false, reason: `${title}Unreachable`, message: `${what} is unreachable on ${url}: ${r.error}`, absent: true, at };
  }
  const finding: Finding = { subject: url, status: result.ok ? 'ok' : 'problem', reason: result.reason, message: result.message };
  return { result, findings: [finding] };
}

/** The probes of the components `config` configures; one containerd connection, opened on first use. */
export function runtimeProbes(config: Pick<Config, 'containerd' | 'kubelet' | 'kube_proxy'>): RuntimeProbes {
  const { containerd, kubelet, kube_proxy } = config;
  let client: ContainerdClient | undefined;
  return {
    containerd: () => probeContainerd((client ??= new ContainerdClient(containerd.socket)), containerd),
    kubelet: () => probeHealthz('Kubelet', 'the kubelet', kubelet.healthz_url, kubelet.timeout),
    kubeProxy: () => probeHealthz('KubeProxy', 'kube-proxy', kube_proxy.livez_url, kube_proxy.timeout),
    close: () => client?.close(),
  };
}
