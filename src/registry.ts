// The registry of sources: every kind the daemon runs, one line each. The order is the order their
// condition types are declared in (a type two owners claim names the first one in the error).
// `probes`: the host probes (sources/checks.ts lists them); a test adds its own here.
import { loadConfig, type LoadedConfig, type LoadOptions } from './config/load';
import type { AnySection } from './config/schema';
import { runtimeHealthSource } from './repair/source';
import { PROBES, probeSections, probeSource } from './sources/checks';
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

/** The config sections sources declare in their own folders (the host probes'), for the loader and the manual. */
export function registeredSections(probes: readonly HostProbe[] = PROBES): AnySection[] {
  return probeSections(probes);
}

/** Loads the config with every section the agent and its sources know. */
export function loadAgentConfig(dir?: string, options: Omit<LoadOptions, 'sections'> = {}): LoadedConfig {
  return loadConfig(dir, { ...options, sections: registeredSections() });
}
