// The man pages and the bash completion the build writes (dist/man, dist/completion), checked against the
// program and the schema themselves: a command, option or config key added without appearing in them fails
// here. Rendering uses man-db and groff, as `man` on a node does.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Command } from 'commander';
import t from 'tap';
import { families, sectionsOf } from '../../src/config/schema';
import { registeredSections } from '../../src/sections';
import type { KeySpec } from '../../src/config/key';
import { buildProgram } from '../../src/cli/main';

/** Every fixed section in order: the agent's own and those the registry's sources declare. */
const sections = sectionsOf(registeredSections());

const dist = join(__dirname, '../../dist');
const page8 = join(dist, 'man/node-health-agent.8.gz');
const page5 = join(dist, 'man/node-health.ini.5.gz');
const completion = join(dist, 'completion/node-health-agent');

for (const f of [page8, page5, completion]) {
  if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build (scripts/build.mjs writes it)`);
}

/**
 * The page as `man` shows it, in one line: formatting undone, whitespace collapsed, hyphens as ASCII, and
 * a line broken after a hyphen (read-\nonly) joined again.
 */
function rendered(page: string): string {
  const res = spawnSync('man', ['-l', '-Tutf8', page], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8', MANWIDTH: '80', MAN_KEEP_FORMATTING: '' } });
  if (res.error || res.status !== 0) throw new Error(`man -l ${page} failed (${res.error?.message ?? res.stderr}); install man-db and groff-base (scripts/setup.sh)`);
  return flat(res.stdout.replace(/.\x08/g, ''));
}
const flat = (s: string): string => s.replace(/[\u2010\u2212]/g, '-').replace(/\s+/g, ' ').replace(/(\w)- /g, '$1-');

/** Every command with the words that invoke it, walked from the commander objects directly. */
function commands(cmd: Command, path: string[] = []): Array<{ path: string[]; cmd: Command }> {
  return cmd.commands.flatMap((c) => [{ path: [...path, c.name()], cmd: c }, ...commands(c, [...path, c.name()])]);
}

/** Asserts the strings appear in this order, each after the one before. */
function inOrder(t: { ok(value: unknown, message: string): unknown }, text: string, expected: string[], what: string): void {
  let at = 0;
  for (const s of expected) {
    const i = text.indexOf(s, at);
    t.ok(i >= 0, `${what}: "${s}"${i < 0 ? ` not found after …${text.slice(Math.max(0, at - 80), at)}` : ''}`);
    if (i >= 0) at = i + s.length;
  }
}

t.test('node-health-agent(8) documents every command and every option', async (t) => {
  const program = buildProgram();
  const text = rendered(page8);
  const expected: string[] = [];
  for (const { path, cmd } of commands(program)) {
    const args = cmd.registeredArguments.map((a) => `${a.required ? '<' : '['}${a.name()}${a.variadic ? '...' : ''}${a.required ? '>' : ']'}`);
    expected.push(`node-health-agent ${[...path, ...args].join(' ')} ${flat(cmd.description())}`);
    for (const a of cmd.registeredArguments) expected.push(`${a.name()} ${flat(a.description)}`);
    for (const o of cmd.options) expected.push(`${o.flags} ${flat(o.description)}`);
  }
  t.ok(commands(program).length >= 6, 'the program has its commands');
  inOrder(t, text, expected, 'command or option');
  inOrder(t, text, ['OPTIONS', ...program.options.map((o) => `${o.flags} ${o.description}`), 'EXIT STATUS'], 'program option');
});

t.test('node-health.ini(5) documents every section and key with its default', async (t) => {
  const text = rendered(page5);
  const expected: string[] = [];
  const add = (header: string, keys: Record<string, KeySpec<unknown>>) => {
    expected.push(header);
    for (const [name, spec] of Object.entries(keys)) {
      const value = spec.default === undefined ? '(required)' : spec.default === '' ? '(empty)' : `= ${flat(spec.default)}`;
      expected.push(`${name} ${value} ${flat(spec.doc)} Value: ${spec.type.expects}.`);
    }
  };
  for (const { name, keys } of sections) add(`[${name}]`, keys);
  for (const [family, keys] of Object.entries(families)) add(`[${family} "name"]`, keys as Record<string, KeySpec<unknown>>);
  t.ok(expected.length > 200, `${expected.length} sections and keys`);
  inOrder(t, text, expected, 'section or key');
});

t.test('both pages render without a warning from groff or man', async (t) => {
  for (const page of [page8, page5]) {
    // What lintian runs for its manpage checks.
    const res = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', '-Tutf8', '-Z', page], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C.UTF-8', MANROFFSEQ: '', MANWIDTH: '80' },
    });
    t.equal(res.status, 0, `man renders ${page}`);
    t.equal(res.stderr, '', `no warnings for ${page}`);
    const source = gunzipSync(readFileSync(page)).toString('latin1');
    t.notMatch(source, /[^\x00-\x7f]/, 'the roff source is ASCII (other characters are escaped)');
  }
});

// --- completion -----------------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'nha-complete-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
mkdirSync(join(work, 'etc-a'));
mkdirSync(join(work, 'etc-b'));
writeFileSync(join(work, 'extra.ini'), '');

/** What bash offers for the words typed so far (the last one is being completed), run in `work`. */
function complete(words: string[]): string[] {
  const script = [
    `source ${JSON.stringify(completion)}`,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length - 1}`,
    `COMP_LINE='${words.join(' ')}'`,
    '_node_health_agent',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const res = spawnSync('bash', ['--norc', '--noprofile', '-c', script], { cwd: work, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`bash failed: ${res.stderr}`);
  return res.stdout.split('\n').filter((l) => l !== '').sort();
}

t.test('completion: commands and subcommands as the program defines them', async (t) => {
  const program = buildProgram();
  const top = program.createHelp().visibleCommands(program).map((c) => c.name()).sort();
  t.same(complete(['node-health-agent', '']), top, 'every command, and help');
  t.same(complete(['node-health-agent', 'con']), ['config']);
  const config = program.commands.find((c) => c.name() === 'config');
  t.ok(config);
  t.same(complete(['node-health-agent', 'config', '']), config!.createHelp().visibleCommands(config!).map((c) => c.name()).sort());
});

t.test('completion: every option of every command', async (t) => {
  for (const { path, cmd } of commands(buildProgram())) {
    const flags = cmd.options.flatMap((o) => [o.short, o.long]).filter((f): f is string => f !== undefined);
    t.same(complete(['node-health-agent', ...path, '-']), [...flags, '-h', '--help'].sort(), `${path.join(' ')} -<TAB>`);
  }
  t.same(complete(['node-health-agent', 'status', '--j']), ['--json']);
  t.same(complete(['node-health-agent', '--']), ['--help', '--version']);
});

t.test('completion: config check takes the sections and keys of the schema', async (t) => {
  const disk = ['disk', ...Object.keys(sections.find((s) => s.name === 'disk')?.keys ?? {}).map((k) => `disk.${k}`)].sort();
  t.ok(disk.length > 5, 'the probe\'s section has its keys');
  t.same(complete(['node-health-agent', 'config', 'check', 'disk']), disk);
  t.same(complete(['node-health-agent', 'config', 'check', '--dir', 'etc-a', 'disk.s']), disk.filter((k) => k.startsWith('disk.s')), 'after an option and its value');
  t.same(complete(['node-health-agent', 'config', 'check', 'rule.re']), Object.keys(families.rule).map((k) => `rule.${k}`).filter((k) => k.startsWith('rule.re')).sort(), 'keys of named sections');
  const all = complete(['node-health-agent', 'config', 'check', '']);
  t.equal(all.length, sections.reduce((n, { keys }) => n + 1 + Object.keys(keys).length, 0) + Object.values(families).reduce((n, keys) => n + 1 + Object.keys(keys).length, 0), 'every section and key, once');
});

t.test('completion: paths where an option takes one, nothing else there', async (t) => {
  t.same(complete(['node-health-agent', 'config', 'check', '--dir', '']), ['etc-a', 'etc-b'], 'directories only');
  t.same(complete(['node-health-agent', 'config', 'check', '--dir', '=', '']), ['etc-a', 'etc-b'], '--dir=<TAB>');
  t.same(complete(['node-health-agent', 'diagnose', '-c', 'etc-']), ['etc-a', 'etc-b']);
  t.same(complete(['node-health-agent', 'status', '--socket', '']), ['etc-a', 'etc-b', 'extra.ini'], 'files for --socket');
  t.same(complete(['node-health-agent', 'run', '--node-name', '']), [], 'no guesses for a name');
  // The option's value is not taken for a command: after it, the command's own options follow.
  t.same(complete(['node-health-agent', 'diagnose', '--config-dir', 'config', '--']), ['--config-dir', '--help', '--json']);
});
