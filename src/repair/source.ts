// Container runtime and kubelet health, with their repair, as a source kind (src/registry.ts). It is
// read at start only: the repair module's settings change at the next restart.
import type { LoadedConfig } from '../config/load';
import type { Config } from '../config/schema';
import { AgentError } from '../errors';
import type { RuntimeProbes, SourceKind } from '../types';
import { runtimeChecks } from './checks';
import { RuntimeHealth } from './health';
import { LedgerError } from './ledger';

/** `probes` makes the components' probes (sources/runtime/probes.ts), given by the registry. */
export function runtimeHealthSource(probes: (config: Config) => RuntimeProbes): SourceKind<LoadedConfig> {
  return {
    name: 'runtime',
    startOnly: true,
    plan({ config }) {
      if (!config.containerd.enabled && !config.kubelet.enabled && !config.kube_proxy.enabled) return undefined;
      return {
        declarations: RuntimeHealth.conditionDeclarations(config),
        diagnose: () => runtimeChecks(config, () => probes(config)),
        async open(env) {
          // Opens the repair ledger: one that cannot be read fails the start, as the state directory's problem.
          const runtime = await RuntimeHealth.create(config, env.log, env.sink, env.stateDir, probes(config), {
            onAction: (unit, action, result) => env.repaired(unit, action, result),
            ledgerHealth: env.health('repair-ledger'),
          }).catch((err: unknown) => {
            throw err instanceof LedgerError ? new AgentError('STATE_DIR_UNWRITABLE', err.message, { cause: err }) : err;
          });
          return { start: () => runtime.start(), stop: () => runtime.stop(), status: () => ({ runtime: runtime.status() }) };
        },
      };
    },
  };
}
