import t from 'tap';
import { judgePressure, parsePressure, pressureCheck, type Psi, pressureSection } from '../../../src/sources/probes/pressure';
import { defaultsOf, fakeFs, fixture } from './fake-fs';

const cfg = defaultsOf(pressureSection);

t.test('parses captured PSI files, system-wide and of a cgroup', async (t) => {
  const memory = parsePressure(fixture('pressure-memory-host.txt'), 'memory');
  t.same(memory.full, { avg10: 0, avg60: 0, avg300: 0, total: 0 });
  const cpu = parsePressure(fixture('pressure-cpu-host.txt'), 'cpu');
  t.ok(cpu.some.avg60 > 0 && cpu.some.total > 0, 'this host was busy when captured');
  t.ok(parsePressure(fixture('cgroup-unified-memory.pressure-host.txt'), 'cgroup').full);
  t.same(parsePressure('some avg10=1.50 avg60=2.00 avg300=0.10 total=99\n', 'old cpu'), {
    some: { avg10: 1.5, avg60: 2, avg300: 0.1, total: 99 },
  }, 'cpu before 5.13 has no full line');
  t.throws(() => parsePressure('garbage\n', '/proc/pressure/io'), /\/proc\/pressure\/io: no "some avg10=… avg60=…" line/);
});

const psi = (someAvg60: number, fullAvg10: number, fullAvg60: number): Psi => ({
  some: { avg10: someAvg60, avg60: someAvg60, avg300: 0, total: 1 },
  full: { avg10: fullAvg10, avg60: fullAvg60, avg300: 0, total: 1 },
});

t.test('memory and I/O: avg60 over warning warns; over critical with avg10 as high is a problem', async (t) => {
  const status = (resource: 'memory' | 'io', p: Psi) => {
    const f = judgePressure(resource, p, cfg);
    return [f.status, f.reason];
  };
  t.same(status('memory', psi(30, 1, 4)), ['ok', 'PressureOK'], '"some" alone does not count for memory');
  t.same(status('memory', psi(30, 6, 5)), ['warning', 'MemoryPressureElevated']);
  t.same(status('memory', psi(60, 25, 22)), ['problem', 'MemoryPressureHigh']);
  t.same(status('memory', psi(60, 8, 22)), ['warning', 'MemoryPressureElevated'], 'subsiding: avg10 fell below critical');
  t.same(status('io', psi(0, 55, 50)), ['problem', 'IOPressureHigh']);
  t.same(status('io', psi(0, 30, 25)), ['warning', 'IOPressureElevated']);
});

t.test('CPU is judged on "some" and is at most a warning', async (t) => {
  const f = judgePressure('cpu', psi(99, 99, 99), cfg);
  t.same([f.status, f.reason], ['warning', 'CPUPressureElevated']);
  t.match(f.message, /^some task stalled for a CPU 99\.0% of the last minute \(some avg10 99\.0%, avg60 99\.0%; warning at 80%\): /);
  t.equal(judgePressure('cpu', psi(50, 0, 0), cfg).status, 'ok');
});

t.test('messages give the figures, the limits and what to do', async (t) => {
  const f = judgePressure('memory', psi(60, 25, 22), cfg, 'kubepods');
  t.equal(f.subject, 'kubepods/memory');
  t.match(f.message, /^all non-idle tasks in the kubepods cgroup stalled on memory 22\.0% of the last minute \(full avg10 25\.0%, avg60 22\.0%; warning at 5%, problem at 20% while avg10 stays as high\): /);
  t.match(f.message, 'free memory');
});

const hostPsi = {
  '/proc/pressure/memory': fixture('pressure-memory-host.txt'),
  '/proc/pressure/io': fixture('pressure-io-host.txt'),
  '/proc/pressure/cpu': fixture('pressure-cpu-host.txt'),
};

t.test('the check: node PSI, and kubepods when its cgroup exists', async (t) => {
  const node = await pressureCheck(cfg, fakeFs(hostPsi)).run();
  t.same(node.map((f) => f.subject), ['memory', 'io', 'cpu']);
  // Hand-made: a thrashing kubepods slice on a hybrid host, shaped like the captured cgroup file.
  const thrash = 'some avg10=70.00 avg60=65.00 avg300=20.00 total=9\nfull avg10=40.00 avg60=35.00 avg300=9.00 total=8\n';
  const withPods = await pressureCheck(
    cfg,
    fakeFs({
      ...hostPsi,
      '/sys/fs/cgroup/unified/kubepods.slice/memory.pressure': thrash,
      '/sys/fs/cgroup/unified/kubepods.slice/io.pressure': fixture('pressure-io-host.txt'),
    }),
  ).run();
  t.same(withPods.slice(3).map((f) => [f.subject, f.status]), [['kubepods/memory', 'problem'], ['kubepods/io', 'ok']]);
});

t.test('without /proc/pressure: ok, "PSI not available"', async (t) => {
  const findings = await pressureCheck(cfg, fakeFs({})).run();
  t.same(findings.map((f) => [f.status, f.reason]), [['ok', 'PSIUnavailable']]);
  t.match(findings[0]?.message, /^PSI not available/);
  await t.rejects(pressureCheck(cfg, fakeFs({ '/proc/pressure/memory': { errno: 'EACCES' } })).run(), /EACCES/, 'other errors are not hidden');
});

t.test('the live host: PSI findings are well formed', async (t) => {
  const findings = await pressureCheck(cfg).run();
  t.ok(findings.length >= 1);
  for (const f of findings) {
    t.match(f, { status: /^(ok|warning|problem)$/, reason: /^(PressureOK|PSIUnavailable|\w+Pressure(Elevated|High))$/ });
    t.type(f.subject, 'string');
  }
});
