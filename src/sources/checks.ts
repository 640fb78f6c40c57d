// The registry of host probes: what `diagnose` runs once and the daemon runs on its schedule, one line
// per probe. Stateful checks (rates) keep their previous sample, so the daemon builds this list once.
import type { LoadedConfig } from '../config/load';
import type { Config, SectionName } from '../config/schema';
import type { NativeLoader } from '../system/native';
import type { Check, ConditionDeclaration, ScheduledCheck, SourceKind } from '../types';
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
import { readKernelClock, timeSyncCheck } from './probes/time-sync';
import { zombiesCheck } from './probes/zombies';

/** Sections that configure one check: they have `enabled`, `interval` and the condition keys. */
type CheckSection = {
  [S in SectionName]: Config[S] extends { enabled: boolean; interval: number; condition: string | undefined; set_after: number; clear_after: number }
    ? S
    : never;
}[SectionName];

interface Healthy {
  reason: string;
  message: string;
  shared?: boolean;
}

/** `native`: the addon, for the probes that read the kernel through it (time_sync's adjtimex). */
export function enabledChecks(config: Config, native: NativeLoader): ScheduledCheck[] {
  const checks: ScheduledCheck[] = [];
  const add = <S extends CheckSection>(section: S, healthy: Healthy, make: (cfg: Config[S]) => Check) => {
    const cfg = config[section];
    if (!cfg.enabled) return;
    const { condition: type, set_after: setAfter, clear_after: clearAfter } = cfg;
    checks.push({
      check: make(cfg),
      intervalMs: cfg.interval,
      settings: JSON.stringify(cfg),
      section,
      ...(type ? { condition: { type, setAfter, clearAfter, shared: healthy.shared ?? false, reason: healthy.reason, message: healthy.message } } : {}),
    });
  };
  add('disk', { reason: 'DiskSpaceOK', message: 'every watched filesystem has free space and inodes' }, (cfg) => diskCheck(cfg));
  add('readonly', { reason: 'FilesystemIsNotReadOnly', message: 'Filesystem is not read-only', shared: true }, (cfg) => readOnlyCheck(cfg));
  add('memory', { reason: 'MemoryAvailableOK', message: 'enough memory is available' }, (cfg) => memoryCheck(cfg));
  add('pressure', { reason: 'PressureOK', message: 'no sustained memory or I/O stalls' }, (cfg) => pressureCheck(cfg));
  add('pids', { reason: 'PIDUsageOK', message: 'the task limit is far' }, (cfg) => pidsCheck(cfg));
  add('file_handles', { reason: 'FileHandleUsageOK', message: 'the file handle limit is far' }, (cfg) => fileHandlesCheck(cfg));
  add('conntrack', { reason: 'ConntrackUsageOK', message: 'the conntrack table has room' }, (cfg) => conntrackCheck(cfg));
  add('zombies', { reason: 'ZombiesOK', message: 'few zombie processes' }, (cfg) => zombiesCheck(cfg));
  add('kernel_taint', { reason: 'KernelNotFaulted', message: 'no kernel oops, machine check or bad page since boot' }, (cfg) => kernelTaintCheck(cfg));
  add('thermal', { reason: 'ThermalOK', message: 'every thermal zone is below its critical trip point' }, (cfg) => thermalCheck(cfg));
  add('nic', { reason: 'NICOK', message: 'network interfaces show few errors and drops' }, (cfg) => nicCheck(cfg));
  add('tcp', { reason: 'TCPRetransmitOK', message: 'TCP retransmissions are low' }, (cfg) => tcpCheck(cfg));
  add('time_sync', { reason: 'TimeSyncOK', message: 'the clock is synchronised, or the node booted too recently to judge' }, (cfg) => timeSyncCheck(cfg, () => readKernelClock(() => native().adjtimex())));
  return checks;
}

/**
 * The host probes as a source kind (src/registry.ts): the engine runs their checks, and a probe whose
 * section names a `condition` owns that type (engine/probe-conditions.ts turns its findings into reports).
 */
export function probeSource(native: NativeLoader): SourceKind<LoadedConfig> {
  return {
    name: 'probes',
    plan({ config }) {
      const checks = enabledChecks(config, native);
      return {
        declarations: checks.flatMap(({ section, condition: c }): ConditionDeclaration[] =>
          c ? [{ type: c.type, owner: `[${section}]`, reason: c.reason, message: c.message, setAfter: c.setAfter, clearAfter: c.clearAfter, shared: c.shared }] : [],
        ),
        checks,
        diagnose: () => checks.map(({ check }) => check),
        // The engine runs the checks: nothing to open, start or show besides.
        async open() {
          return { start() {}, stop() {}, status: () => ({}) };
        },
      };
    },
  };
}
