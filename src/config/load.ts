// Reads /etc/node-health/*.ini: files merged in lexical order, later files override earlier ones key by
// key (like systemd drop-ins). Every problem names file:line and the key.
//
// The format is systemd's flavour of ini: `;` or `#` start a comment only at the start of a line, and a
// value is taken verbatim (a double-quoted value is JSON-decoded). The `ini` package was dropped: it
// reports no line numbers or duplicates, and it cuts values at `;`/`#` and rewrites backslashes, which
// corrupts regular expressions such as `\[#\d+\]`.
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { AgentError, messageOf } from '../errors';
import {
  familyKeys,
  familyNames,
  schema,
  sectionsOf,
  type AnySection,
  type Config,
  type FamilyName,
  type KeySpec,
} from './schema';
import { absolutePath, ValueError } from './values';

export const DEFAULT_CONFIG_DIR = '/etc/node-health';

export interface Origin {
  file: string;
  line: number;
  /** The value as written. */
  text: string;
}

export interface LoadedConfig {
  config: Config;
  /** Every fixed section, in order: the agent's own and those the registry handed in. */
  sections: readonly AnySection[];
  /** The files read, in merge order. */
  files: string[];
  /** Where each "section.key" that was set in a file came from; absent keys have their default. */
  origins: Map<string, Origin>;
}

export interface LoadOptions {
  /** A missing directory is an error when the operator named it; the default one may be absent. */
  required?: boolean;
  /**
   * The sections sources declare in their folders (`registeredSections()` in sections.ts); a file setting
   * one not given is refused as unknown, so every caller names them.
   */
  sections: readonly AnySection[];
}

export function loadConfig(dir: string = DEFAULT_CONFIG_DIR, options: LoadOptions): LoadedConfig {
  const { config, sections, files, origins, errors, bySection } = readConfig(dir, options);
  if (errors.length === 0) errors.push(...crossChecks(config, sections, bySection, origins));
  if (errors.length > 0) throw new AgentError('CONFIG_INVALID', inFileOrder(errors, files).join('\n'));
  return { config, sections, files, origins };
}

/**
 * [agent] runtime_dir, for clients of the running daemon (`status`): read even from a config the daemon
 * rejected, since that is when an operator asks it why; the default when that key itself is bad.
 */
export function runtimeDirOf(dir: string = DEFAULT_CONFIG_DIR, options: Pick<LoadOptions, 'required'> = {}): string {
  const { config } = readConfig(dir, { ...options, sections: [] });
  return (config.agent as Partial<Config['agent']>).runtime_dir ?? absolutePath.parse(schema.agent.runtime_dir.default as string);
}

/** Every file read and every key parsed; a key that does not parse is left out and named in `errors`. */
function readConfig(dir: string, options: LoadOptions): LoadedConfig & { errors: string[]; bySection: Map<string, Record<string, unknown>> } {
  const files = listConfigFiles(dir, options.required ?? false);
  const sections = sectionsOf(options.sections);
  const byName = new Map(sections.map((s) => [s.name, s]));
  const errors: string[] = [];
  const raw = new Map<string, { value: string; origin: Origin }>();
  // Named sections seen, with the line of their first header (where a missing required key is reported).
  const instances = new Map<FamilyName, Map<string, Origin>>();

  for (const file of files) {
    let textContent: string;
    try {
      checkOwnership(file, statSync(file));
      textContent = readFileSync(file, 'utf8');
    } catch (err) {
      if (err instanceof AgentError) throw err;
      throw new AgentError('CONFIG_UNREADABLE', `${file}: cannot read config file: ${messageOf(err)}`, { cause: err });
    }
    for (const entry of scanIni(file, textContent, byName, errors)) {
      if (entry.key === undefined) {
        const { family, name } = entry.address;
        if (family === undefined || name === undefined) continue;
        const seen = instances.get(family) ?? new Map<string, Origin>();
        if (!seen.has(name)) seen.set(name, { file, line: entry.line, text: '' });
        instances.set(family, seen);
        continue;
      }
      raw.set(`${entry.address.id}.${entry.key}`, { value: entry.value, origin: { file, line: entry.line, text: entry.value } });
    }
  }

  const origins = new Map<string, Origin>();
  const parseSection = (address: Address, header?: Origin): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(address.specs)) {
      const id = `${address.id}.${name}`;
      const set = raw.get(id);
      if (!set && spec.default === undefined) {
        errors.push(`${header ? `${where(header)}: ` : ''}${address.label} ${name} is required (${spec.doc})`);
        continue;
      }
      try {
        out[name] = spec.type.parse(set ? set.value : (spec.default as string));
        if (set) origins.set(id, set.origin);
      } catch (err) {
        if (!(err instanceof ValueError) || !set) throw err;
        errors.push(`${where(set.origin)}: ${address.label} ${name}: ${err.message}; expected ${spec.type.expects}`);
      }
    }
    return out;
  };

  const values: Record<string, unknown> = {};
  const bySection = new Map(sections.map((s) => [s.name, parseSection(sectionAddress(s))]));
  for (const [name, parsed] of bySection) if (name in schema) values[name] = parsed;
  values.registered = new Map([...bySection].filter(([name]) => !(name in schema)));
  const named: Record<string, Map<string, unknown>> = {};
  for (const family of familyNames()) {
    const parsed = new Map<string, unknown>();
    for (const [name, header] of instances.get(family) ?? []) parsed.set(name, parseSection(familyAddress(family, name), header));
    named[family] = parsed;
  }
  values.named = named;

  return { config: values as unknown as Config, sections, files, origins, errors, bySection };
}

