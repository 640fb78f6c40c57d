// Verdicts from unit state and probes, back-off and budget, and the repair decision (pure logic).
import t from 'tap';
import { budget, decide, judge, type Health, type JudgeInput, type RepairPolicy } from '../../../src/repair/policy';
import type { UnitState } from '../../../src/system/systemd/unit-watcher';

const unit = (over: Partial<UnitState> = {}): UnitState => ({
  name: 'containerd.service',
  loadState: 'loaded',
  activeState: 'active',
  subState: 'running',
  result: 'success',
  mainPid: 100,
  nRestarts: 0,
  inactiveExitUs: 1_000_000,
  inactiveExitMonoUs: 1_000_000,
  unitFileState: 'enabled',
  jobId: 0,
  ...over,
});
const okProbe = { ok: true, reason: 'ContainerRuntimeIsHealthy', message: 'fine', at: 0 };
const badProbe = { ok: false, reason: 'ContainerdUnresponsive', message: 'no answer', at: 0 };
const input = (over: Partial<JudgeInput>): JudgeInput => ({
  title: 'Containerd',
  unitName: 'containerd.service',
  section: 'containerd',
  unit: unit(),
  probe: okProbe,
  cooldownMs: 60_000,
  // Two minutes after the unit started.
  monoNowUs: 1_000_000 + 120_000_000,
  ...over,
});

t.test('judge', async (t) => {
  t.match(judge(input({})), { state: 'healthy', reason: 'ContainerRuntimeIsHealthy' });
  t.match(judge(input({ probe: badProbe })), { state: 'failing', reason: 'ContainerdUnresponsive', remedy: 'restart' });
  t.match(judge(input({ probe: undefined })), { state: 'unknown' });

  t.test('a failed unit that nothing restarts is failing at once, to be started', async (t) => {
    const h = judge(input({ unit: unit({ activeState: 'failed', subState: 'failed', result: 'signal', mainPid: 0 }) }));
    t.match(h, { state: 'failing', reason: 'ContainerdFailed', remedy: 'start' });
    t.match(h.message, /killed by a signal \(Result=signal\), and systemd will not restart it/);
  });

  t.test('a unit stopped on purpose is failing but never repaired', async (t) => {
    const h = judge(input({ unit: unit({ activeState: 'inactive', subState: 'dead', mainPid: 0 }) }));
    t.match(h, { state: 'failing', reason: 'ContainerdStopped' });
    t.equal(h.remedy, undefined);
    t.match(h.message, /systemctl start containerd\.service/);
  });

  t.test('starting, stopping, restarting by itself, or a job queued: not judged', async (t) => {
    for (const over of [
      { activeState: 'activating', subState: 'auto-restart' },
      { activeState: 'activating', subState: 'start' },
      { activeState: 'deactivating', subState: 'stop-sigterm', jobId: 7 },
      { activeState: 'failed', subState: 'failed', jobId: 7 },
      { activeState: 'inactive', subState: 'dead', jobId: 7 },
    ]) {
      t.equal(judge(input({ unit: unit(over), probe: badProbe })).state, 'settling', JSON.stringify(over));
    }
  });

  t.test('cooldown from InactiveExitTimestamp: failures of a unit that just started are not judged', async (t) => {
    const justStarted = input({ probe: badProbe, monoNowUs: 1_000_000 + 30_000_000 });
    t.match(judge(justStarted), { state: 'settling', reason: 'ContainerdStarting' });
    t.equal(judge({ ...justStarted, probe: okProbe }).state, 'healthy', 'success is taken at once');
    t.equal(judge({ ...justStarted, cooldownMs: 0 }).state, 'failing', 'no cooldown');
  });

  t.test('no unit to restart: failing without a remedy; not installed at all: absent', async (t) => {
    const noUnit = judge(input({ unit: undefined, probe: badProbe }));
    t.match(noUnit, { state: 'failing', reason: 'ContainerdUnresponsive' });
    t.equal(noUnit.remedy, undefined);
    const absent = judge(input({ unit: unit({ loadState: 'not-found', activeState: 'inactive' }), probe: { ...badProbe, absent: true } }));
    t.match(absent, { state: 'absent', reason: 'ContainerdNotFound' });
    t.match(absent.message, /set \[containerd\] enabled = false/);
  });
});

const policy: RepairPolicy = {
  failureDurationMs: 60_000,
  cooldownMs: 60_000,
  backoffMs: 120_000,
  backoffMaxMs: 300_000,
  maxRepairs: 3,
  windowMs: 3_600_000,
};
const T = 10_000_000_000;

t.test('budget: back-off doubles per repair in the window, capped; the budget runs out and comes back', async (t) => {
  t.same(budget(policy, [], T), { allowedAt: -Infinity, exhausted: false, used: 0 });
  t.same(budget(policy, [T - 1000], T), { allowedAt: T - 1000 + 120_000, exhausted: false, used: 1 });
  t.same(budget(policy, [T - 9000, T - 1000], T), { allowedAt: T - 1000 + 240_000, exhausted: false, used: 2 });
  t.equal(budget({ ...policy, maxRepairs: 10 }, [T - 4000, T - 3000, T - 2000, T - 1000], T).allowedAt, T - 1000 + 300_000, 'capped');
  const full = budget(policy, [T - 3_000_000, T - 2_000_000, T - 1_000_000], T);
  t.same(full, { allowedAt: T - 3_000_000 + 3_600_000, exhausted: true, used: 3 }, 'free again when the oldest leaves the window');
  t.equal(budget(policy, [T - 3_700_000, T - 2_000_000, T - 1_000_000], T).exhausted, false, 'repairs outside the window do not count');
});

t.test('decide', async (t) => {
  const failing: Health = { state: 'failing', reason: 'ContainerdUnresponsive', message: 'x', remedy: 'restart' };
  const free = budget(policy, [], T);
  t.match(decide({ health: failing, failingSince: T - 30_000, now: T, policy, budget: free }), { act: false, why: /failing for 30s of 60s/, until: T + 30_000 });
  t.same(decide({ health: failing, failingSince: T - 60_000, now: T, policy, budget: free }), { act: true, action: 'restart' });
  t.same(
    decide({ health: { ...failing, remedy: 'start' }, failingSince: T, now: T, policy, budget: free }),
    { act: true, action: 'start' },
    'a dead unit is started without waiting',
  );
  t.match(decide({ health: failing, failingSince: T - 60_000, now: T, policy, budget: budget(policy, [T - 1000], T) }), {
    act: false,
    why: /backing off until/,
    until: T - 1000 + 120_000,
  });
  const spent = budget(policy, [T - 3000, T - 2000, T - 1000], T);
  t.match(decide({ health: failing, failingSince: T, now: T, policy, budget: spent }), { act: false, exhausted: { used: 3 } }, 'exhaustion is said even before the failure duration');
  t.match(decide({ health: { ...failing, remedy: undefined }, failingSince: T - 600_000, now: T, policy, budget: free }), { act: false, why: 'nothing to repair' });
});
