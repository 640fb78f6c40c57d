// The ladder's settings: [ladder] through the real loader, the value types of maintenance windows,
// blocking-pod selectors and steps, window arithmetic in local time, and how [repair] mode and
// [remediate "Type"] sections shape what the ladder does.
import { rmSync } from 'node:fs';
import t from 'tap';
import { loadAgentConfig } from '../../src/sections';
import { labelSelector, ladderFamilies, ladderSteps, maintenanceWindows } from '../../src/config/sections/ladder';
import { ValueError } from '../../src/config/values';
import { inWindow, nextWindowStart } from '../../src/repair/ladder/windows';
import { ladderSettings, LadderConfigError, type RemediateSection } from '../../src/repair/ladder/settings';
import { errorOf } from '../helpers/errors';
import { configDir } from '../helpers/tmp';

function valueError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValueError) return err.message;
    throw err;
  }
  throw new Error('expected a ValueError');
}

/** A [remediate] section with the family's defaults and `overrides` as written in a file. */
function remediate(overrides: Record<string, string> = {}): RemediateSection {
  const specs = ladderFamilies.remediate;
  return {
    enabled: specs.enabled.type.parse(overrides.enabled ?? (specs.enabled.default as string)),
    after: specs.after.type.parse(overrides.after ?? (specs.after.default as string)),
    steps: specs.steps.type.parse(overrides.steps ?? (specs.steps.default as string)),
  };
}

