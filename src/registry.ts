// The registry of sources: every kind the daemon runs, one line each. The order is the order their
// condition types are declared in (a type two owners claim names the first one in the error).
import type { LoadedConfig } from './config/load';
import { runtimeHealthSource } from './repair/source';
import { probeSource } from './sources/checks';
import { journalSource } from './sources/journal/source';
import { pluginSource } from './sources/plugins/source';
import { runtimeProbes } from './sources/runtime/probes';
import type { NativeLoader } from './system/native';
import type { SourceKind } from './types';

export function sourceKinds(native: NativeLoader): ReadonlyArray<SourceKind<LoadedConfig>> {
  return [
    journalSource(native),
    pluginSource,
    probeSource(native),
    runtimeHealthSource(runtimeProbes),
  ];
}
