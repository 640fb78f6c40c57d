// Runs periodic tasks, each on its own interval with jitter so checks do not all fire at once (NPD fires
// every check in the same instant). A run never overlaps the previous run of the same task.
import { jitter } from './backoff';
import { background } from './background';

/**
 * The longest wait a Node timer takes (2^31-1 ms, about 24.8 days): a longer one fires after 1 ms, so an
 * interval beyond it turns into a busy loop.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface PeriodicTask {
  name: string;
  intervalMs: number;
  run(): Promise<void>;
}

export class Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly random: () => number = Math.random) {}

  /** Starts every task: the first run comes after a random part of min(interval, maxFirstDelayMs). */
  start(tasks: PeriodicTask[], maxFirstDelayMs = 2000): void {
    this.stopped = false;
    for (const task of tasks) {
      this.arm(task, this.random() * Math.min(task.intervalMs, maxFirstDelayMs));
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private arm(task: PeriodicTask, delayMs: number): void {
    // Jitter can push an interval at the config's maximum past the timer limit, where Node fires at once.
    const timer = setTimeout(() => {
      void background(`check ${task.name}`, () => task.run()).finally(() => {
        if (this.stopped) return;
        // ±10 % jitter keeps tasks with equal intervals from drifting back into step.
        this.arm(task, jitter(task.intervalMs, this.random));
      });
    }, Math.min(delayMs, MAX_TIMER_MS));
    // Timers never keep the process alive: the status server does while the daemon runs.
    timer.unref();
    this.timers.set(task.name, timer);
  }
}
