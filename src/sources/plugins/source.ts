// The NPD custom plugins as a source kind (src/registry.ts).
import type { LoadedConfig } from '../../config/load';
import type { SourceKind } from '../../types';
import { PluginMonitor } from './monitor';

export const pluginSource: SourceKind<LoadedConfig> = {
  name: 'plugins',
  plan(loaded, { log, sink }) {
    if (!loaded.config.plugins.enabled) return undefined;
    // Built (configs read, executables checked) with the plan; reports go to the plan's sink.
    const monitor = PluginMonitor.create(loaded, log, sink);
    return {
      declarations: monitor.declarations(),
      diagnose: () => monitor.checks(),
      async open() {
        return { start: () => monitor.start(), stop: () => monitor.stop(), status: () => ({ plugins: monitor.status() }) };
      },
    };
  },
};
