// Flood control for events: the first event of a (source, reason) goes out at once; repeats within the
// window are counted and sent as one event with the count when the window ends. A flood of thousands
// of OOM kills a minute becomes two events a minute, and nothing is dropped without being counted.
import { formatDuration } from '../../config/values';
import type { EventReport } from '../../types';

interface Window {
  openedAt: number;
  repeats: number;
  latest: EventReport;
}

export class EventAggregator {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly windowMs: number,
    private readonly emit: (e: EventReport) => void,
    // Monotonic: a wall clock stepped back must not hold a window's repeats until it catches up again.
    private readonly now: () => number = () => performance.now(),
  ) {}

  report(e: EventReport): void {
    const key = `${e.source}\0${e.reason}`;
    const open = this.windows.get(key);
    if (open) {
      open.repeats += e.count ?? 1;
      open.latest = e;
      return;
    }
    this.windows.set(key, { openedAt: this.now(), repeats: 0, latest: e });
    this.emit(e);
  }

  /** Closes windows that ended: their repeats go out as one event, and a still-running flood opens the next. */
  tick(): void {
    const now = this.now();
    for (const [key, w] of this.windows) {
      if (now - w.openedAt < this.windowMs) continue;
      if (w.repeats === 0) {
        this.windows.delete(key);
        continue;
      }
      this.emit({
        ...w.latest,
        count: w.repeats,
        message: `${w.repeats} more in the last ${formatDuration(this.windowMs)}; latest: ${w.latest.message}`,
      });
      this.windows.set(key, { openedAt: now, repeats: 0, latest: w.latest });
    }
  }

  /** Sends what is pending (at shutdown). */
  flush(): void {
    for (const w of this.windows.values()) {
      if (w.repeats > 0) {
        this.emit({ ...w.latest, count: w.repeats, message: `${w.repeats} more; latest: ${w.latest.message}` });
      }
    }
    this.windows.clear();
  }
}
