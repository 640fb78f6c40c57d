import { spawnSync } from 'node:child_process';
import t from 'tap';
import type { NativeTimex } from '../../../src/system/native';
import {
  formatMicros,
  formatUptime,
  judgeTimeSync,
  readKernelClock,
  statusFlags,
  timeSyncCheck,
  timeSyncSection,
} from '../../../src/sources/probes/time-sync';
import { defaultsOf, fakeFs } from './fake-fs';
import { loadNative } from '../../../src/system/native';

const cfg = defaultsOf(timeSyncSection);
const DAY = 86_400;

// A clock chronyd keeps: synchronised, maxerror tens of ms, a trained frequency.
const chrony: NativeTimex = {
  state: 0, status: 0x2001, offsetNs: 0, frequencyPpm: -12.25, maxErrorUs: 41_250, estErrorUs: 1_120,
  constant: 3, tickUs: 10_000, taiS: 37,
};
// What a kernel no daemon ever wrote to reads: adjtimex on a VM that never ran one (this shape was
// captured on a Firecracker guest, Linux 6.18).
const untouched: NativeTimex = {
  state: 5, status: 0x40, offsetNs: 0, frequencyPpm: 0, maxErrorUs: 16_000_000, estErrorUs: 16_000_000,
  constant: 2, tickUs: 10_000, taiS: 0,
};

t.test('formats the figures people read', async (t) => {
  t.same([formatMicros(850), formatMicros(41_250), formatMicros(2_400_000), formatMicros(16_000_000)], ['850 µs', '41.3 ms', '2.4 s', '16 s']);
  t.same([formatUptime(40), formatUptime(725), formatUptime(3 * 3600 + 5 * 60), formatUptime(2 * DAY + 4 * 3600 + 7)], [
    '40 s', '12 min', '3 h 5 min', '2 d 4 h',
  ]);
  t.same(statusFlags(0x2041), ['PLL', 'UNSYNC', 'NANO']);
  t.same(statusFlags(0), []);
});

t.test('a synchronised clock is ok and says how good it is', async (t) => {
  t.same(judgeTimeSync(chrony, DAY, cfg), {
    subject: '',
    status: 'ok',
    reason: 'TimeSynchronized',
    message: 'clock synchronised: maxerror 41.3 ms, esterror 1.1 ms',
  });
  // systemd-timesyncd steers through the kernel PLL: what is left to slew shows, and a pending leap second.
  const timesyncd = { ...chrony, state: 1, status: 0x2011, offsetNs: -350_000, maxErrorUs: 950_000, estErrorUs: 0 };
  t.equal(
    judgeTimeSync(timesyncd, DAY, cfg).message,
    'clock synchronised: maxerror 950.0 ms, esterror 0 µs, offset 350 µs being slewed; a leap second will be inserted at midnight UTC',
  );
});

