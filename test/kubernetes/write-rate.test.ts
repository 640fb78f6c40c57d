// API writes per hour, measured against the real API server with every time constant divided by 60, so
// one minute of test is one hour of a node: the heartbeat (5 min → 5 s), the write rate limit (one per
// 10 s → one per 167 ms) and the flapping period (1 s → 16.7 ms). Figures are in docs/kubernetes.md.
import t from 'tap';
import type { RequestRecord } from '../../src/outputs/kubernetes/client';
import { NodeReporter } from '../../src/outputs/kubernetes/reporter';
import type { NodeCondition } from '../../src/types';
import { Cluster, waitFor } from '../helpers/cluster';
import { kubernetesConfig, recordingLogger } from './support';

const SCALE = 60;
const HOUR_MS = 3_600_000 / SCALE;

t.test('condition writes per (scaled) hour: steady state and a flapping condition', async (t) => {
  const cluster = await Cluster.up(t, ['steady', 'flapping']);
  const run = async (node: string) => {
    const writes: RequestRecord[] = [];
    const r = await NodeReporter.create(
      kubernetesConfig({
        kubeconfig_paths: [cluster.kubeletConf(node)],
        heartbeat: 300_000 / SCALE,
        status_refill: 10_000 / SCALE,
      }),
      recordingLogger(),
      { env: {}, onRequest: (q) => q.verb === 'PATCH' && q.resource === 'nodes/status' && writes.push(q) },
    );
    t.teardown(() => r.stop());
    return { r, writes };
  };
  const at = new Date().toISOString();
  const healthy = (type: string): NodeCondition => ({ type, status: 'False', reason: `No${type}`, message: 'fine', lastTransitionTime: at });
  const owned = ['KernelDeadlock', 'ReadonlyFilesystem', 'FrequentKubeletRestart'];

  const steady = await run('steady');
  const flapping = await run('flapping');
  steady.r.setConditions(owned.map(healthy));
  const started = Date.now();
  let flips = 0;
  while (Date.now() - started < HOUR_MS) {
    flips++;
    flapping.r.setConditions([
      ...owned.slice(1).map(healthy),
      { type: 'KernelDeadlock', status: flips % 2 ? 'True' : 'False', reason: 'Flap', message: `flip ${flips}`, lastTransitionTime: new Date().toISOString() },
    ]);
    await new Promise((res) => setTimeout(res, 1000 / SCALE));
  }
  const steadyWrites = steady.writes.length;
  const flappingWrites = flapping.writes.length;
  t.comment(`steady state: ${steadyWrites} writes per hour (heartbeat 5m, 3 conditions)`);
  t.comment(`flapping every second: ${flips} changes, ${flappingWrites} writes per hour (burst 5, then one per 10s)`);
  t.ok(steadyWrites >= 11 && steadyWrites <= 15, `steady: ${steadyWrites} within 11–15 (target ≤ 15)`);
  t.ok(flappingWrites <= 5 + 360 + 1, `flapping: ${flappingWrites} ≤ burst + one per 10 s`);
  t.ok(flappingWrites >= 300, `flapping: changes keep flowing (${flappingWrites})`);
  const final = `flip ${flips}`;
  await waitFor('the last flip on the Node', async () => ((await cluster.condition('flapping', 'KernelDeadlock'))?.message === final ? true : undefined), 5000);
});
