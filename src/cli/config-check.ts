// `config check`: validate the config directory and print the effective merged configuration. It builds
// the same plan `run` and reload build (rules, plugins, probes, ladder, condition owners), so a config it
// passes is one the daemon starts with and a reload applies.
import type { LoadedConfig } from '../config/load';
import { familyKeys, familyNames, keysOf, sectionNames, specOf, type KeySpec } from '../config/schema';
import { createLogger } from '../outputs/log';
import { makePlan } from '../plan';

export function configCheck(dir: string | undefined, out: NodeJS.WriteStream = process.stdout): number {
  const { loaded } = makePlan(dir, { log: createLogger('error', undefined), sink: { condition() {}, event() {} } });
  out.write(effectiveConfig(loaded));
  return 0;
}

/** Every section and key with its value and the file:line it came from (or "default"); the support bundle keeps it too. */
export function effectiveConfig(loaded: LoadedConfig): string {
  const lines: string[] = [
    loaded.files.length > 0
      ? `; merged from ${loaded.files.join(', ')}`
      : '; no config files found: every value below is the default',
  ];
  const section = (label: string, id: string, specs: Array<[string, KeySpec<unknown> | undefined]>): void => {
    lines.push('', label);
    for (const [name, spec] of specs) {
      const origin = loaded.origins.get(`${id}.${name}`);
      const value = origin ? origin.text : spec?.default;
      lines.push(`${name} = ${value}  ; ${origin ? `${origin.file}:${origin.line}` : 'default'}`);
    }
  };
  for (const name of sectionNames()) {
    section(`[${name}]`, name, keysOf(name).map((k) => [k, specOf(name, k)]));
  }
  for (const family of familyNames()) {
    for (const instance of namesIn(loaded, family)) {
      section(`[${family} "${instance}"]`, `${family} "${instance}"`, Object.entries(familyKeys(family)));
    }
  }
  return `${lines.join('\n')}\n`;
}

function namesIn(loaded: LoadedConfig, family: ReturnType<typeof familyNames>[number]): string[] {
  return [...loaded.config.named[family].keys()];
}