t.test('[ladder] loads from ini with file:line errors for bad values', async (t) => {
  const dir = configDir({
    'a.ini': '[ladder]\nenabled = true\nwindows = Mon-Fri 02:00-05:00, Sat 22:00-06:00\nblocking_pods = app in (etcd, kafka), !critical\ndrain_timeout = 5m\n',
  });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { config } = loadAgentConfig(dir, { required: true });
  t.equal(config.ladder.enabled, true);
  t.equal(config.ladder.blocking_pods, 'app in (etcd, kafka), !critical');
  t.equal(config.ladder.drain_timeout, 300_000);
  t.same(config.ladder.windows.map((w) => [w.days, w.startMinute, w.endMinute]), [
    [[1, 2, 3, 4, 5], 120, 300],
    [[6], 22 * 60, 360],
  ]);

  const bad = configDir({ 'b.ini': '[ladder]\nwindows = Mon-Fri 2-5\nblocking_pods = app in (etcd\nafter_boot_timeout = 10s\n' });
  t.teardown(() => rmSync(bad, { recursive: true, force: true }));
  const lines = errorOf(() => loadAgentConfig(bad, { required: true })).message.split('\n');
  t.match(lines[0], /b\.ini:2: \[ladder\] windows: "Mon-Fri 2-5" is not a window \(use \[DAY\[-DAY\]\] HH:MM-HH:MM/);
  t.match(lines[1], /b\.ini:3: \[ladder\] blocking_pods: "app in \(etcd": a "\(" without its "\)"/);
  t.match(lines[2], /b\.ini:4: \[ladder\] after_boot_timeout: 10s is below the minimum 1m/);
});

t.test('the defaults: off, always, nothing blocks', async (t) => {
  const { config } = loadAgentConfig('/nonexistent/node-health');
  t.equal(config.ladder.enabled, false);
  t.equal(config.ladder.dry_run, false);
  t.equal(config.ladder.blocking_pods, '');
  const s = ladderSettings(config, new Map());
  t.equal(s.enabled, false);
  t.equal(s.conditions.size, 0);
  t.ok(inWindow(s.windows, new Date(2026, 10, 25, 3, 17)), 'always is always');
});

t.test('maintenance windows: syntax', async (t) => {
  t.same(maintenanceWindows.parse('12:00-13:30')[0]?.days, [0, 1, 2, 3, 4, 5, 6], 'no days: every day');
  t.same(maintenanceWindows.parse('Fri-Mon 01:00-02:00')[0]?.days, [5, 6, 0, 1], 'a day range wraps the week');
  t.same(maintenanceWindows.parse('sun 00:00-24:00')[0], { days: [0], startMinute: 0, endMinute: 1440, text: 'sun 00:00-24:00' });
  t.match(valueError(() => maintenanceWindows.parse('Mon-Fry 02:00-05:00')), /"Fry" is not a day/);
  t.match(valueError(() => maintenanceWindows.parse('Mon 25:00-26:00')), /"25:00" is not a time of day/);
  t.match(valueError(() => maintenanceWindows.parse('Mon 02:60-03:00')), /"02:60" is not a time of day/);
  t.match(valueError(() => maintenanceWindows.parse('Mon 02:00-02:00')), /is empty/);
  t.match(valueError(() => maintenanceWindows.parse('Mon 02:00-03:00,')), /names no window/);
  t.match(valueError(() => maintenanceWindows.parse('')), /names no window/);
});

t.test('maintenance windows: inside, outside, past midnight, next start', async (t) => {
  // 2026-11-23 is a Monday; dates are built in local time, as the windows are.
  const at = (day: number, h: number, m = 0) => new Date(2026, 10, 23 + day, h, m);
  const weekdays = maintenanceWindows.parse('Mon-Fri 02:00-05:00');
  t.ok(inWindow(weekdays, at(0, 2)), 'Monday 02:00 is in');
  t.ok(inWindow(weekdays, at(0, 4, 59)), 'Monday 04:59 is in');
  t.notOk(inWindow(weekdays, at(0, 5)), 'the end is not in');
  t.notOk(inWindow(weekdays, at(5, 3)), 'Saturday is not in');
  t.same(nextWindowStart(weekdays, at(0, 5)), at(1, 2), 'after Monday’s window: Tuesday 02:00');
  t.same(nextWindowStart(weekdays, at(4, 6)), at(7, 2), 'after Friday’s window: Monday 02:00');
  t.same(nextWindowStart(weekdays, at(0, 1)), at(0, 2), 'before it: today');

  const night = maintenanceWindows.parse('Sat 22:00-06:00');
  t.ok(inWindow(night, at(5, 23)), 'Saturday 23:00 is in');
  t.ok(inWindow(night, at(6, 5, 59)), 'Sunday 05:59 belongs to Saturday’s window');
  t.notOk(inWindow(night, at(6, 23)), 'Sunday 23:00 is not in');
  t.notOk(inWindow(night, at(0, 1)), 'Monday 01:00 is not in (Sunday has no window)');
  t.same(nextWindowStart(night, at(6, 7)), at(12, 22), 'next Saturday 22:00');
});

t.test('blocking pod selectors follow the Kubernetes syntax', async (t) => {
  for (const ok of ['app=db', 'app==db', 'app!=db', 'app', '!app', 'app in (a, b)', 'app notin (a),tier=web', 'example.com/role=x', 'app=']) {
    t.equal(labelSelector.parse(` ${ok} `), ok, ok);
  }
  t.equal(labelSelector.parse(''), '');
  t.match(valueError(() => labelSelector.parse('app===db')), /"app===db" has "=db", which is not a label value/);
  t.match(valueError(() => labelSelector.parse('!app=db')), /negates a key and compares it/);
  t.match(valueError(() => labelSelector.parse('app in ()')), /lists no values/);
  t.match(valueError(() => labelSelector.parse('app in (a b)')), /"a b", which is not a label value/);
  t.match(valueError(() => labelSelector.parse('a)')), /a "\)" without its "\("/);
  t.match(valueError(() => labelSelector.parse('app=db,')), /"" is not a requirement/);
});

t.test('steps: cordon first, each once, in order', async (t) => {
  t.same(ladderSteps.parse('cordon, drain, reboot'), ['cordon', 'drain', 'reboot']);
  t.same(ladderSteps.parse('cordon,reboot'), ['cordon', 'reboot']);
  t.match(valueError(() => ladderSteps.parse('drain, reboot')), /does not start with cordon/);
  t.match(valueError(() => ladderSteps.parse('cordon, reboot, drain')), /in the order cordon, drain, reboot/);
  t.match(valueError(() => ladderSteps.parse('cordon, cordon')), /once each/);
  t.match(valueError(() => ladderSteps.parse('cordon, restart')), /"restart" is not a step/);
  t.match(valueError(() => ladderSteps.parse('')), /does not start with cordon/);
});

t.test('settings: [repair] mode, the reboot switch and the [remediate] sections', async (t) => {
  const base = loadAgentConfig('/nonexistent/node-health').config;
  const on = { ...base, ladder: { ...base.ladder, enabled: true } };
  const sections = new Map([
    ['KernelDeadlock', remediate()],
    ['ReadonlyFilesystem', remediate({ steps: 'cordon, drain', after: '1h' })],
    ['DiskFull', remediate({ enabled: 'false' })],
  ]);
  const s = ladderSettings(on, sections);
  t.equal(s.enabled, true);
  t.equal(s.dryRun, false);
  t.same([...s.conditions.keys()], ['KernelDeadlock', 'ReadonlyFilesystem'], 'a disabled section starts nothing');
  t.same(s.conditions.get('KernelDeadlock'), { afterMs: 600_000, steps: ['cordon', 'drain', 'reboot'] });
  t.same(s.conditions.get('ReadonlyFilesystem'), { afterMs: 3_600_000, steps: ['cordon', 'drain'] });

  const noReboot = ladderSettings({ ...on, ladder: { ...on.ladder, reboot: false } }, sections);
  t.same(noReboot.conditions.get('KernelDeadlock')?.steps, ['cordon', 'drain'], '[ladder] reboot = false removes the step everywhere');
  t.equal(ladderSettings({ ...on, repair: { ...on.repair, mode: 'dry-run' } }, sections).dryRun, true, '[repair] mode dry-run makes it dry');
  t.equal(ladderSettings({ ...on, repair: { ...on.repair, mode: 'off' } }, sections).enabled, false, '[repair] mode off turns it off');

  t.throws(() => ladderSettings(on, new Map([['Kernel Deadlock', remediate()]])), LadderConfigError);
  t.throws(() => ladderSettings(on, new Map([['Kernel Deadlock', remediate()]])), /\[remediate "Kernel Deadlock"\]: "Kernel Deadlock" is not a condition type/);
  t.match(valueError(() => remediate({ after: '30s' })), /30s is below the minimum 1m/, 'after is at least a minute: never on one report');
});

t.test('[remediate "Type"] sections load and become the ladder settings', async (t) => {
  const dir = configDir({ 'a.ini': '[ladder]\nenabled = true\n[remediate "KernelDeadlock"]\nafter = 5m\n[remediate "ReadonlyFilesystem"]\nsteps = cordon, drain\n' });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { config } = loadAgentConfig(dir, { required: true });
  t.same([...ladderSettings(config, config.named.remediate).conditions], [
    ['KernelDeadlock', { afterMs: 300_000, steps: ['cordon', 'drain', 'reboot'] }],
    ['ReadonlyFilesystem', { afterMs: 600_000, steps: ['cordon', 'drain'] }],
  ]);
  const bad = configDir({ 'b.ini': '[remediate "KernelDeadlock"]\nafter = 10s\nsteps = reboot\n' });
  t.teardown(() => rmSync(bad, { recursive: true, force: true }));
  const lines = errorOf(() => loadAgentConfig(bad, { required: true })).message.split('\n');
  t.match(lines[0], /b\.ini:2: \[remediate "KernelDeadlock"\] after: 10s is below the minimum 1m/);
  t.match(lines[1], /b\.ini:3: \[remediate "KernelDeadlock"\] steps: "reboot" does not start with cordon/);
});
