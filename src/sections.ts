// The config sections the agent knows beyond its own schema: those its sources declare in their folders
// (the host probes'). Apart from registry.ts so a program that only loads the config (a benchmark, a test
// fixture bundled on its own) does not pull in repair/ and its D-Bus client.
import { loadConfig, type LoadedConfig, type LoadOptions } from './config/load';
import type { AnySection } from './config/schema';
import { PROBES, probeSections } from './sources/checks';
import type { HostProbe } from './sources/probes/probe';

/** The config sections sources declare in their own folders (the host probes'), for the loader and the manual. */
export function registeredSections(probes: readonly HostProbe[] = PROBES): AnySection[] {
  return probeSections(probes);
}

/** Loads the config with every section the agent and its sources know. */
export function loadAgentConfig(dir?: string, options: Omit<LoadOptions, 'sections'> = {}): LoadedConfig {
  return loadConfig(dir, { ...options, sections: registeredSections() });
}
