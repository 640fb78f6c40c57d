// Drain: evict every pod bound to this node through the Eviction API, as `kubectl drain` does, and wait
// until they are gone. DaemonSet pods (their controller ignores cordons and would put them back) and
// mirror pods (the kubelet's static pods; evicting the mirror does nothing) are left alone. A refusal by
// a PodDisruptionBudget (429) is asked again with back-off; the whole drain has a deadline, so a budget
// that never allows the eviction fails the drain instead of stalling it forever (kured#82).
import { messageOf } from '../../errors';
import { Backoff } from '../../system/backoff';
import type { LadderPod, NodeApi } from './node-api';
import { sleep } from './sleep';

export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

const EVICT_BACKOFF_MIN_MS = 1000;
const EVICT_BACKOFF_MAX_MS = 30_000;

export interface DrainPlan {
  evict: LadderPod[];
  skip: Array<{ pod: LadderPod; why: string }>;
}

export function podName(pod: LadderPod): string {
  return `${pod.metadata.namespace}/${pod.metadata.name}`;
}

/** Which pods a drain evicts and which it leaves, and why. */
export function drainPlan(pods: readonly LadderPod[]): DrainPlan {
  const plan: DrainPlan = { evict: [], skip: [] };
  for (const pod of pods) {
    const owner = pod.metadata.ownerReferences?.find((o) => o.controller === true);
    if (pod.metadata.annotations?.[MIRROR_ANNOTATION] !== undefined) plan.skip.push({ pod, why: 'mirror pod' });
    else if (owner?.kind === 'DaemonSet') plan.skip.push({ pod, why: `DaemonSet ${owner.name}` });
    else if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') plan.skip.push({ pod, why: `finished (${pod.status.phase})` });
    else plan.evict.push(pod);
  }
  return plan;
}

export interface DrainOptions {
  timeoutMs: number;
  /** Aborting stops the drain at once (the slot was lost, the agent stops). */
  signal?: AbortSignal;
  /** How often the pods on the node are listed while waiting (default 2 s). */
  pollMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface DrainResult {
  ok: boolean;
  /** Pods the API server accepted an eviction of. */
  evicted: string[];
  skipped: string[];
  /** Pods still on the node when the drain ended. */
  remaining: string[];
  detail: string;
  durationMs: number;
}

interface Evicting {
  pod: LadderPod;
  evictedAt?: number;
  nextTryAt: number;
  backoff: Backoff;
  refusals: number;
  lastRefusal?: string;
}

/**
 * Evicts and waits. A pod counts as gone when it is no longer listed, or when it is terminating and the
 * grace period its eviction gave it has run out: a healthy kubelet has killed it by then, and a kubelet
 * that is not healthy (often the very reason for the repair) never will; the reboot ends it.
 */
export async function drain(api: NodeApi, opts: DrainOptions): Promise<DrainResult> {
  const now = opts.now ?? Date.now;
  const started = now();
  const deadline = started + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 2000;
  const tracked = new Map<string, Evicting>();
  const evicted = new Set<string>();
  const skipped = new Set<string>();
  const finish = (ok: boolean, remaining: string[], detail: string): DrainResult => ({
    ok,
    evicted: [...evicted],
    skipped: [...skipped],
    remaining,
    detail,
    durationMs: now() - started,
  });

  for (;;) {
    if (opts.signal?.aborted) return finish(false, [...tracked.values()].map((e) => podName(e.pod)), `stopped: ${String(opts.signal.reason ?? 'aborted')}`);
    let pods: LadderPod[];
    try {
      pods = await api.listPods();
    } catch (err) {
      if (now() >= deadline) return finish(false, [...tracked.values()].map((e) => podName(e.pod)), `cannot list the pods on the node: ${messageOf(err)}`);
      await sleep(pollMs, opts.signal);
      continue;
    }
    const plan = drainPlan(pods);
    for (const s of plan.skip) skipped.add(`${podName(s.pod)} (${s.why})`);
    const listed = new Set(plan.evict.map((p) => p.metadata.uid));
    for (const uid of tracked.keys()) if (!listed.has(uid)) tracked.delete(uid);
    const t = now();
    const waiting: Evicting[] = [];
    for (const pod of plan.evict) {
      let e = tracked.get(pod.metadata.uid);
      if (!e) {
        e = { pod, nextTryAt: t, backoff: new Backoff(EVICT_BACKOFF_MIN_MS, EVICT_BACKOFF_MAX_MS, opts.random), refusals: 0 };
        tracked.set(pod.metadata.uid, e);
      }
      e.pod = pod;
      const graceOver = pod.metadata.deletionTimestamp !== undefined && Date.parse(pod.metadata.deletionTimestamp) <= t;
      if (graceOver) continue;
      waiting.push(e);
    }
    if (waiting.length === 0) {
      return finish(true, [], `evicted ${evicted.size} pod(s)${skipped.size > 0 ? `; left ${[...skipped].join(', ')}` : ''}`);
    }
    if (t >= deadline) {
      const blocked = waiting.filter((e) => e.lastRefusal !== undefined && e.evictedAt === undefined);
      const why = blocked.length > 0
        ? `; evictions refused: ${blocked.map((e) => `${podName(e.pod)} (${e.refusals}×: ${e.lastRefusal})`).join('; ')}`
        : '; the evicted pods did not terminate';
      return finish(false, waiting.map((e) => podName(e.pod)), `not drained within ${Math.round(opts.timeoutMs / 1000)}s: ${waiting.length} pod(s) left${why}`);
    }
    for (const e of waiting) {
      if (e.evictedAt !== undefined || e.pod.metadata.deletionTimestamp !== undefined || e.nextTryAt > t) continue;
      try {
        const r = await api.evict(e.pod);
        if (r.result === 'blocked') {
          e.refusals++;
          e.lastRefusal = r.message;
          e.nextTryAt = now() + Math.max(e.backoff.next(), r.retryAfterMs ?? 0);
        } else {
          e.evictedAt = now();
          if (r.result === 'evicted') evicted.add(podName(e.pod));
        }
      } catch (err) {
        // Not a budget's refusal (403, 500 "more than one budget", …): asking again will not help.
        return finish(false, waiting.map((x) => podName(x.pod)), `eviction of ${podName(e.pod)} failed: ${messageOf(err)}`);
      }
    }
    const nextTry = Math.min(...waiting.filter((e) => e.evictedAt === undefined && e.pod.metadata.deletionTimestamp === undefined).map((e) => e.nextTryAt));
    await sleep(Math.max(50, Math.min(pollMs, nextTry - now(), deadline - now())), opts.signal);
  }
}