/** Where a key lives: a fixed section like [disk] or a named one like [rule "OOMKilling"]. */
interface Address {
  /** As written in messages: [disk] or [rule "OOMKilling"]. */
  label: string;
  /** Prefix of origin ids: disk or rule "OOMKilling". */
  id: string;
  specs: Readonly<Record<string, KeySpec<unknown>>>;
  family?: FamilyName;
  name?: string;
}

function sectionAddress(section: AnySection): Address {
  return { label: `[${section.name}]`, id: section.name, specs: section.keys };
}

function familyAddress(family: FamilyName, name: string): Address {
  return { label: `[${family} "${name}"]`, id: `${family} "${name}"`, specs: familyKeys(family), family, name };
}

function listConfigFiles(dir: string, required: boolean): string[] {
  let dirStat: Stats;
  try {
    dirStat = statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) return [];
    throw new AgentError('CONFIG_UNREADABLE', `${dir}: cannot open config directory: ${messageOf(err)}`, { cause: err });
  }
  if (!dirStat.isDirectory()) {
    throw new AgentError('CONFIG_UNREADABLE', `${dir}: not a directory; point --config-dir at the directory holding *.ini files`);
  }
  checkOwnership(dir, dirStat);
  // Byte order, not locale order, so "10-a.ini" < "20-b.ini" < "B.ini" everywhere.
  return readdirSync(dir)
    .filter((name) => name.endsWith('.ini'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => join(dir, name));
}

/**
 * Refuses files others could have written (like sshd's StrictModes): the config decides which units the
 * agent restarts, so only root (or the user running the agent, for development) may own it.
 */
export function checkOwnership(path: string, st: Stats): void {
  const uid = process.getuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== uid) {
    throw new AgentError('CONFIG_INSECURE', `${path}: owned by uid ${st.uid}, not root; refusing it (chown root ${path})`);
  }
  if ((st.mode & 0o022) !== 0) {
    const mode = (st.mode & 0o777).toString(8);
    throw new AgentError(
      'CONFIG_INSECURE',
      `${path}: mode ${mode} lets group or others write it; refusing it (chmod go-w ${path})`,
    );
  }
}

/**
 * checkOwnership for a file that can run code or set conditions, and for the directory holding it
 * (whoever may write the directory may swap the file). A root-owned sticky directory such as /tmp lets
 * nobody else replace root's files in it. Throws the stat error when the file cannot be examined.
 */
export function checkFileOwnership(path: string, st: Stats = statSync(path)): void {
  checkOwnership(path, st);
  const dir = dirname(path);
  const dirStat = statSync(dir);
  if (!(dirStat.uid === 0 && (dirStat.mode & 0o1000) !== 0)) checkOwnership(dir, dirStat);
}

interface IniEntry {
  address: Address;
  /** Undefined for a section header. */
  key: string | undefined;
  value: string;
  line: number;
}

