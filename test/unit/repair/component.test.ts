// A component's verdicts, conditions, crash events and restart counting, driven by unit states and
// probe results as the watcher and the probes would deliver them.
import t from 'tap';
import type { Logger, ConditionReport, EventReport } from '../../../src/types';
import { ComponentMonitor, type ComponentSpec } from '../../../src/repair/component';
import type { UnitState } from '../../../src/system/systemd/unit-watcher';

const quiet: Logger = {
  error: () => undefined,
  warning: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  setLevel: () => undefined,
  close: () => undefined,
};

const MIN = 60_000;
const NOW = 1_800_000_000_000;

function setup(override?: { reason: string; message: string }) {
  let unit: UnitState | undefined;
  let now = NOW;
  const conditions: ConditionReport[] = [];
  const events: EventReport[] = [];
  const spec: ComponentSpec = {
    name: 'containerd',
    section: 'containerd',
    title: 'Containerd',
    unit: 'containerd.service',
    intervalMs: 10_000,
    cooldownMs: MIN,
    condition: { type: 'ContainerRuntimeUnhealthy', reason: 'ContainerRuntimeIsHealthy', message: 'fine' },
    frequent: { type: 'FrequentContainerdRestart', reason: 'NoFrequentContainerdRestart', message: 'fine', count: 3, windowMs: 20 * MIN },
    probe: async () => ({ result: { ok: true, reason: 'ContainerRuntimeIsHealthy', message: 'ok', at: now }, findings: [] }),
  };
  const c = new ComponentMonitor(spec, {
    log: quiet,
    condition: (r) => conditions.push(r),
    event: (e) => events.push(e),
    unitState: () => unit,
    onVerdict: () => override,
    now: () => now,
    // The unit started 10 minutes ago unless a test says otherwise.
    monoNowUs: () => 600_000_000 + (now - NOW) * 1000,
  });
  const state = (over: Partial<UnitState>): UnitState => ({
    name: 'containerd.service',
    loadState: 'loaded',
    activeState: 'active',
    subState: 'running',
    result: 'success',
    mainPid: 100,
    nRestarts: 0,
    inactiveExitUs: (NOW - 10 * MIN) * 1000,
    inactiveExitMonoUs: 0,
    unitFileState: 'enabled',
    jobId: 0,
    ...over,
  });
  const setUnit = (over: Partial<UnitState>) => {
    const previous = unit;
    unit = state(over);
    c.onUnit(unit, previous);
  };
  const last = (type: string) => conditions.filter((r) => r.type === type).at(-1);
  return { c, conditions, events, setUnit, last, advance: (ms: number) => (now += ms) };
}

t.test('conditions follow the verdict; settling leaves them as they were', async (t) => {
  const { c, setUnit, last, conditions, advance } = setup();
  setUnit({});
  t.equal(last('ContainerRuntimeUnhealthy'), undefined, 'nothing said before the first probe');
  c.probe = { result: { ok: true, reason: 'ContainerRuntimeIsHealthy', message: 'ok', at: NOW }, findings: [] };
  c.evaluate();
  t.match(last('ContainerRuntimeUnhealthy'), { source: 'repair/containerd', status: 'False', reason: 'ContainerRuntimeIsHealthy', message: 'fine' });

  c.probe = { result: { ok: false, reason: 'ContainerdUnresponsive', message: 'no answer', at: NOW }, findings: [] };
  c.evaluate();
  t.match(last('ContainerRuntimeUnhealthy'), { status: 'True', reason: 'ContainerdUnresponsive', message: 'no answer' });
  t.equal(c.failingSince, NOW);
  advance(5000);
  c.evaluate();
  t.equal(c.failingSince, NOW, 'the failure keeps its start');

  const before = conditions.filter((r) => r.type === 'ContainerRuntimeUnhealthy').length;
  setUnit({ activeState: 'deactivating', subState: 'stop-sigterm', jobId: 9 });
  t.equal(c.health.state, 'settling');
  t.equal(conditions.filter((r) => r.type === 'ContainerRuntimeUnhealthy').length, before, 'no report while settling');
  setUnit({ jobId: 0 });
  c.probe = { result: { ok: true, reason: 'ContainerRuntimeIsHealthy', message: 'ok', at: NOW }, findings: [] };
  c.evaluate();
  t.equal(last('ContainerRuntimeUnhealthy')?.status, 'False');
  t.equal(c.failingSince, undefined);
});

