// The registry of host probes: what `diagnose` runs once and the daemon runs on its schedule, one line
// per probe. Each probe's folder declares its config section with its check, so adding one is its folder
// and its line here. Stateful checks (rates) keep their previous sample, so the daemon builds the list once.
import type { LoadedConfig } from '../config/load';
import type { AnySection, Config } from '../config/schema';
import type { NativeLoader } from '../system/native';
import type { ConditionDeclaration, ScheduledCheck, SourceKind } from '../types';
import { conntrackProbe } from './probes/conntrack';
import { diskProbe } from './probes/disk';
import { fileHandlesProbe } from './probes/file-handles';
import { kernelTaintProbe } from './probes/kernel-taint';
import { memoryProbe } from './probes/memory';
import { nicProbe } from './probes/nic';
import { pidsProbe } from './probes/pids';
import { pressureProbe } from './probes/pressure';
import type { HostProbe } from './probes/probe';
import { readonlyProbe } from './probes/readonly';
import { tcpProbe } from './probes/tcp';
import { thermalProbe } from './probes/thermal';
import { timeSyncProbe } from './probes/time-sync';
import { zombiesProbe } from './probes/zombies';

/** In this order their sections appear in the config reference and their findings in `diagnose`. */
export const PROBES: readonly HostProbe[] = [
  diskProbe,
  readonlyProbe,
  memoryProbe,
  pressureProbe,
  pidsProbe,
  fileHandlesProbe,
  conntrackProbe,
  zombiesProbe,
  kernelTaintProbe,
  thermalProbe,
  nicProbe,
  tcpProbe,
  timeSyncProbe,
];

/** The probes' config sections, for the loader. */
export function probeSections(probes: readonly HostProbe[] = PROBES): AnySection[] {
  return probes.map((p) => p.section);
}

/** `native`: the addon, for the probes that read the kernel through it (time_sync's adjtimex). */
export function enabledChecks(config: Config, native: NativeLoader, probes: readonly HostProbe[] = PROBES): ScheduledCheck[] {
  return probes.flatMap((p) => p.schedule(config, native) ?? []);
}

/**
 * The host probes as a source kind (src/registry.ts): the engine runs their checks, and a probe whose
 * section names a `condition` owns that type (engine/probe-conditions.ts turns its findings into reports).
 */
export function probeSource(native: NativeLoader, probes: readonly HostProbe[] = PROBES): SourceKind<LoadedConfig> {
  return {
    name: 'probes',
    plan({ config }) {
      const checks = enabledChecks(config, native, probes);
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
