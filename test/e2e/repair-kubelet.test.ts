// Kubelet repair policy of the installed agent on a real systemd (node in a box, the kubelet stand-in as
// kubelet.service): a restart whose stop hangs is escalated, back-off spaces the repairs, the budget
// stops them (and stays spent across a restart of the agent), and dry-run only says what it would do.
import t from 'tap';
import { events, freePort, lastCondition, RepairNode } from './repair-harness';

t.test('kubelet: escalation, back-off, budget, restart of the agent, dry-run', async (t) => {
  const node = await RepairNode.up(t, 'nha-kubelet');
  const port = await freePort();
  await node.installKubelet(port);
  const config = (mode: string) => `
[repair]
mode = ${mode}
job_timeout = 3s
[containerd]
enabled = false
[kubelet]
healthz_url = http://127.0.0.1:${port}/healthz
interval = 1s
timeout = 1s
failure_duration = 1s
cooldown = 1s
backoff = 2s
backoff_max = 4s
max_repairs = 3
repair_window = 1m
`;
  await node.install(config('repair'));
  await node.untilHealthy(['kubelet'], 15_000);
  await new Promise((r) => setTimeout(r, 1500));

  t.test('a restart whose stop hangs is escalated: SIGKILL to the main process, then it runs again', async (t) => {
    const before = await node.show('kubelet', 'MainPID');
    const since = Date.now();
    await node.kubeletMode('unhealthy ignore-term');
    const recs = await node.waitFor('KubeletRestarted', (r) => events(r, 'KubeletRestarted').length > 0, 20_000, since);
    await node.kubeletMode('');
    const message = events(recs, 'KubeletRestarted')[0]?.message ?? '';
    t.match(message, /still running after 3s; KillUnit main SIGKILL/);
    t.match(message, /unit active \(running\)/);
    const journal = await node.box.check(['journalctl', '--no-pager', '-o', 'cat', '-u', 'kubelet', '--since', `@${Math.floor(since / 1000)}`]);
    t.match(journal, 'kubelet stand-in ignores SIGTERM', 'the stop really hung');
    t.not((await node.show('kubelet', 'MainPID')).MainPID, before.MainPID, 'a new main PID');
    const status = await node.runtime();
    t.equal(status.lastActions[0]?.outcome?.result, 'escalated');
    await node.untilCondition('KubeletUnhealthy', 'False', 10_000);
  });

  t.test('repairs back off, then the budget stops them and the condition says why', async (t) => {
    const since = Date.now();
    await node.kubeletMode('unhealthy');
    const recs = await node.waitFor(
      'RepairBudgetExhausted',
      (r) => lastCondition(r, 'KubeletUnhealthy')?.reason === 'RepairBudgetExhausted',
      40_000,
      since,
    );
    const restarts = events(recs, 'KubeletRestarted');
    t.equal(restarts.length, 2, 'two more restarts: three in the window with the escalated one');
    const gap = (restarts[1]?.t ?? 0) - (restarts[0]?.t ?? 0);
    t.ok(gap >= 3500, `second restart ${gap} ms after the first: back-off doubled to 4s`);
    const condition = lastCondition(recs, 'KubeletUnhealthy');
    t.match(condition?.message, /HTTP 500.*3 repairs within 1m did not help; the agent stops repairing until .*\[kubelet\] max_repairs = 3/);
    t.equal(events(recs, 'RepairBudgetExhausted').length, 1, 'one event for the episode');

    const pid = (await node.show('kubelet', 'MainPID')).MainPID;
    await new Promise((r) => setTimeout(r, 6000));
    t.equal((await node.show('kubelet', 'MainPID')).MainPID, pid, 'no more repairs');
    const status = await node.runtime();
    t.match(status.components.find((c) => c.name === 'kubelet')?.repair, { used: 3, exhausted: true });
  });

  t.test('the budget survives a restart of the agent', async (t) => {
    await node.stopAgent();
    const pid = (await node.show('kubelet', 'MainPID')).MainPID;
    const since = Date.now();
    await node.startAgent();
    // The agent keeps its conditions across a restart (state_dir), so KubeletUnhealthy does not change
    // and is not logged again: the new process says it by its event, and the condition still says why.
    const recs = await node.waitFor('RepairBudgetExhausted after the restart', (r) => events(r, 'RepairBudgetExhausted').length > 0, 15_000, since);
    t.equal(events(recs, 'RepairBudgetExhausted')[0]?.pid, String((await node.status()).pid), 'said by the new process');
    t.equal((await node.condition('KubeletUnhealthy'))?.reason, 'RepairBudgetExhausted');
    t.equal(events(recs, 'KubeletRestarted').length, 0);
    await new Promise((r) => setTimeout(r, 3000));
    t.equal((await node.show('kubelet', 'MainPID')).MainPID, pid, 'still not restarted');
  });

  t.test('dry-run: the log and an event say what would be done; nothing is touched', async (t) => {
    // [repair] is read at start only (a reload says so and keeps the old mode).
    await node.stopAgent();
    await node.writeConfig(config('dry-run'));
    const before = await node.show('kubelet', 'MainPID', 'InactiveExitTimestampMonotonic');
    const since = Date.now();
    await node.startAgent();
    const recs = await node.waitFor('RepairDryRun', (r) => events(r, 'RepairDryRun').length > 0, 15_000, since);
    t.match(events(recs, 'RepairDryRun')[0]?.message, /^dry-run: would restart kubelet\.service \(KubeletUnhealthy: the kubelet answers .* HTTP 500/);
    const logged = await node.journal('NODE_HEALTH_DRY_RUN=true', 'NODE_HEALTH_ACTION=restart', 'NODE_HEALTH_UNIT=kubelet.service');
    t.ok(logged.length >= 1, 'logged with structured fields');
    await new Promise((r) => setTimeout(r, 3000));
    t.same(await node.show('kubelet', 'MainPID', 'InactiveExitTimestampMonotonic'), before, 'the unit was not touched');
    const status = await node.runtime();
    t.ok(status.lastActions[0]?.dryRun && status.lastActions[0].outcome?.result === 'skipped', 'recorded as a dry-run action');
  });
});
