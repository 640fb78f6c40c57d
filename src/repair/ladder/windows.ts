// Maintenance windows: whether a ladder may start now, and when it next may. Local time of the node, as
// operators write their windows; a window that passes midnight belongs to the day it starts on.
import type { MaintenanceWindow } from '../../config/sections/ladder';

const DAY = 24 * 60;

function minuteOf(d: Date): number {
  return d.getHours() * 60 + d.getMinutes();
}

export function inWindow(windows: readonly MaintenanceWindow[], now: Date): boolean {
  const day = now.getDay();
  const minute = minuteOf(now);
  const yesterday = (day + 6) % 7;
  return windows.some((w) => {
    if (w.endMinute > w.startMinute) return w.days.includes(day) && minute >= w.startMinute && minute < w.endMinute;
    return (w.days.includes(day) && minute >= w.startMinute) || (w.days.includes(yesterday) && minute < w.endMinute);
  });
}

/** The earliest start of a window after `now`; undefined for an empty list. */
export function nextWindowStart(windows: readonly MaintenanceWindow[], now: Date): Date | undefined {
  let best: Date | undefined;
  for (const w of windows) {
    for (let k = 0; k <= 7; k++) {
      // The Date constructor carries day overflow into the month and follows DST changes.
      const start = new Date(now.getFullYear(), now.getMonth(), now.getDate() + k, 0, w.startMinute % DAY);
      if (start.getTime() <= now.getTime() || !w.days.includes(start.getDay())) continue;
      if (!best || start < best) best = start;
      break;
    }
  }
  return best;
}

export function describeWindows(windows: readonly MaintenanceWindow[]): string {
  return windows.map((w) => w.text).join(', ');
}
