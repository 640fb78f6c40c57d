// The API server stopped for 60 s while conditions keep changing and events keep coming: retries back
// off instead of hammering, memory stays bounded (latest state, bounded event queue, counters), and once
// the server is back the Node ends up with exactly the latest desired state.
import t from 'tap';
import type { RequestRecord } from '../../src/outputs/kubernetes/client';
import { MAX_QUEUE } from '../../src/outputs/kubernetes/event-writer';
import { NodeReporter } from '../../src/outputs/kubernetes/reporter';
import type { NodeCondition } from '../../src/types';
import { Cluster, waitFor } from '../helpers/cluster';
import { kubernetesConfig, recordingLogger } from './support';

const OUTAGE_MS = 60_000;
const RETRY_MAX_MS = 5_000;

t.test('API server stopped for 60 s, then restarted', async (t) => {
  const cluster = await Cluster.up(t, ['node-o']);
  const requests: RequestRecord[] = [];
  const log = recordingLogger();
  const r = await NodeReporter.create(
    kubernetesConfig({ kubeconfig_paths: [cluster.kubeletConf('node-o')], status_refill: 100, retry_max: RETRY_MAX_MS, event_burst: 10, event_refill: 1000 }),
    log,
    { env: {}, onRequest: (q) => requests.push(q) },
  );
  t.teardown(() => r.stop());

  const c = (type: string, status: NodeCondition['status'], message: string): NodeCondition => ({
    type,
    status,
    reason: status === 'True' ? `${type}Detected` : `No${type}`,
    message,
    lastTransitionTime: new Date().toISOString(),
  });
  r.setConditions([c('KernelDeadlock', 'True', 'before'), c('ReadonlyFilesystem', 'False', 'before')]);
  await waitFor('the first write', async () => ((await cluster.condition('node-o', 'ReadonlyFilesystem')) ? true : undefined));
  t.equal(r.status().connected, true);

  await cluster.stopApiserver();
  const stoppedAt = Date.now();
  const before = requests.length;
  let changes = 0;
  let maxQueued = 0;
  let maxPending = 0;
  let last: NodeCondition[] = [];
  while (Date.now() - stoppedAt < OUTAGE_MS) {
    const n = changes++;
    last = [c('KernelDeadlock', n % 2 ? 'True' : 'False', `change ${n}`), c('ReadonlyFilesystem', n % 3 ? 'False' : 'True', `change ${n}`)];
    r.setConditions(last);
    for (let i = 0; i < 5; i++) r.event({ source: 'test', severity: 'Warning', reason: `Reason${i}`, message: `event ${n}` });
    maxQueued = Math.max(maxQueued, r.status().events.queued);
    const st = r.status();
    maxPending = Math.max(maxPending, st.pending - st.events.held - st.events.queued);
    await new Promise((res) => setTimeout(res, 10));
  }
  const during = requests.slice(before).filter((q) => q.code === 'error');
  t.comment(`outage: ${changes} condition changes and ${changes * 5} events in ${OUTAGE_MS / 1000} s; ${during.length} failed requests; event queue at most ${maxQueued}`);
  t.ok(maxQueued <= MAX_QUEUE, `event queue bounded (${maxQueued} ≤ ${MAX_QUEUE})`);
  t.ok(maxPending <= 2, `pending condition changes bounded by the owned types (${maxPending})`);
  // Back-off: 1 s doubling to 5 s for the condition writer and the event writer each, with jitter.
  t.ok(during.length <= 60, `retries back off: ${during.length} attempts in 60 s`);
  t.match(r.status().lastError, /cannot reach the API server/);
  t.equal(r.status().connected, false, 'not connected while the API server is stopped');
  t.equal(log.matching(/cannot write the status of Node node-o/, 'warning').length, 1, 'the outage is logged once');

  const restartedAt = Date.now();
  await cluster.startApiserver();
  t.comment(`API server ready ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after it was started`);
  const [kd, ro] = last;
  await waitFor(
    'the latest desired state on the Node',
    async () => {
      const node = await cluster.node('node-o');
      const got = (type: string) => node.status?.conditions?.find((x) => x.type === type);
      return got('KernelDeadlock')?.message === kd?.message && got('ReadonlyFilesystem')?.message === ro?.message ? node : undefined;
    },
    RETRY_MAX_MS * 3,
  );
  t.comment(`state on the Node ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the API server was started`);
  t.match(await cluster.condition('node-o', 'KernelDeadlock'), { status: kd?.status, reason: kd?.reason });
  t.match(await cluster.condition('node-o', 'ReadonlyFilesystem'), { status: ro?.status, reason: ro?.reason });
  await waitFor('nothing pending', async () => (r.status().pending === 0 && r.status().events.queued === 0 ? true : undefined), 30_000);
  t.equal(r.status().lastError, null);
  t.equal(r.status().connected, true, 'connected again');
  t.equal(log.matching(/writing node conditions succeeds again/, 'info').length, 1);

  // Every event is accounted for: sent, or counted in a "suppressed" summary that was sent.
  const events = await cluster.events('node-o');
  const summaries = events.filter((e) => /suppressed/.test(e.message));
  t.ok(summaries.length >= 1, `${summaries.length} summaries`);
  const counted = events.reduce((sum, e) => sum + e.count, 0);
  // Exactly once: a create in flight when the server went away may have been stored although its answer never
  // came; its retry under the same name is answered AlreadyExists. A 403 from the restarted server while its
  // admission caches warm up is retried, not taken as a refusal of the Event.
  t.equal(counted, changes * 5, `${changes * 5} events reported: ${events.length} Event objects, counts summing to ${counted}`);
  t.equal(r.status().events.failed, 0, 'no Event dropped');
  t.equal(log.entries.filter((e) => e.fields.code === 'EVENT_DROPPED').length, 0);
});
