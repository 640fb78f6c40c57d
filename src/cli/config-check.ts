// `config check`: validate the config directory and print the effective merged configuration. It builds
// the same plan `run` and reload build (rules, plugins, probes, ladder, condition owners), so a config it
// passes is one the daemon starts with and a reload applies.
import { effectiveConfig } from '../config/effective';
import { familyKeys, familyNames, sectionsOf } from '../config/schema';
import { AgentError } from '../errors';
import { createLogger } from '../outputs/log';
import { makePlan } from '../plan';
import { registeredSections } from '../sections';
import type { HostProbe } from '../sources/probes/probe';
import { loadNative } from '../system/native';

/**
 * Validates the directory and prints every value, or only the sections and keys named in `only`
 * (`disk`, `disk.interval`; a family such as `rule` selects all its named sections).
 */
export function configCheck(dir: string | undefined, only: readonly string[] = [], out: NodeJS.WriteStream = process.stdout): number {
  const unknown = only.filter((w) => !configKeyWords().includes(w));
  if (unknown.length > 0) {
    throw new AgentError('CONFIG_INVALID', `config check: no such section or key: ${unknown.join(', ')} (use a section like disk or a key like disk.interval)`);
  }
  const { loaded } = makePlan(dir, { log: createLogger('error', undefined), sink: { condition() {}, event() {} }, native: loadNative });
  out.write(effectiveConfig(loaded, only));
  return 0;
}

/** What `config check` accepts to select: every section and family, and every section.key. */
export function configKeyWords(probes?: readonly HostProbe[]): string[] {
  return [
    ...sectionsOf(registeredSections(probes)).flatMap(({ name, keys }) => [name, ...Object.keys(keys).map((k) => `${name}.${k}`)]),
    ...familyNames().flatMap((f) => [f, ...Object.keys(familyKeys(f)).map((k) => `${f}.${k}`)]),
  ];
}
