// The merged configuration as ini text: what `config check --effective` prints and the support bundle keeps.
import type { LoadedConfig } from './load';
import { familyKeys, familyNames, type KeySpec } from './schema';

/** Every section and key with its value and the file:line it came from (or "default"); the support bundle keeps it too. */
export function effectiveConfig(loaded: LoadedConfig, only: readonly string[] = []): string {
  const lines: string[] = [
    loaded.files.length > 0
      ? `; merged from ${loaded.files.join(', ')}`
      : '; no config files found: every value below is the default',
  ];
  const wanted = (section: string, key: string): boolean => only.length === 0 || only.includes(section) || only.includes(`${section}.${key}`);
  const section = (label: string, id: string, group: string, specs: Array<[string, KeySpec<unknown>]>): void => {
    const shown = specs.filter(([name]) => wanted(group, name));
    if (shown.length === 0) return;
    lines.push('', label);
    for (const [name, spec] of shown) {
      const origin = loaded.origins.get(`${id}.${name}`);
      const value = origin ? origin.text : spec.default;
      lines.push(`${name} = ${value}  ; ${origin ? `${origin.file}:${origin.line}` : 'default'}`);
    }
  };
  for (const { name, keys } of loaded.sections) section(`[${name}]`, name, name, Object.entries(keys));
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
