import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConditionStore } from '../../../src/engine/condition-store';
import { ConditionTable } from '../../../src/engine/conditions';
import { AgentMetrics } from '../../../src/outputs/metrics/server';
import { DegradedState } from '../../../src/system/degraded';
import { Tmpfs } from '../../helpers/tmpfs';

function tableWith(): ConditionTable {
  const table = new ConditionTable();
  table.declare({ type: 'KernelDeadlock', owner: 'journal', reason: 'KernelHasNoDeadlock', message: 'ok', clearOnReboot: true });
  table.declare({ type: 'FrequentKubeletRestart', owner: 'journal', reason: 'NoFrequentKubeletRestart', message: 'ok' });
  return table;
}

t.test('conditions survive a restart in the same boot; reboot-cleared ones do not survive a reboot', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'nha-store-')), 'conditions.json');
  const before = tableWith();
  before.report({ source: 'journal/kernel/DockerHung', type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: 'task docker:7 blocked' });
  before.report({ source: 'journal/systemd/Freq', type: 'FrequentKubeletRestart', status: 'True', reason: 'FrequentKubeletRestart', message: '5 times' });
  const errors: string[] = [];
  new ConditionStore(path, () => before.snapshot('boot-1'), (m) => errors.push(m)).flush();

  const sameBoot = tableWith();
  const store = new ConditionStore(path, () => sameBoot.snapshot('boot-1'), (m) => errors.push(m));
  sameBoot.restore(store.load()!, 'boot-1');
  t.same(sameBoot.conditions(), before.conditions(), 'everything comes back, with its transition times');
  // The restored reports keep the merge honest: the rule clearing later really clears the condition.
  sameBoot.report({ source: 'journal/kernel/DockerHung', type: 'KernelDeadlock', status: 'False', reason: 'DockerHung', message: '' });
  t.equal(sameBoot.get('KernelDeadlock')?.status, 'False');

  const rebooted = tableWith();
  rebooted.restore(store.load()!, 'boot-2');
  t.equal(rebooted.get('KernelDeadlock')?.status, 'False', 'a reboot clears KernelDeadlock');
  t.equal(rebooted.get('FrequentKubeletRestart')?.status, 'True', 'others persist');
  t.same(errors, []);
});

t.test('a damaged or missing file is reported (or not) and ignored', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nha-store-'));
  const errors: string[] = [];
  const store = new ConditionStore(join(dir, 'conditions.json'), () => tableWith().snapshot('b'), (m) => errors.push(m));
  t.equal(store.load(), undefined);
  t.same(errors, [], 'no file yet is normal');
  writeFileSync(join(dir, 'conditions.json'), '{"bootId": 1');
  t.equal(store.load(), undefined);
  t.match(errors[0], /conditions\.json: saved conditions are damaged/);
  store.flush();
  t.match(JSON.parse(readFileSync(join(dir, 'conditions.json'), 'utf8')), { bootId: 'b' }, 'the next save replaces it whole');
});

t.test('a save the disk refuses is retried from the table until it lands; the degraded state shows it meanwhile', async (t) => {
  const fs = Tmpfs.mount(t, 64);
  const path = join(fs.path, 'conditions.json');
  const logged: string[] = [];
  const log = { error: (m: string) => logged.push(m), info: (m: string) => logged.push(m) };
  const degraded = new DegradedState(log);
  const table = tableWith();
  const store = new ConditionStore(path, () => table.snapshot('b'), () => undefined, { retryMs: 100, health: degraded.for('conditions') });
  t.equal(store.flush(), true);
  fs.fill();
  // A big message: the new file needs pages of its own.
  table.report({ source: 'journal/kernel/DockerHung', type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: 'x'.repeat(8000) });
  t.equal(store.flush(), false);
  t.match(degraded.list(), [{ component: 'conditions', reason: 'ENOSPC', message: /conditions\.json: cannot save conditions: ENOSPC/ }]);
  t.match(logged, [/^conditions is degraded: .*ENOSPC.*; kept in memory and retried$/]);
  const metrics = new AgentMetrics();
  metrics.watchDegraded(() => degraded.list());
  t.match(metrics.registry.expose(), /^node_health_degraded\{component="conditions",reason="ENOSPC"\} 1$/m, 'the metric names it');
  await new Promise((r) => setTimeout(r, 250));
  t.equal(logged.length, 1, 'retries do not log again while the cause stays the same');
  fs.free();
  await new Promise((r) => setTimeout(r, 250));
  t.same(degraded.list(), [], 'cleared once a save worked');
  t.notMatch(metrics.registry.expose(), /^node_health_degraded\{/m, 'and its series is gone');
  t.match(logged[1], /^conditions writes again \(degraded since .* by ENOSPC\)$/);
  const saved = JSON.parse(readFileSync(path, 'utf8')) as { conditions: Array<{ type: string; status: string }> };
  t.match(saved.conditions, [{ type: 'KernelDeadlock', status: 'True' }], 'the latest state reached the disk without another change');
  store.close();
});
