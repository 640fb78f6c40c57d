// Talks to the service manager (sd_notify(3)) through the native addon. Outside systemd (no
// NOTIFY_SOCKET) every call is a no-op, so the daemon runs the same in a terminal.
import type { Native } from './native';

export class ServiceManager {
  private readonly enabled: boolean;

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

  private send(state: string): void {
    if (this.enabled) this.native().notify(state);
  }
}
