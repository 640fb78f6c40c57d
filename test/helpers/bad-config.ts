// One bad value for every section and named-section family of the config schema: the fault matrix reloads
// each and expects the reload rejected, so a section added to the schema is covered without a test change.
import { families, sectionsOf, type KeySpec } from '../../src/config/schema';
import { registeredSections } from '../../src/sections';

export interface BadValue {
  /** The section header as written, e.g. `[disk]` or `[rule "fault"]`. */
  header: string;
  key: string;
  value: string;
}

const CANDIDATES = ['not a valid value %', '-5', '0', 'relative/path', ''];

function rejected(spec: KeySpec<unknown>): string | undefined {
  for (const raw of CANDIDATES) {
    try {
      spec.type.parse(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}

function firstBad(keys: Readonly<Record<string, KeySpec<unknown>>>, header: string): BadValue {
  for (const [key, spec] of Object.entries(keys)) {
    const value = rejected(spec);
    if (value !== undefined) return { header, key, value };
  }
  throw new Error(`${header}: no key rejects any of ${JSON.stringify(CANDIDATES)}; add a candidate that one rejects`);
}

export function badValues(): BadValue[] {
  return [
    ...sectionsOf(registeredSections()).map(({ name, keys }) => firstBad(keys, `[${name}]`)),
    ...Object.entries(families).map(([name, keys]) => firstBad(keys as Record<string, KeySpec<unknown>>, `[${name} "fault"]`)),
  ];
}
