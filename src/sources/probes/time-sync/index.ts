// Whether the clock is synchronised, as the kernel knows it: adjtimex(2) read-only, through the native
// addon (no file in /proc or /sys exposes this state). chronyd, ntpd and systemd-timesyncd all write it:
// they clear STA_UNSYNC once synchronised and set maxerror, the bound on the clock's error, which the
// kernel then raises by 500 µs every second until the daemon sets it again; at 16 s the kernel marks
// the clock unsynchronised itself. A node whose clock is wrong fails TLS certificate checks (not yet
// valid, expired), and leases and token expiry go wrong with it.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { duration } from '../../../config/values';
import type { NativeTimex } from '../../../system/native';
import type { CheckStatus, Finding, Check } from '../../../types';
import { reasonFor } from '../levels';
import { hostFs, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const timeSyncSection = section({
  name: 'time_sync',
  keys: {
    ...probe('Check that an NTP daemon keeps the kernel clock synchronised (adjtimex), and its maximum error.', '1m', 'TimeNotSynchronized'),
    boot_grace: key(duration(), '10m', 'After boot, how long the clock may stay unsynchronised before that is a problem (a warning until then).'),
    max_error_warning: key(duration({ min: 1, max: 16_000 }), '2s', "The kernel's maximum error of a synchronised clock that is a warning."),
    max_error_critical: key(
      duration({ min: 1, max: 16_000 }),
      '10s',
      'Maximum error that is a problem (at 16s the kernel marks the clock unsynchronised).',
    ),
  },
  ordered: [['max_error_warning', 'max_error_critical']],
});
export type TimeSyncSettings = Values<typeof timeSyncSection.keys>;

// adjtimex's return values (include/uapi/linux/timex.h).
const TIME_ERROR = 5;
const LEAP: Record<number, string> = {
  1: 'a leap second will be inserted at midnight UTC',
  2: 'a leap second will be deleted at midnight UTC',
  3: 'a leap second is in progress',
  4: 'a leap second has just occurred',
};

// STA_* status bits, in bit order.
const STATUS_FLAGS = [
  'PLL', 'PPSFREQ', 'PPSTIME', 'FLL', 'INS', 'DEL', 'UNSYNC', 'FREQHOLD',
  'PPSSIGNAL', 'PPSJITTER', 'PPSWANDER', 'PPSERROR', 'CLOCKERR', 'NANO', 'MODE', 'CLK',
] as const;
const STA_UNSYNC = 0x40;

/** NTP_PHASE_LIMIT: maxerror and esterror from boot (or a clock set by hand) until a daemon writes them. */
export const INITIAL_ERROR_US = 16_000_000;

export function statusFlags(status: number): string[] {
  return STATUS_FLAGS.filter((_, bit) => (status & (1 << bit)) !== 0);
}

/** "850 µs", "23.5 ms", "2.4 s", "16 s" */
export function formatMicros(us: number): string {
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)} ms`;
  return `${Number((us / 1_000_000).toFixed(1))} s`;
}

/** "40 s", "12 min", "3 h 5 min", "2 d 4 h" */
export function formatUptime(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

const DAEMONS = 'chronyd, ntpd or systemd-timesyncd';
const LOOK = `check that ${DAEMONS} is running and reaches its servers (chronyc tracking, ntpq -p, timedatectl timesync-status)`;
const WHY = "a node's clock must be right for TLS certificate checks, leases and token expiry";

/**
 * Judges one adjtimex reading taken `uptimeS` seconds after boot. Not synchronised is a warning during
 * `boot_grace` (daemons need a few polls after boot) and a problem after it; a synchronised clock is
 * judged on maxerror.
 */
export function judgeTimeSync(tx: NativeTimex, uptimeS: number, cfg: TimeSyncSettings): Finding {
  const leap = LEAP[tx.state];
  const withLeap = (message: string) => (leap ? `${message}; ${leap}` : message);
  const errors = `maxerror ${formatMicros(tx.maxErrorUs)}, esterror ${formatMicros(tx.estErrorUs)}`;

  if (tx.state === TIME_ERROR) {
    const flags = `adjtimex status ${statusFlags(tx.status).join(' ') || 'none'}`;
    if (uptimeS * 1000 < cfg.boot_grace) {
      return {
        subject: '',
        status: 'warning',
        reason: 'TimeNotSynchronizedYet',
        message:
          `clock not synchronised yet, ${formatUptime(uptimeS)} after boot (${flags}); a problem from ` +
          `${formatUptime(cfg.boot_grace / 1000)} after boot — if it stays so, ${LOOK}`,
      };
    }
    // The kernel's values from boot (and after a clock set by hand), untouched: maxerror and esterror at
    // their initial 16 s, and no frequency correction, which a daemon that ever ran leaves behind.
    const untouched =
      (tx.status & STA_UNSYNC) !== 0 &&
      tx.maxErrorUs >= INITIAL_ERROR_US &&
      tx.estErrorUs >= INITIAL_ERROR_US &&
      tx.frequencyPpm === 0 &&
      tx.offsetNs === 0;
    if (untouched) {
      return {
        subject: '',
        status: 'problem',
        reason: 'TimeNeverSynchronized',
        message:
          `clock never synchronised: no NTP daemon has disciplined the kernel clock since boot ` +
          `${formatUptime(uptimeS)} ago, or since the clock was last set by hand (${flags}, maxerror and ` +
          `esterror at the kernel's initial 16 s, no frequency correction) — install and enable ${DAEMONS}; ${WHY}`,
      };
    }
    return {
      subject: '',
      status: 'problem',
      reason: 'TimeNotSynchronized',
      message: `clock not synchronised (${flags}), ${errors}: is ${DAEMONS} running and reaching its servers? ` +
        `(chronyc tracking, ntpq -p, timedatectl timesync-status); ${WHY}`,
    };
  }

  const status: CheckStatus =
    tx.maxErrorUs >= cfg.max_error_critical * 1000 ? 'problem' : tx.maxErrorUs >= cfg.max_error_warning * 1000 ? 'warning' : 'ok';
  if (status === 'ok') {
    const offset = tx.offsetNs !== 0 ? `, offset ${formatMicros(Math.abs(tx.offsetNs) / 1000)} being slewed` : '';
    return { subject: '', status, reason: 'TimeSynchronized', message: withLeap(`clock synchronised: ${errors}${offset}`) };
  }
  const limit = status === 'problem' ? cfg.max_error_critical : cfg.max_error_warning;
  return {
    subject: '',
    status,
    reason: reasonFor(status, 'TimeSynchronized', 'TimeMaxErrorHigh', 'TimeMaxErrorCritical'),
    message: withLeap(
      `clock synchronised, but its maximum error is ${formatMicros(tx.maxErrorUs)} (${status === 'problem' ? 'problem' : 'warning'} ` +
        `at ${formatMicros(limit * 1000)}): the kernel adds 0.5 ms to it every second the NTP daemon leaves the ` +
        `clock alone, and marks the clock unsynchronised at 16 s — ${LOOK}`,
    ),
  };
}

