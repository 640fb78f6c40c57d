import t from 'tap';
import { judgeMemory, memoryCheck, memorySample, parseMeminfo, memorySection } from '../../../src/sources/probes/memory';
import { defaultsOf, fakeFs, fixture } from './fake-fs';

const cfg = defaultsOf(memorySection);
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

t.test('parses a captured /proc/meminfo into bytes', async (t) => {
  const meminfo = parseMeminfo(fixture('meminfo-host.txt'));
  t.equal(meminfo.get('MemTotal'), 24683656 * 1024);
  t.equal(meminfo.get('MemAvailable'), 23859360 * 1024);
  t.equal(meminfo.get('HugePages_Total'), 0, 'unitless fields stay counts');
  t.same(memorySample(meminfo), { total: 24683656 * 1024, available: 23859360 * 1024 });
});

t.test('a kernel without MemAvailable is an error that says why', async (t) => {
  t.throws(() => memorySample(parseMeminfo('MemTotal: 1000 kB\nMemFree: 10 kB\n')), /MemAvailable needs Linux 3\.14/);
});

t.test('judged on the share of MemTotal and on an absolute floor', async (t) => {
  const at = (available: number, total = 16 * GiB) => judgeMemory({ total, available }, cfg);
  t.same([at(4 * GiB).status, at(4 * GiB).reason], ['ok', 'MemoryAvailableOK']);
  t.equal(at(4 * GiB).message, '4.0 GiB of 16.0 GiB memory available (25.0%)');
  const low = at(1.2 * GiB);
  t.same([low.status, low.reason], ['warning', 'MemoryAvailableLow']);
  t.match(low.message, /^only 1\.2 GiB of 16\.0 GiB memory available \(7\.5%\); warning below 10%, problem below 5% or 256\.0 MiB\./);
  t.match(low.message, 'the OOM killer follows — find the largest consumers');
  t.same([at(0.5 * GiB).status, at(0.5 * GiB).reason], ['problem', 'MemoryAvailableCritical']);
  // A 2 GiB node: 12.5% left is above every percentage, but 250 MiB is under the floor.
  t.equal(at(250 * MiB, 2 * GiB).status, 'problem');
});

t.test('the check reads /proc/meminfo; the live host gives a well-formed finding', async (t) => {
  const hand = 'MemTotal:        2000000 kB\nMemAvailable:     150000 kB\n';
  const [f] = await memoryCheck(cfg, fakeFs({ '/proc/meminfo': hand })).run();
  t.equal(f?.status, 'problem');
  const live = await memoryCheck(cfg).run();
  t.equal(live.length, 1);
  t.match(live[0], { subject: '', status: /^(ok|warning|problem)$/, reason: /^MemoryAvailable/ });
  t.match(live[0]?.message, / GiB memory available \(\d+\.\d%\)/);
});
