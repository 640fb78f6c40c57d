// What a host probe declares in its own folder: its config section (the keys every probe has, from
// `probe()`, and its own), the condition's reason and message while all is well, and how its check is
// made from its settings. sources/checks.ts lists the probes, one line each; the loader, `config check`,
// `diagnose`, the man page and the completion take the sections from there.
import type { probe } from '../../config/key';
import { settingsOf, type AnySection, type Config, type Keys, type SectionSpec, type Values } from '../../config/schema';
import type { NativeLoader } from '../../system/native';
import type { Check, ScheduledCheck } from '../../types';

/** The keys every probe's section starts with: enabled, interval, condition, set_after, clear_after. */
type ProbeKeys = ReturnType<typeof probe> & Keys;

export interface ProbeDefinition<K extends ProbeKeys> {
  /** `[name]` in the config; the check and the condition's owner take its name. */
  readonly section: SectionSpec<K>;
  /** The condition's reason and message while no problem is found; `shared`: journal rules may own the same type. */
  readonly healthy: { reason: string; message: string; shared?: boolean };
  /** The check for these settings; `native` for a probe that reads the kernel through the addon (time_sync). */
  make(settings: Values<K>, native: NativeLoader): Check;
}

/** A probe as the registry holds it. */
export interface HostProbe {
  readonly section: AnySection;
  /** Its check as the engine schedules it, or undefined when its section disables it. */
  schedule(config: Config, native: NativeLoader): ScheduledCheck | undefined;
}

export function defineProbe<K extends ProbeKeys>(def: ProbeDefinition<K>): HostProbe {
  const { section, healthy } = def;
  return {
    section,
    schedule(config, native) {
      const cfg = settingsOf(config, section);
      if (!cfg.enabled) return undefined;
      const { condition: type, set_after: setAfter, clear_after: clearAfter } = cfg;
      return {
        check: def.make(cfg, native),
        intervalMs: cfg.interval,
        settings: JSON.stringify(cfg),
        section: section.name,
        ...(type ? { condition: { type, setAfter, clearAfter, shared: healthy.shared ?? false, reason: healthy.reason, message: healthy.message } } : {}),
      };
    },
  };
}