t.test("the caller's override replaces reason and message (budget exhausted)", async (t) => {
  const { c, setUnit, last } = setup({ reason: 'RepairBudgetExhausted', message: 'no more repairs until later' });
  setUnit({});
  c.probe = { result: { ok: false, reason: 'ContainerdUnresponsive', message: 'no answer', at: NOW }, findings: [] };
  c.evaluate();
  t.match(last('ContainerRuntimeUnhealthy'), { status: 'True', reason: 'RepairBudgetExhausted', message: 'no more repairs until later' });
});

t.test('a crash is an event saying whether systemd restarts the unit', async (t) => {
  const { setUnit, events } = setup();
  const settle = () => new Promise((r) => setTimeout(r, 300));
  setUnit({});
  // As systemd announces it: the result, then failed, then auto-restart (Restart=always).
  setUnit({ result: 'signal', mainPid: 0 });
  setUnit({ activeState: 'failed', subState: 'failed', result: 'signal', mainPid: 0 });
  setUnit({ activeState: 'activating', subState: 'auto-restart', result: 'signal', mainPid: 0 });
  await settle();
  t.equal(events.length, 1, 'one event per exit');
  t.match(events[0], {
    source: 'repair/containerd',
    severity: 'Warning',
    reason: 'ContainerdExited',
    message: /containerd\.service ended abnormally \(Result=signal, main PID was 100\); systemd restarts it$/,
  });
  setUnit({ result: 'success', mainPid: 200, inactiveExitUs: NOW * 1000 });
  // Restart=no: it stays failed until the agent itself starts it again, within the moment watched.
  setUnit({ result: 'core-dump', mainPid: 0 });
  setUnit({ activeState: 'failed', subState: 'failed', result: 'core-dump', mainPid: 0 });
  setUnit({ activeState: 'active', subState: 'running', result: 'success', mainPid: 300, inactiveExitUs: (NOW + 1) * 1000 });
  await settle();
  t.match(events[1]?.message, /Result=core-dump, main PID was 200\); systemd will not restart it by itself/);
});

t.test('starts are counted from new InactiveExitTimestamps and NRestarts steps; enough set Frequent…Restart', async (t) => {
  const { c, setUnit, last, advance } = setup();
  setUnit({});
  t.equal(c.recentStarts().length, 1, 'the start seen first counts when it is within the window');
  setUnit({ activeState: 'reloading' });
  setUnit({ activeState: 'active' });
  t.equal(c.recentStarts().length, 1, 'a reload is not a start');
  advance(1000);
  setUnit({ activeState: 'activating', subState: 'auto-restart', nRestarts: 1, result: 'signal', mainPid: 0 });
  setUnit({ activeState: 'active', nRestarts: 1, inactiveExitUs: (NOW + 1000) * 1000 });
  t.equal(c.recentStarts().length, 2);
  t.equal(last('FrequentContainerdRestart')?.status, 'False');
  // Two automatic restarts while the agent could not watch (D-Bus down): one new timestamp, NRestarts +2.
  advance(1000);
  setUnit({ activeState: 'active', nRestarts: 3, inactiveExitUs: (NOW + 2000) * 1000 });
  t.equal(c.recentStarts().length, 4);
  t.match(last('FrequentContainerdRestart'), {
    status: 'True',
    reason: 'FrequentContainerdRestart',
    message: /containerd\.service started 4 times within 20m \(threshold 3\)/,
  });
  advance(21 * MIN);
  c.evaluate();
  t.equal(last('FrequentContainerdRestart')?.status, 'False', 'old starts leave the window');
});
