// Writes to the state directory that fail (a full disk, a filesystem remounted read-only, an I/O error)
// are a degraded state, never an exception: the writer keeps its latest data in memory and retries, and
// this table shows which component is degraded and why — in `status`, the node_health_degraded metric
// and the log — until a write succeeds again.
import { messageOf } from '../errors';
import type { Degradation, Logger, WriteHealth } from '../types';
export type { Degradation, WriteHealth };

export class DegradedState {
  private readonly entries = new Map<string, Degradation>();

  constructor(private readonly log: Pick<Logger, 'error' | 'info'>) {}

  for(component: string): WriteHealth {
    return { failed: (err) => this.failed(component, err), recovered: () => this.recovered(component) };
  }

  list(): Degradation[] {
    return [...this.entries.values()].map((d) => ({ ...d }));
  }

  private failed(component: string, err: unknown): void {
    const reason = errnoOf(err);
    const message = messageOf(err);
    const previous = this.entries.get(component);
    this.entries.set(component, { component, reason, message, since: previous?.since ?? new Date().toISOString() });
    // Logged when it starts and when its cause changes, not on every retry.
    if (previous?.reason !== reason) {
      this.log.error(`${component} is degraded: ${message}; kept in memory and retried`, { code: 'DEGRADED', component, reason });
    }
  }

  private recovered(component: string): void {
    const previous = this.entries.get(component);
    if (!previous) return;
    this.entries.delete(component);
    this.log.info(`${component} writes again (degraded since ${previous.since} by ${previous.reason})`, { code: 'RECOVERED', component });
  }
}

/** The errno code of an error or of the error it wraps. */
function errnoOf(err: unknown): string {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
  }
  return 'ERROR';
}
