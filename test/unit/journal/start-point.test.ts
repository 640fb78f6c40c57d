// NPD's start point for a first read: the later of boot time + delay and now − lookback.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { bootTimeMs } from '../../../src/system/boot';
import { startPoint } from '../../../src/sources/journal/start-point';

t.test('the later of boot + delay and now − lookback, in µs', async (t) => {
  const now = 1_760_000_000_000;
  // Booted an hour ago: the lookback wins.
  t.equal(startPoint({ lookbackMs: 300_000, delayMs: 0, now, bootTimeMs: now - 3_600_000 }), (now - 300_000) * 1000);
  // Booted a minute ago: nothing from before this boot.
  t.equal(startPoint({ lookbackMs: 300_000, delayMs: 0, now, bootTimeMs: now - 60_000 }), (now - 60_000) * 1000);
  // With a delay after boot.
  t.equal(startPoint({ lookbackMs: 300_000, delayMs: 30_000, now, bootTimeMs: now - 60_000 }), (now - 30_000) * 1000);
  t.throws(() => startPoint({ lookbackMs: -1, delayMs: 0, now, bootTimeMs: now }), /lookbackMs must be a finite number ≥ 0/);
  t.throws(() => startPoint({ lookbackMs: 0, delayMs: NaN, now, bootTimeMs: now }), /delayMs/);
});

t.test('boot time from /proc/stat btime', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nha-stat-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stat = join(dir, 'stat');
  writeFileSync(stat, 'cpu  1 2 3\nintr 5\nctxt 9\nbtime 1760000000\nprocesses 12\n');
  t.equal(bootTimeMs(stat), 1_760_000_000_000);
  writeFileSync(stat, 'cpu  1 2 3\n');
  t.throws(() => bootTimeMs(stat), new RegExp(`${stat} has no "btime" line`));

  // This host: boot time = now − uptime, to the second.
  const uptimeS = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const expected = Date.now() - uptimeS * 1000;
  t.ok(Math.abs(bootTimeMs() - expected) < 2000, `btime ${bootTimeMs()} ≈ now − uptime ${Math.round(expected)}`);
});
