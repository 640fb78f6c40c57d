import t from 'tap';
import { judgeZone, thermalCheck, thermalSection } from '../../../src/sources/probes/thermal';
import { defaultsOf, fakeFs } from './fake-fs';

const cfg = defaultsOf(thermalSection);

t.test('judged by the distance to the critical trip point', async (t) => {
  const zone = (temp: number) => judgeZone({ name: 'thermal_zone0', type: 'x86_pkg_temp', temp, critical: 100000 }, cfg);
  t.same([zone(60000).status, zone(60000).reason], ['ok', 'ThermalOK']);
  t.equal(zone(60000).message, 'thermal_zone0 (x86_pkg_temp) at 60.0 °C, critical trip point 100.0 °C');
  t.same([zone(85000).status, zone(85000).reason], ['warning', 'ThermalHot']);
  t.same([zone(95000).status, zone(95000).reason], ['problem', 'ThermalCritical']);
  t.match(zone(96500).message, /3\.5 °C from the kernel's emergency power-off — check cooling/);
  const none = judgeZone({ name: 'thermal_zone1', type: 'acpitz', temp: 27800 }, cfg);
  t.same([none.status, none.message], ['ok', 'thermal_zone1 (acpitz) at 27.8 °C; the zone has no critical trip point']);
});

// Hand-made sysfs tree in the shape of an x86 server's: a package sensor with passive and critical trip
// points, an ACPI zone without trip points, and a sensor that refuses reads while its device sleeps.
const zone = (n: number, files: Record<string, string | { errno: string }>) =>
  Object.fromEntries(Object.entries(files).map(([name, v]) => [`/sys/class/thermal/thermal_zone${n}/${name}`, v]));
const sysfs = {
  ...zone(0, {
    type: 'x86_pkg_temp\n',
    temp: '97000\n',
    trip_point_0_type: 'passive\n',
    trip_point_0_temp: '90000\n',
    trip_point_1_type: 'critical\n',
    trip_point_1_temp: '100000\n',
    trip_point_1_hyst: { errno: 'EIO' },
  }),
  ...zone(10, { type: 'acpitz\n', temp: '27800\n' }),
  ...zone(2, { type: 'iwlwifi_1\n', temp: { errno: 'ENODATA' } }),
  '/sys/class/thermal/cooling_device0/type': 'Processor\n',
};

t.test('the check: every zone in order, the critical trip found by its type, unreadable sensors unknown', async (t) => {
  const findings = await thermalCheck(cfg, fakeFs(sysfs)).run();
  t.same(findings.map((f) => [f.subject, f.status, f.reason]), [
    ['thermal_zone0', 'problem', 'ThermalCritical'],
    ['thermal_zone2', 'unknown', 'ThermalUnreadable'],
    ['thermal_zone10', 'ok', 'ThermalOK'],
  ]);
  t.match(findings[1]?.message, /^cannot read the temperature of thermal_zone2 \(iwlwifi_1\): ENODATA/);
});

t.test('no thermal zones (a VM, like this host): ok', async (t) => {
  const none = await thermalCheck(cfg, fakeFs({ '/sys/class/thermal/cooling_device0/type': 'x\n' })).run();
  t.same(none.map((f) => [f.status, f.reason]), [['ok', 'NoThermalZones']]);
  t.same((await thermalCheck(cfg, fakeFs({})).run()).map((f) => f.reason), ['NoThermalZones'], 'nor /sys/class/thermal');
  const live = await thermalCheck(cfg).run();
  t.ok(live.length >= 1);
  for (const f of live) t.match(f, { status: /^(ok|warning|problem|unknown)$/, reason: /^(NoThermalZones|Thermal\w+)$/ });
});
