// Runtime health and repair by the installed agent on a real systemd, D-Bus and containerd (node in a
// box): a hung containerd is restarted, a crashed one that systemd will not restart is started at once,
// the D-Bus daemon can be restarted under the agent, and a unit that is not on the allow-list is never
// touched.
import { get } from 'node:http';
import t from 'tap';
import { freePort, lastCondition, RepairNode } from './repair-harness';

/** The value of one series in the daemon's /metrics (boxes share the host's network), 0 when absent. */
async function scrape(port: number, series: string): Promise<number> {
  // A connection of its own (agent: false): no keep-alive socket is reused after the server closed it.
  const text = await new Promise<string>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body)).on('error', reject);
    }).on('error', reject);
  });
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

t.test('containerd hung, crashed, D-Bus restarted; kubelet not on the allow-list', async (t) => {
  const node = await RepairNode.up(t, 'nha-repair');
  const port = await freePort();
  const metricsPort = await freePort();
  await node.box.check(['systemctl', 'start', 'containerd']);
  await node.installKubelet(port);
  await node.install(`
[agent]
log_level = debug
[metrics]
port = ${metricsPort}
[repair]
allowed_units = containerd.service
job_timeout = 10s
[containerd]
interval = 1s
timeout = 1s
failure_duration = 2s
cooldown = 2s
backoff = 1s
backoff_max = 2s
max_repairs = 10
repair_window = 1m
[kubelet]
healthz_url = http://127.0.0.1:${port}/healthz
interval = 1s
timeout = 1s
failure_duration = 1s
cooldown = 1s
`);
  await node.untilHealthy(['containerd', 'kubelet'], 20_000);

  t.test('SIGSTOP: unresponsive within timeout + interval, restarted with a new main PID, condition clears', async (t) => {
    // Past the cooldown, so the hang is judged.
    await new Promise((r) => setTimeout(r, 2500));
    const before = (await node.show('containerd', 'MainPID')).MainPID;
    const stopped = Date.now();
    await node.box.check(['kill', '-STOP', before as string]);
    const recs = await node.waitFor('ContainerRuntimeUnhealthy True', (r) => lastCondition(r, 'ContainerRuntimeUnhealthy')?.status === 'True', 10_000, stopped);
    const detected = lastCondition(recs, 'ContainerRuntimeUnhealthy');
    t.equal(detected?.reason, 'ContainerdUnresponsive');
    t.match(detected?.message, /did not answer Version\(\).*within 1\.0s/);
    const detectMs = (detected?.t ?? 0) - stopped;
    // Bound: the interval (with its 10 % jitter) plus the call timeout, plus scheduling slack.
    t.ok(detectMs <= 1100 + 1000 + 1000, `detected after ${detectMs} ms (interval 1s + timeout 1s)`);

    const after = await node.waitFor('ContainerdRestarted and the condition False', (r) =>
      r.some((x) => x.reason === 'ContainerdRestarted') && lastCondition(r, 'ContainerRuntimeUnhealthy')?.status === 'False',
    20_000, stopped);
    const event = after.find((x) => x.reason === 'ContainerdRestarted');
    t.match(event?.message, /restarted containerd\.service after ContainerdUnresponsive/);
    const now = await node.show('containerd', 'MainPID', 'ActiveState');
    t.equal(now.ActiveState, 'active');
    t.not(now.MainPID, before, `new main PID ${now.MainPID} (was ${before})`);
    t.comment(`hang → detected ${detectMs} ms, → restarted ${(event?.t ?? 0) - stopped} ms, → healthy ${(lastCondition(after, 'ContainerRuntimeUnhealthy')?.t ?? 0) - stopped} ms`);
  });

  t.test('kill -9 with Restart=no: seen over D-Bus at once and started', async (t) => {
    await node.sh('mkdir -p /run/systemd/system/containerd.service.d && printf "[Service]\\nRestart=no\\n" > /run/systemd/system/containerd.service.d/no-restart.conf && systemctl daemon-reload');
    t.equal((await node.show('containerd', 'Restart')).Restart, 'no');
    await new Promise((r) => setTimeout(r, 2500));
    const before = (await node.show('containerd', 'MainPID')).MainPID;
    const killed = Date.now();
    await node.box.check(['kill', '-KILL', before as string]);
    const recs = await node.waitFor(
      'ContainerdStarted and ContainerdExited',
      (r) => r.some((x) => x.reason === 'ContainerdStarted') && r.some((x) => x.reason === 'ContainerdExited'),
      15_000,
      killed,
    );
    const unhealthy = recs.filter((x) => x.kind === 'condition' && x.type === 'ContainerRuntimeUnhealthy' && x.status === 'True');
    // A probe in flight at the kill may report the dead socket a moment before the unit's state arrives.
    const seen = unhealthy[0];
    const failed = unhealthy.find((x) => x.reason === 'ContainerdFailed');
    t.match(failed?.message, /killed by a signal \(Result=signal\), and systemd will not restart it/);
    const seenMs = (seen?.t ?? 0) - killed;
    t.ok(seenMs < 1000, `failure seen ${seenMs} ms after the kill (no probe interval involved)`);
    t.match(recs.find((x) => x.reason === 'ContainerdExited')?.message, /systemd will not restart it by itself/, 'the exit is an event too');
    const now = await node.show('containerd', 'MainPID', 'ActiveState');
    t.equal(now.ActiveState, 'active');
    t.not(now.MainPID, before);
    t.comment(`crash → seen ${seenMs} ms, → started ${(recs.find((x) => x.reason === 'ContainerdStarted')?.t ?? 0) - killed} ms`);
  });

  t.test('the D-Bus daemon restarted: the agent reconnects and still sees a crash at once', async (t) => {
    const journalBefore = (await node.journal('MESSAGE=watching units over D-Bus')).length;
    await node.box.check(['systemctl', 'restart', 'dbus']);
    await node.until('a second "watching units" entry', async () => (await node.journal('MESSAGE=watching units over D-Bus')).length > journalBefore, 15_000);
    t.ok((await node.runtime()).bus.connected, 'connected again');
    await new Promise((r) => setTimeout(r, 2500));
    const before = (await node.show('containerd', 'MainPID')).MainPID;
    const killed = Date.now();
    await node.box.check(['kill', '-KILL', before as string]);
    const recs = await node.waitFor('ContainerdStarted after the bus restart', (r) => r.some((x) => x.reason === 'ContainerdStarted'), 15_000, killed);
    const seen = recs.find((x) => x.kind === 'condition' && x.type === 'ContainerRuntimeUnhealthy' && x.status === 'True');
    t.ok(seen && seen.t - killed < 1000, `seen ${seen ? seen.t - killed : '-'} ms after the kill`);
    t.not((await node.show('containerd', 'MainPID')).MainPID, before);
  });

  t.test('kubelet is not on the allow-list: reported unhealthy, never touched', async (t) => {
    const before = await node.show('kubelet', 'MainPID', 'NRestarts', 'InactiveExitTimestampMonotonic');
    const since = Date.now();
    await node.kubeletMode('unhealthy');
    const recs = await node.waitFor('KubeletUnhealthy True', (r) => lastCondition(r, 'KubeletUnhealthy')?.status === 'True', 10_000, since);
    t.equal(lastCondition(recs, 'KubeletUnhealthy')?.reason, 'KubeletUnhealthy');
    t.match(lastCondition(recs, 'KubeletUnhealthy')?.message, /HTTP 500: \[\+\]ping ok \[-\]syncloop failed/);
    // Well past failure_duration and cooldown.
    await new Promise((r) => setTimeout(r, 4000));
    t.same(await node.show('kubelet', 'MainPID', 'NRestarts', 'InactiveExitTimestampMonotonic'), before, 'the unit was not restarted');
    const status = await node.runtime();
    t.notOk(status.lastActions.some((a) => a.component === 'kubelet'), 'no kubelet action in the ledger');
    t.equal((await node.journal('NODE_HEALTH_UNIT=kubelet.service', 'PRIORITY=4')).filter((e) => /not in \[repair\] allowed_units/.test(e.MESSAGE ?? '')).length, 1, 'said so once');
    await node.kubeletMode('');
    // The condition is True until then, so its change to False is in the journal.
    await node.waitFor('KubeletUnhealthy False', (r) => lastCondition(r, 'KubeletUnhealthy')?.status === 'False', 10_000, Date.now());
  });

  t.test('every action is in the journal with structured fields, and in status', async (t) => {
    const restarts = await node.journal('NODE_HEALTH_ACTION=restart', 'NODE_HEALTH_UNIT=containerd.service');
    t.ok(restarts.some((e) => e.NODE_HEALTH_RESULT === 'done' && Number(e.NODE_HEALTH_MAIN_PID) > 0), 'restart done with its new main PID');
    const starts = await node.journal('NODE_HEALTH_ACTION=start', 'NODE_HEALTH_UNIT=containerd.service', 'NODE_HEALTH_RESULT=done');
    t.equal(starts.length, 2, 'two starts after the two crashes');
    const status = await node.runtime();
    t.same(
      status.lastActions.map((a) => `${a.action}:${a.outcome?.result}`),
      ['start:done', 'start:done', 'restart:done'],
      'newest first, each with its outcome',
    );
    t.equal(status.components.find((c) => c.name === 'containerd')?.repair?.used, 3);
  });

  t.test('every action is counted on the daemon\'s /metrics endpoint', async (t) => {
    const series = (action: string, result: string): string =>
      `node_health_repairs_total{unit="containerd.service",action="${action}",result="${result}"}`;
    t.equal(await scrape(metricsPort, series('restart', 'done')), 1, 'the restart of the hung containerd');
    t.equal(await scrape(metricsPort, series('start', 'done')), 2, 'the two starts after the crashes');
  });

});
