// The ladder's settings from the config: [ladder], the [remediate "Type"] sections (one per condition
// that may start a ladder) and [repair] mode, which the ladder obeys like every repair.
import type { KeySpec } from '../../config/key';
import type { Config } from '../../config/schema';
import { ladderFamilies, type LadderStep, type MaintenanceWindow } from '../../config/sections/ladder';
import { conditionType, ValueError } from '../../config/values';

type ValueOf<S> = S extends KeySpec<infer T> ? T : never;
type Remediate = (typeof ladderFamilies)['remediate'];
/** One [remediate "Type"] section as the loader parses it. */
export type RemediateSection = { readonly [K in keyof Remediate]: ValueOf<Remediate[K]> };

export interface RemediateSettings {
  afterMs: number;
  steps: readonly LadderStep[];
}

export interface LadderSettings {
  enabled: boolean;
  dryRun: boolean;
  windows: readonly MaintenanceWindow[];
  blockingPods: string;
  drainTimeoutMs: number;
  uncordonOnFailure: boolean;
  rebootTimeoutMs: number;
  afterBootTimeoutMs: number;
  retryMs: number;
  /** Condition type → how its ladder runs; only enabled sections. */
  conditions: ReadonlyMap<string, RemediateSettings>;
}

export class LadderConfigError extends Error {
  override name = 'LadderConfigError';
}

export function ladderSettings(config: Pick<Config, 'ladder' | 'repair'>, remediate: ReadonlyMap<string, RemediateSection>): LadderSettings {
  const l = config.ladder;
  const conditions = new Map<string, RemediateSettings>();
  for (const [name, section] of remediate) {
    try {
      conditionType.parse(name);
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      throw new LadderConfigError(`[remediate "${name}"]: ${err.message}; name the section after the condition type, e.g. [remediate "KernelDeadlock"]`);
    }
    if (!section.enabled) continue;
    conditions.set(name, { afterMs: section.after, steps: l.reboot ? section.steps : section.steps.filter((s) => s !== 'reboot') });
  }
  return {
    enabled: l.enabled && config.repair.mode !== 'off',
    dryRun: l.dry_run || config.repair.mode === 'dry-run',
    windows: l.windows,
    blockingPods: l.blocking_pods,
    drainTimeoutMs: l.drain_timeout,
    uncordonOnFailure: l.uncordon_on_failure,
    rebootTimeoutMs: l.reboot_timeout,
    afterBootTimeoutMs: l.after_boot_timeout,
    retryMs: l.retry,
    conditions,
  };
}
