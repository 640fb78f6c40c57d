// `config check`: validate the config directory and print the effective merged configuration. It builds
// the same plan `run` and reload build (rules, plugins, probes, ladder, condition owners), so a config it
// passes is one the daemon starts with and a reload applies.
import type { LoadedConfig } from '../config/load';
import { familyKeys, familyNames, keysOf, sectionNames, specOf, type KeySpec } from '../config/schema';
import { AgentError } from '../errors';
import { createLogger } from '../outputs/log';
import { makePlan } from '../plan';

/**
 * Validates the directory and prints every value, or only the sections and keys named in `only`
 * (`disk`, `disk.interval`; a family such as `rule` selects all its named sections).
 */
export function configCheck(dir: string | undefined, only: readonly string[] = [], out: NodeJS.WriteStream = process.stdout): number {
  const unknown = only.filter((w) => !configKeyWords().includes(w));
  if (unknown.length > 0) {
    throw new AgentError('CONFIG_INVALID', `config check: no such section or key: ${unknown.join(', ')} (use a section like disk or a key like disk.interval)`);
  }
  const { loaded } = makePlan(dir, { log: createLogger('error', undefined), sink: { condition() {}, event() {} } });
  out.write(effectiveConfig(loaded, only));
  return 0;
}

/** What `config check` accepts to select: every section and family, and every section.key. */
export function configKeyWords(): string[] {
  return [
    ...sectionNames().flatMap((s) => [s, ...keysOf(s).map((k) => `${s}.${k}`)]),
    ...familyNames().flatMap((f) => [f, ...Object.keys(familyKeys(f)).map((k) => `${f}.${k}`)]),
  ];
}

/** Every section and key with its value and the file:line it came from (or "default"); the support bundle keeps it too. */
export function effectiveConfig(loaded: LoadedConfig, only: readonly string[] = []): string {
  const lines: string[] = [
    loaded.files.length > 0
      ? `; merged from ${loaded.files.join(', ')}`
      : '; no config files found: every value below is the default',
  ];
  const wanted = (section: string, key: string): boolean => only.length === 0 || only.includes(section) || only.includes(`${section}.${key}`);
  const section = (label: string, id: string, group: string, specs: Array<[string, KeySpec<unknown> | undefined]>): void => {
    const shown = specs.filter(([name]) => wanted(group, name));
    if (shown.length === 0) return;
    lines.push('', label);
    for (const [name, spec] of shown) {
      const origin = loaded.origins.get(`${id}.${name}`);
      const value = origin ? origin.text : spec?.default;
      lines.push(`${name} = ${value}  ; ${origin ? `${origin.file}:${origin.line}` : 'default'}`);
    }
  };
  for (const name of sectionNames()) {
    section(`[${name}]`, name, name, keysOf(name).map((k) => [k, specOf(name, k)]));
  }
  for (const family of familyNames()) {
    for (const instance of namesIn(loaded, family)) {
      section(`[${family} "${instance}"]`, `${family} "${instance}"`, family, Object.entries(familyKeys(family)));
    }
  }
  return `${lines.join('\n')}\n`;
}

function namesIn(loaded: LoadedConfig, family: ReturnType<typeof familyNames>[number]): string[] {
  return [...loaded.config.named[family].keys()];
}
