// Steps the wall clock as code under test sees it (Date.now and new Date()), leaving the monotonic clocks
// (performance.now, process.hrtime, timers) alone: what an operator's `date -s` or an NTP step does.
import type { Test } from 'tap';

export interface WallClock {
  /** Moves the wall clock by `ms` (negative: back) from where it is now. */
  step(ms: number): void;
}

/** Installs a steppable Date until the test ends; code that keeps a reference to Date.now sees the steps too. */
export function wallClock(t: Test): WallClock {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  let offset = 0;
  class SteppedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + offset);
      // Any other form is Date's own; its overloads take the arguments as given.
      else super(...(args as [string]));
    }
    static override now(): number {
      return realNow() + offset;
    }
  }
  globalThis.Date = SteppedDate as DateConstructor;
  t.teardown(() => {
    globalThis.Date = RealDate;
  });
  return {
    step: (ms) => {
      offset += ms;
    },
  };
}
