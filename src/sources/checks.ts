// The registry of local checks: what `diagnose` runs once and the daemon runs on its schedule.
// Stateful checks (rates) keep their previous sample, so the daemon builds this list once.
import type { Config, SectionName } from '../config/schema';
import type { Check } from './check';
import { conntrackCheck } from './probes/conntrack';
import { diskCheck } from './probes/disk';
import { fileHandlesCheck } from './probes/file-handles';
import { kernelTaintCheck } from './probes/kernel-taint';
import { memoryCheck } from './probes/memory';
import { nicCheck } from './probes/nic';
import { pidsCheck } from './probes/pids';
import { pressureCheck } from './probes/pressure';
import { readOnlyCheck } from './probes/readonly';
import { tcpCheck } from './probes/tcp';
import { thermalCheck } from './probes/thermal';
import { zombiesCheck } from './probes/zombies';

export interface ScheduledCheck {
  check: Check;
  intervalMs: number;
  /** The check's settings as JSON: a reload keeps a check (and its baselines) whose settings did not change. */
  settings: string;
}

/** Sections that configure one check: they have `enabled` and `interval`. */
type CheckSection = {
  [S in SectionName]: Config[S] extends { enabled: boolean; interval: number } ? S : never;
}[SectionName];

export function enabledChecks(config: Config): ScheduledCheck[] {
  const checks: ScheduledCheck[] = [];
  const add = <S extends CheckSection>(section: S, make: (cfg: Config[S]) => Check) => {
    const cfg = config[section];
    if (cfg.enabled) checks.push({ check: make(cfg), intervalMs: cfg.interval, settings: JSON.stringify(cfg) });
  };
  add('disk', (cfg) => diskCheck(cfg));
  add('readonly', (cfg) => readOnlyCheck(cfg));
  add('memory', (cfg) => memoryCheck(cfg));
  add('pressure', (cfg) => pressureCheck(cfg));
  add('pids', (cfg) => pidsCheck(cfg));
  add('file_handles', (cfg) => fileHandlesCheck(cfg));
  add('conntrack', (cfg) => conntrackCheck(cfg));
  add('zombies', (cfg) => zombiesCheck(cfg));
  add('kernel_taint', (cfg) => kernelTaintCheck(cfg));
  add('thermal', (cfg) => thermalCheck(cfg));
  add('nic', (cfg) => nicCheck(cfg));
  add('tcp', (cfg) => tcpCheck(cfg));
  return checks;
}
