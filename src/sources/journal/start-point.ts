// Where a journal source starts when it has no saved cursor (first start, or the state was lost), the way
// node-problem-detector does it: the later of "boot time + delay" and "now − lookback". Lines from before
// this boot are never reported as new, and a long-running node does not rescan hours of journal.

export interface StartPointInput {
  /** How far back to look from `now` (NPD ships 5 min). */
  lookbackMs: number;
  /** Lines from the first `delayMs` after boot are skipped. */
  delayMs: number;
  /** Wall clock now, ms since the epoch. */
  now: number;
  /** When this boot started, ms since the epoch (bootTimeMs()). */
  bootTimeMs: number;
}

/** The realtime timestamp (µs since the epoch) to start reading at. */
export function startPoint(input: StartPointInput): number {
  for (const key of ['lookbackMs', 'delayMs', 'now', 'bootTimeMs'] as const) {
    const v = input[key];
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`startPoint: ${key} must be a finite number ≥ 0, got ${v}`);
  }
  return Math.max(input.bootTimeMs + input.delayMs, input.now - input.lookbackMs) * 1000;
}