/** The running kernel's clock state; throws the addon's error with what to do when adjtimex is denied. */
export function readKernelClock(adjtimex: () => NativeTimex): NativeTimex {
  try {
    return adjtimex();
  } catch (err) {
    // EPERM (1): modes 0 needs no privilege, so only a seccomp filter refuses the call.
    if ((err as { errno?: unknown } | null)?.errno === 1) {
      throw new Error(
        `${(err as Error).message}: a seccomp filter denies adjtimex to this process — in a systemd unit, ` +
          'ProtectClock=yes and SystemCallFilter= without adjtimex do; allow it with ProtectClock=no and ' +
          'SystemCallFilter=adjtimex (reading needs no CAP_SYS_TIME, so the clock stays protected without it)',
        { cause: err },
      );
    }
    throw err;
  }
}

export function timeSyncCheck(
  cfg: TimeSyncSettings,
  read: () => NativeTimex,
  fs: HostFs = hostFs,
): Check {
  return {
    component: 'host',
    name: 'time_sync',
    async run(): Promise<Finding[]> {
      const tx = read();
      const uptime = fs.read('/proc/uptime');
      const seconds = Number(uptime.split(' ')[0]);
      if (!Number.isFinite(seconds)) throw new Error(`/proc/uptime: expected seconds since boot, got "${uptime.trim()}"`);
      return [judgeTimeSync(tx, seconds, cfg)];
    },
  };
}

export const timeSyncProbe = defineProbe({
  section: timeSyncSection,
  healthy: { reason: 'TimeSyncOK', message: 'the clock is synchronised, or the node booted too recently to judge' },
  make: (cfg, native) => timeSyncCheck(cfg, () => readKernelClock(() => native().adjtimex())),
});
