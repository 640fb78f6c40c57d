// Turning a measurement and its two thresholds into a status, and the number formats messages share.
import type { CheckStatus } from '../../types';

/** For measures where more is worse (used %, pressure, rates): at or above a threshold crosses it. */
export function levelAbove(value: number, warning: number, critical: number): CheckStatus {
  if (value >= critical) return 'problem';
  if (value >= warning) return 'warning';
  return 'ok';
}

/** For measures where less is worse (memory available): below a threshold crosses it. */
export function levelBelow(value: number, warning: number, critical: number): CheckStatus {
  if (value < critical) return 'problem';
  if (value < warning) return 'warning';
  return 'ok';
}

export function worst(a: CheckStatus, b: CheckStatus): CheckStatus {
  const rank: Record<CheckStatus, number> = { ok: 0, warning: 1, unknown: 2, problem: 3 };
  return rank[a] >= rank[b] ? a : b;
}

/** "12.3%"; a share that is not zero never shows as 0.0%. */
export function pct(v: number): string {
  return v > 0 && v < 0.05 ? '<0.1%' : `${v.toFixed(1)}%`;
}

/** "1,234,567": counts people read at a glance. (Not toLocaleString: loading ICU costs ~70 ms.) */
export function count(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "0.4/s", "12/s", "1,234/s" */
export function perSecond(v: number): string {
  return `${v < 10 ? v.toFixed(1) : count(v)}/s`;
}

/** Chooses one of three CamelCase reasons by status (ok, warning, problem). */
export function reasonFor(status: CheckStatus, ok: string, warning: string, problem: string): string {
  return status === 'problem' ? problem : status === 'warning' ? warning : ok;
}