t.test('a growing maximum error warns, then is a problem, and says what to check', async (t) => {
  const warn = judgeTimeSync({ ...chrony, maxErrorUs: 2_400_000 }, DAY, cfg);
  t.same([warn.status, warn.reason], ['warning', 'TimeMaxErrorHigh']);
  t.match(warn.message, /^clock synchronised, but its maximum error is 2\.4 s \(warning at 2 s\): the kernel adds 0\.5 ms/);
  t.match(warn.message, /check that chronyd, ntpd or systemd-timesyncd is running and reaches its servers \(chronyc tracking/);
  const crit = judgeTimeSync({ ...chrony, maxErrorUs: 12_000_000 }, DAY, cfg);
  t.same([crit.status, crit.reason], ['problem', 'TimeMaxErrorCritical']);
  t.match(crit.message, /maximum error is 12 s \(problem at 10 s\)/);
  t.equal(judgeTimeSync({ ...chrony, maxErrorUs: 1_999_999 }, DAY, cfg).status, 'ok', 'just under the warning');
  t.equal(judgeTimeSync({ ...chrony, maxErrorUs: 2_000_000 }, DAY, cfg).status, 'warning', 'at the warning');
  const tight = { ...cfg, max_error_warning: 10, max_error_critical: 40 };
  t.same(judgeTimeSync(chrony, DAY, tight).reason, 'TimeMaxErrorCritical', 'the bounds are configurable (ms)');
});

t.test('not synchronised: a warning during the boot grace, a problem after it', async (t) => {
  const booting = judgeTimeSync(untouched, 40, cfg);
  t.same(booting, {
    subject: '',
    status: 'warning',
    reason: 'TimeNotSynchronizedYet',
    message:
      'clock not synchronised yet, 40 s after boot (adjtimex status UNSYNC); a problem from 10 min after boot — if it ' +
      'stays so, check that chronyd, ntpd or systemd-timesyncd is running and reaches its servers (chronyc tracking, ' +
      'ntpq -p, timedatectl timesync-status)',
  });
  t.equal(judgeTimeSync(untouched, 599.9, cfg).status, 'warning');
  t.equal(judgeTimeSync(untouched, 600, cfg).status, 'problem');
  t.equal(judgeTimeSync(untouched, 60, { ...cfg, boot_grace: 30_000 }).status, 'problem', 'the grace is configurable');
});

t.test('a node no NTP daemon ever disciplined is told to install one', async (t) => {
  const never = judgeTimeSync(untouched, 3 * DAY + 7200, cfg);
  t.same([never.status, never.reason], ['problem', 'TimeNeverSynchronized']);
  t.equal(
    never.message,
    'clock never synchronised: no NTP daemon has disciplined the kernel clock since boot 3 d 2 h ago, or since the ' +
      "clock was last set by hand (adjtimex status UNSYNC, maxerror and esterror at the kernel's initial 16 s, no " +
      'frequency correction) — install and enable chronyd, ntpd or systemd-timesyncd; a node\'s clock must be right ' +
      'for TLS certificate checks, leases and token expiry',
  );
});

t.test('a clock that lost synchronisation asks whether the daemon still runs', async (t) => {
  // chronyd stopped 9 hours ago: the kernel's maxerror reached 16 s and it set UNSYNC; the trained
  // frequency and the daemon's last esterror remain.
  const lost = judgeTimeSync({ ...chrony, state: 5, status: 0x2041, maxErrorUs: 16_000_000 }, DAY, cfg);
  t.same([lost.status, lost.reason], ['problem', 'TimeNotSynchronized']);
  t.equal(
    lost.message,
    'clock not synchronised (adjtimex status PLL UNSYNC NANO), maxerror 16 s, esterror 1.1 ms: is chronyd, ntpd or ' +
      'systemd-timesyncd running and reaching its servers? (chronyc tracking, ntpq -p, timedatectl timesync-status); ' +
      "a node's clock must be right for TLS certificate checks, leases and token expiry",
  );
  // A daemon that declares the clock unsynchronised itself, with small error figures: still a problem.
  t.equal(judgeTimeSync({ ...chrony, state: 5, status: 0x40 }, DAY, cfg).reason, 'TimeNotSynchronized');
});

t.test('the check reads /proc/uptime beside the clock state; a denied adjtimex says how to allow it', async (t) => {
  const uptime = (text: string) => fakeFs({ '/proc/uptime': text });
  const [f] = await timeSyncCheck(cfg, () => untouched, uptime('120.50 230.00\n')).run();
  t.equal(f?.reason, 'TimeNotSynchronizedYet');
  t.match(f?.message, '2 min after boot');
  await t.rejects(timeSyncCheck(cfg, () => chrony, uptime('soon\n')).run(), {
    message: '/proc/uptime: expected seconds since boot, got "soon"',
  });

  // The addon's error for a call a seccomp filter refused (the box test shows the real one under systemd).
  const denied = Object.assign(new Error('adjtimex (read-only, modes 0): Operation not permitted'), { errno: 1 });
  t.throws(
    () => readKernelClock(() => { throw denied; }),
    /^adjtimex \(read-only, modes 0\): Operation not permitted: a seccomp filter denies adjtimex .* ProtectClock=no and SystemCallFilter=adjtimex/,
  );
  const other = Object.assign(new Error('adjtimex (read-only, modes 0): Bad address'), { errno: 14 });
  t.throws(() => readKernelClock(() => { throw other; }), other, 'other errors pass unchanged');
});

t.test('on this host the check reads the live kernel and agrees with libc adjtimex', async (t) => {
  const [live, more] = await timeSyncCheck(cfg, () => readKernelClock(() => loadNative().adjtimex())).run();
  t.equal(more, undefined, 'one finding');
  t.match(live, { subject: '', status: /^(ok|warning|problem)$/, reason: /^Time[A-Za-z]+$/ });
  const py = spawnSync('python3', ['-c', 'import ctypes, ctypes.util; print(ctypes.CDLL(ctypes.util.find_library("c")).adjtimex(ctypes.byref(ctypes.create_string_buffer(256))))'], {
    encoding: 'utf8',
  });
  t.equal(py.status, 0, py.stderr);
  const unsynced = py.stdout.trim() === '5';
  t.equal(/^TimeN/.test(live?.reason ?? ''), unsynced, `libc adjtimex returned ${py.stdout.trim()}; the check said ${live?.reason}`);
});