function* scanIni(file: string, content: string, sections: ReadonlyMap<string, AnySection>, errors: string[]): Generator<IniEntry> {
  const seen = new Map<string, number>();
  let address: Address | undefined;
  let sectionLine = 0;
  const lines = content.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    const at = `${file}:${lineNo}`;

    const header = /^\[([^\]]*)\]$/.exec(line);
    if (header) {
      address = parseHeader((header[1] as string).trim(), at, sections, errors);
      sectionLine = lineNo;
      if (address) yield { address, key: undefined, value: '', line: lineNo };
      continue;
    }

    const eq = line.indexOf('=');
    if (eq <= 0) {
      errors.push(`${at}: expected "key = value" or "[section]", got "${line}"`);
      continue;
    }
    const key = line.slice(0, eq).trim();
    if (sectionLine === 0) {
      errors.push(`${at}: key "${key}" comes before any [section]`);
      continue;
    }
    if (address === undefined) continue; // already reported the bad header
    if (!(key in address.specs)) {
      errors.push(`${at}: unknown key "${key}" in ${address.label}${suggest(key, Object.keys(address.specs))}`);
      continue;
    }
    const id = `${address.id}.${key}`;
    const previous = seen.get(id);
    if (previous !== undefined) {
      errors.push(`${at}: ${address.label} ${key} is set twice in this file (first on line ${previous}); keep one`);
      continue;
    }
    seen.set(id, lineNo);
    const raw = line.slice(eq + 1).trim();
    let value = raw;
    if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) {
      try {
        value = String(JSON.parse(raw));
      } catch (err) {
        errors.push(`${at}: ${address.label} ${key}: bad quoted value (${messageOf(err)}); leave it unquoted or escape it as in JSON`);
        continue;
      }
    }
    yield { address, key, value, line: lineNo };
  }
}

function parseHeader(text: string, at: string, sections: ReadonlyMap<string, AnySection>, errors: string[]): Address | undefined {
  const named = /^([a-z_]+)\s+"([^"]+)"$/.exec(text);
  if (named) {
    const [, family, name] = named as unknown as [string, string, string];
    if ((familyNames() as string[]).includes(family)) return familyAddress(family as FamilyName, name);
    errors.push(`${at}: unknown named section [${family} "…"]${suggest(family, familyNames())}`);
    return undefined;
  }
  const section = sections.get(text);
  if (section) return sectionAddress(section);
  errors.push(`${at}: unknown section [${text}]${suggest(text, [...sections.keys(), ...familyNames().map((f) => `${f} "<name>"`)])}`);
  return undefined;
}

function crossChecks(
  config: Config,
  sections: readonly AnySection[],
  bySection: ReadonlyMap<string, Record<string, unknown>>,
  origins: Map<string, Origin>,
): string[] {
  const errors: string[] = [];
  const at = (...ids: string[]): string => {
    const origin = ids.map((id) => origins.get(id)).find((o) => o !== undefined);
    return origin ? `${where(origin)}: ` : '';
  };
  if (config.coordination.kubeconfig && config.coordination.token_file) {
    errors.push(`${at('coordination.token_file', 'coordination.kubeconfig')}[coordination] sets both kubeconfig and token_file; set one of them`);
  }
  for (const section of sections) {
    const { name } = section;
    const values = bySection.get(name) ?? {};
    for (const [low, high] of section.ordered ?? []) {
      if ((values[low] as number) <= (values[high] as number)) continue;
      // Show the values as written (85%, 256Mi), not as parsed.
      const shown = (key: string) => origins.get(`${name}.${key}`)?.text ?? section.keys[key]?.default;
      errors.push(`${at(`${name}.${low}`, `${name}.${high}`)}[${name}] ${low} (${shown(low)}) must not exceed ${high} (${shown(high)})`);
    }
    for (const e of section.check?.(values) ?? []) errors.push(`${at(...e.keys.map((k) => `${name}.${k}`))}[${name}] ${e.message}`);
  }
  return errors;
}

/** Orders "file:line: …" messages as they appear in the merged files, so the first error is read first. */
function inFileOrder(errors: string[], files: string[]): string[] {
  const key = (e: string): [number, number] => {
    const file = files.findIndex((f) => e.startsWith(`${f}:`));
    const line = file < 0 ? 0 : Number(/^:(\d+)/.exec(e.slice((files[file] as string).length))?.[1] ?? 0);
    return [file, line];
  };
  return errors
    .map((e) => ({ e, k: key(e) }))
    .sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1])
    .map(({ e }) => e);
}

function where(origin: Origin): string {
  return `${origin.file}:${origin.line}`;
}

function suggest(word: string, candidates: string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 2))
    ? `; did you mean "${best}"?`
    : `; valid: ${candidates.join(', ')}`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}
