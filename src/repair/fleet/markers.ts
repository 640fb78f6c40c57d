// Marker Leases: a Lease nobody renews, meaning "until renewTime + leaseDurationSeconds". The gap Lease
// (last repair started or finished), the breaker Lease (storm cooldown), the cordoned-nodes Lease (slots
// blocked by nodes their agents left cordoned) and each node's lockout Lease (a reboot that did not
// help) are markers, so they are cluster-visible (`kubectl get leases`) and outlive restarts of the agent.
import { Backoff } from '../../system/backoff';
import { isConflict, isNotFound, microTime, newLease, type Lease, type LeaseApi, type LeaseKind } from './leases';

export interface Marker {
  name: string;
  kind: LeaseKind;
  holder: string;
  durationMs: number;
  annotations?: Record<string, string>;
}

/**
 * Writes the marker with renewTime = now. `expected` is the version read before: the write fails with
 * 409 when the Lease changed since (or, with `expected` undefined, when it exists by now).
 */
export function putMarker(api: LeaseApi, m: Marker, expected: Lease | undefined, now = Date.now()): Promise<Lease> {
  const time = microTime(now);
  const spec = { holderIdentity: m.holder, leaseDurationSeconds: Math.max(1, Math.ceil(m.durationMs / 1000)), acquireTime: time, renewTime: time };
  if (!expected) return api.create(newLease(api.namespace, m.name, m.kind, spec, m.annotations));
  return api.update({
    ...expected,
    metadata: { ...expected.metadata, annotations: { ...expected.metadata.annotations, ...m.annotations } },
    spec: { ...spec, leaseTransitions: (expected.spec.leaseTransitions ?? 0) + (expected.spec.holderIdentity === m.holder ? 0 : 1) },
  });
}

/** Writes the marker whatever its current version, re-reading after conflicts (a few attempts). */
export async function forceMarker(api: LeaseApi, m: Marker): Promise<Lease> {
  const backoff = new Backoff(100, 1000);
  for (let attempt = 1; ; attempt++) {
    let current: Lease | undefined;
    try {
      current = await api.get(m.name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      return await putMarker(api, m, current);
    } catch (err) {
      if (!isConflict(err) || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, backoff.next()));
    }
  }
}
