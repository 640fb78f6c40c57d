// The registry of local checks: what `diagnose` runs once and the daemon runs on its schedule.
import type { Config } from '../config/schema';
import type { Check } from './check';
import { diskCheck } from './probes/disk';

export interface ScheduledCheck {
  check: Check;
  intervalMs: number;
}

export function enabledChecks(config: Config): ScheduledCheck[] {
  const checks: ScheduledCheck[] = [];
  if (config.disk.enabled) checks.push({ check: diskCheck(config.disk), intervalMs: config.disk.interval });
  return checks;
}
