// The configuration schema: every section and key the agent accepts, with its type, default and meaning.
// The sections here are the agent's own; a source declares its sections in its folder (a host probe's
// [disk]) and the registry hands them to the loader (`SectionSpec`, `sectionsOf`).
// docs/configuration.md and etc/node-health.ini follow these tables; a test keeps them in step.
import { key, type KeySpec } from './key';
import { journalFamilies, journalSections } from './sections/journal';
import { pluginFamilies, pluginSections } from './sections/plugins';
import { repairSections } from './sections/repair';
import { kubernetesSections } from './sections/kubernetes';
import { fleetSections } from './sections/fleet';
import { ladderFamilies, ladderSections } from './sections/ladder';

export type { KeySpec } from './key';
import { absolutePath, oneOf } from './values';

export const schema = {
  agent: {
    log_level: key(oneOf(['error', 'warning', 'info', 'debug']), 'info', 'Least severe level written to the log.'),
    state_dir: key(absolutePath, '/var/lib/node-health', 'Persistent state (cursors, repair ledger).'),
    runtime_dir: key(absolutePath, '/run/node-health', 'Holds the status socket agent.sock.'),
  },
  ...journalSections,
  ...repairSections,
  ...kubernetesSections,
  ...pluginSections,
  ...fleetSections,
  ...ladderSections,
} as const;

/**
 * Named sections: any number of `[family "name"]` sections, each with the family's keys, e.g.
 * `[rule "OOMKilling"]`. Later files override an earlier file's keys of the same name.
 */
export const families = {
  ...journalFamilies,
  ...pluginFamilies,
  ...ladderFamilies,
} as const;

export type Schema = typeof schema;
export type SectionName = keyof Schema;
export type Families = typeof families;
export type FamilyName = keyof Families;
/** A section's keys by name. */
export type Keys = Readonly<Record<string, KeySpec<unknown>>>;
type ValueOf<S> = S extends KeySpec<infer T> ? T : never;
/** The parsed values of a section with these keys. */
export type Values<K> = { readonly [N in keyof K]: ValueOf<K[N]> };
export type NamedSections = { readonly [F in FamilyName]: ReadonlyMap<string, Values<Families[F]>> };
export type Config = { readonly [S in SectionName]: Values<Schema[S]> } & {
  readonly named: NamedSections;
  /** The values of the sections sources declare (`SectionSpec`), by section name; read them with `settingsOf`. */
  readonly registered: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
};

/** A rule across a section's keys broken by its values: the message, and the keys whose line it names. */
export interface CrossKeyError {
  /** The first of these keys set in a file gives the error its file:line. */
  keys: readonly string[];
  message: string;
}

/**
 * A section a source declares in its own folder (a host probe's `[disk]`); the registry lists them and
 * the loader parses, validates, reports and documents them like the agent's own.
 */
export interface SectionSpec<K extends Keys = Keys> {
  readonly name: string;
  readonly keys: K;
  /** Pairs of keys whose first value must not exceed the second (a warning level and its critical one). */
  readonly ordered?: ReadonlyArray<readonly [keyof K & string, keyof K & string]>;
  /** Further rules across its keys, run once every key parsed. */
  check?(values: Values<K>): CrossKeyError[];
}

/** A section of any kind as the loader, the man page and `config check` walk them, in order. */
export interface AnySection {
  readonly name: string;
  readonly keys: Keys;
  readonly ordered?: ReadonlyArray<readonly [string, string]>;
  check?(values: Readonly<Record<string, unknown>>): CrossKeyError[];
}

/**
 * Every fixed section: [agent] first, then the sections sources declare (in registry order), then the
 * agent's others. Two sections of one name are a programming error.
 */
export function sectionsOf(registered: readonly AnySection[]): AnySection[] {
  const own = Object.entries(schema).map(([name, keys]): AnySection => ({ name, keys: keys as Keys }));
  const all = [own[0] as AnySection, ...registered, ...own.slice(1)];
  const seen = new Set<string>();
  for (const { name } of all) {
    if (seen.has(name)) throw new Error(`config section [${name}] is declared twice; give the probe or source another name`);
    seen.add(name);
  }
  return all;
}

/** The values of a section a source declared, as the loader parsed them with its keys. */
export function settingsOf<K extends Keys>(config: Config, section: SectionSpec<K>): Values<K> {
  const values = config.registered.get(section.name);
  if (!values) throw new Error(`config section [${section.name}] was not loaded: pass the registry's sections to loadConfig`);
  return values as Values<K>;
}

export function familyNames(): FamilyName[] {
  return Object.keys(families) as FamilyName[];
}

export function familyKeys(family: FamilyName): Record<string, KeySpec<unknown>> {
  return families[family] as Record<string, KeySpec<unknown>>;
}

/** A section a source declares, with its keys' names checked in `ordered` and `check`. */
export function section<K extends Keys>(spec: SectionSpec<K>): SectionSpec<K> {
  return spec;
}
