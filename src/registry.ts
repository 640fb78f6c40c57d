// The registry of sources: every kind the daemon runs, one line each. The order is the order their
// condition types are declared in (a type two owners claim names the first one in the error).
// `probes`: the host probes (sources/checks.ts lists them); a test adds its own here.
import type { LoadedConfig } from './config/load';
import { runtimeHealthSource } from './repair/source';
import { PROBES, probeSource } from './sources/checks';
import { journalSource } from './sources/journal/source';
import { pluginSource } from './sources/plugins/source';
import type { HostProbe } from './sources/probes/probe';
import { runtimeProbes } from './sources/runtime/probes';
import type { NativeLoader } from './system/native';
import type { SourceKind } from './types';

export function sourceKinds(native: NativeLoader, probes: readonly HostProbe[] = PROBES): ReadonlyArray<SourceKind<LoadedConfig>> {
  return [
    journalSource(native),
    pluginSource,
    probeSource(native, probes),
    runtimeHealthSource(runtimeProbes),
  ];
}
