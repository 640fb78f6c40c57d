// Talks to the service manager (sd_notify(3)) through the native addon. Outside systemd (no
// NOTIFY_SOCKET) every call is a no-op, so the daemon runs the same in a terminal.
import type { Native } from './native';

export class ServiceManager {
  private readonly enabled: boolean;
  private watchdogTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly native: () => Native,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.enabled = Boolean(env.NOTIFY_SOCKET);
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}`);
  }

  status(status: string): void {
    this.send(`STATUS=${status}`);
  }

  reloading(): void {
    // systemd ≥ 253 requires MONOTONIC_USEC with RELOADING=1 to match the reload to its request.
    const usec = process.hrtime.bigint() / 1000n;
    this.send(`RELOADING=1\nMONOTONIC_USEC=${usec}`);
  }

  stopping(): void {
    this.send('STOPPING=1');
  }

  watchdog(): void {
    this.send('WATCHDOG=1');
  }

  /** How often to pet the watchdog: half of WatchdogSec, or 0 when the watchdog is off. */
  watchdogIntervalMs(): number {
    if (!this.enabled) return 0;
    return Math.floor(this.native().watchdogUsec() / 2000);
  }

  /**
   * Pets the watchdog from a timer on the main loop, when the unit sets WatchdogSec=: a blocked or
   * stopped loop stops the pets and systemd restarts the service.
   */
  startWatchdog(): void {
    const every = this.watchdogIntervalMs();
    if (every <= 0) return;
    this.watchdogTimer = setInterval(() => this.watchdog(), every);
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
  }

  private send(state: string): void {
    if (this.enabled) this.native().notify(state);
  }
}
