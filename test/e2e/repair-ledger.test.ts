// The repair ledger of the installed agent across its crashes, and legacy monitors, on a real systemd
// (node in a box): an agent SIGKILLed while its restart job runs, and started again by systemd, resolves
// that action instead of restarting again; an intent whose action never happened is not repeated
// blindly; legacy monitors are reported, then stopped and masked (or disabled, when their unit file
// lives in /etc).
import t from 'tap';
import { AGENT_UNIT, events, freePort, lastCondition, RepairNode, STATE_DIR } from './repair-harness';

async function kubeletStarts(node: RepairNode): Promise<number> {
  const out = await node.box.check(['journalctl', '--no-pager', '-o', 'cat', '_PID=1', 'UNIT=kubelet.service']);
  return out.split('\n').filter((l) => l.startsWith('Started kubelet.service')).length;
}

t.test('agent crashes mid-repair; legacy monitors', async (t) => {
  const node = await RepairNode.up(t, 'nha-ledger');
  const port = await freePort();
  await node.installKubelet(port);
  const config = (extra = '') => `
[repair]
job_timeout = 6s
${extra}
[containerd]
enabled = false
[kubelet]
healthz_url = http://127.0.0.1:${port}/healthz
interval = 1s
timeout = 1s
failure_duration = 1s
cooldown = 1s
backoff = 1m
max_repairs = 5
repair_window = 1h
`;
  await node.install(config());
  await node.untilHealthy(['kubelet'], 15_000);
  await new Promise((r) => setTimeout(r, 1500));

  t.test('SIGKILLed between intent and outcome: the action is resolved, not repeated', async (t) => {
    const startsBefore = await kubeletStarts(node);
    await node.kubeletMode('unhealthy ignore-term');
    // The restart job hangs on the ignored SIGTERM: the intent is on disk, the outcome is not.
    await node.until('the restart to begin', async () => (await node.journal('NODE_HEALTH_ACTION=restart', 'NODE_HEALTH_UNIT=kubelet.service')).length > 0, 15_000);
    await node.until('kubelet stopping', async () => (await node.show('kubelet', 'ActiveState')).ActiveState === 'deactivating', 5000);
    const killed = await node.killAgent();
    const since = Date.now();
    // Read before systemd starts the agent again (RestartSec=10s in the shipped unit).
    const ledger = await node.box.check(['cat', `${STATE_DIR}/repair-ledger.jsonl`]);
    t.equal(ledger.trim().split('\n').length, 1, 'only the intent was written');
    t.match(JSON.parse(ledger) as object, { kind: 'intent', component: 'kubelet', action: 'restart' });
    await node.kubeletMode('');

    // Nobody starts the agent: the unit's Restart=always does, after RestartSec (10 s), so the bound
    // is the old 20 s plus those 10 s.
    const recs = await node.waitFor('the resolved restart', (r) => events(r, 'KubeletRestarted').length > 0, 30_000, since);
    const restarted = await node.show(AGENT_UNIT, 'MainPID', 'NRestarts');
    t.equal(Number(restarted.NRestarts), killed.nRestarts + 1, 'systemd started the agent again');
    t.equal(events(recs, 'KubeletRestarted')[0]?.pid, restarted.MainPID, 'the agent systemd started resolved it');
    t.match(events(recs, 'KubeletRestarted')[0]?.message, /\(resolved after an agent restart\)/);
    await node.untilCondition('KubeletUnhealthy', 'False', 10_000);
    const status = await node.runtime();
    t.equal(status.lastActions.length, 1, 'one action in the ledger');
    t.equal(status.lastActions[0]?.outcome?.result, 'completed-while-down');
    t.match(status.lastActions[0]?.outcome?.detail, /waited for the job the agent had queued; it was still running after job_timeout: KillUnit main SIGKILL/);
    t.equal(await kubeletStarts(node), startsBefore + 1, 'the kubelet was restarted exactly once');
  });

  t.test('an intent whose action never happened: interrupted, not repeated while back-off lasts', async (t) => {
    await node.stopAgent();
    const s = await node.show('kubelet', 'ActiveState', 'SubState', 'MainPID', 'InactiveExitTimestamp');
    // The property's raw value in µs (systemctl show prints it rounded to seconds).
    const raw = await node.box.check([
      'busctl', 'get-property', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1/unit/kubelet_2eservice',
      'org.freedesktop.systemd1.Unit', 'InactiveExitTimestamp',
    ]);
    const exitUs = Number(/^t (\d+)/.exec(raw)?.[1]);
    // As if the agent died after fsyncing the intent and before calling RestartUnit.
    const intent = {
      kind: 'intent',
      id: 'crafted-1',
      at: new Date().toISOString(),
      component: 'kubelet',
      unit: 'kubelet.service',
      action: 'restart',
      dryRun: false,
      reason: 'KubeletUnhealthy',
      message: 'crafted for the test',
      before: { activeState: s.ActiveState, subState: s.SubState, mainPid: Number(s.MainPID), inactiveExitUs: exitUs },
    };
    await node.box.check(['sh', '-c', `cat >> ${STATE_DIR}/repair-ledger.jsonl`], { input: `${JSON.stringify(intent)}\n` });
    const startsBefore = await kubeletStarts(node);
    await node.kubeletMode('unhealthy');
    const since = Date.now();
    await node.startAgent();
    await node.waitFor('KubeletUnhealthy True', (r) => lastCondition(r, 'KubeletUnhealthy')?.status === 'True', 10_000, since);
    await new Promise((r) => setTimeout(r, 4000));
    const status = await node.runtime();
    const crafted = status.lastActions.find((a) => a.id === 'crafted-1');
    t.equal(crafted?.outcome?.result, 'interrupted');
    t.match(crafted?.outcome?.detail, /shows no start since .*not repeated now: back-off and budget decide/);
    t.equal(await kubeletStarts(node), startsBefore, 'no restart within the back-off after it');
    await node.kubeletMode('');
  });

  t.test('legacy monitors: reported, then stopped and masked (or disabled when their file is in /etc)', async (t) => {
    await node.stopAgent();
    const unit = (name: string) => `[Unit]\nDescription=legacy ${name}\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n`;
    await node.box.check(['sh', '-c', 'cat > /lib/systemd/system/containerd-monitor.service'], { input: unit('containerd-monitor') });
    await node.box.check(['sh', '-c', 'cat > /etc/systemd/system/kubelet-monitor.service'], { input: unit('kubelet-monitor') });
    await node.box.check(['systemctl', 'daemon-reload']);
    await node.box.check(['systemctl', 'enable', '--now', 'containerd-monitor.service', 'kubelet-monitor.service']);

    let since = Date.now();
    await node.startAgent();
    let recs = await node.waitFor('two LegacyMonitorFound', (r) => events(r, 'LegacyMonitorFound').length === 2, 10_000, since);
    t.match(events(recs, 'LegacyMonitorFound').map((e) => e.message).sort(), [/^legacy monitor containerd-monitor\.service is installed/, /^legacy monitor kubelet-monitor\.service is installed/]);
    t.equal((await node.show('containerd-monitor', 'ActiveState')).ActiveState, 'active', 'report only: left running');
    const status = await node.runtime();
    t.same(status.legacyUnits.map((u) => u.unit).sort(), ['containerd-monitor.service', 'kubelet-monitor.service']);

    // [repair] is read at start only.
    await node.stopAgent();
    await node.writeConfig(config('legacy_monitors = mask'));
    since = Date.now();
    await node.startAgent();
    recs = await node.waitFor('two LegacyMonitorMasked', (r) => events(r, 'LegacyMonitorMasked').length === 2, 20_000, since);
    const containerdMonitor = await node.show('containerd-monitor', 'ActiveState', 'UnitFileState', 'LoadState');
    t.match(containerdMonitor, { ActiveState: 'inactive', UnitFileState: 'masked', LoadState: 'masked' });
    const kubeletMonitor = await node.show('kubelet-monitor', 'ActiveState', 'UnitFileState');
    t.match(kubeletMonitor, { ActiveState: 'inactive', UnitFileState: 'disabled' });
    t.match(
      events(recs, 'LegacyMonitorMasked').find((e) => /kubelet-monitor/.test(e.message ?? ''))?.message,
      /cannot mask: its unit file is in \/etc\/systemd\/system; DisableUnitFiles, Reload — remove \/etc\/systemd\/system\/kubelet-monitor\.service to finish/,
    );
    const masks = await node.journal('NODE_HEALTH_ACTION=mask', 'NODE_HEALTH_RESULT=done');
    t.equal(masks.length, 2, 'both in the journal with structured fields');
  });
});
