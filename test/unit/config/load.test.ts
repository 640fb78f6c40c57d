import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { settingsOf, type Config } from '../../../src/config/schema';
import { loadAgentConfig, registeredSections } from '../../../src/sections';
import { diskSection } from '../../../src/sources/probes/disk';
import { errorOf } from '../../helpers/errors';
import { configDir } from '../../helpers/tmp';

const disk = (config: Config) => settingsOf(config, diskSection);

t.test('an absent default directory means defaults; a named one must exist', async (t) => {
  const { config, files } = loadAgentConfig('/nonexistent/node-health');
  t.same(files, []);
  t.equal(disk(config).interval, 30_000);
  t.equal(disk(config).space_critical, 95);
  const err = errorOf(() => loadAgentConfig('/nonexistent/node-health', { required: true }));
  t.equal(err.code, 'CONFIG_UNREADABLE');
  t.match(err.message, '/nonexistent/node-health');
});

t.test('files merge in byte order, later files win key by key', async (t) => {
  const dir = configDir({
    '10-base.ini': '[disk]\ninterval = 10s\nspace_warning = 70%\n',
    '20-site.ini': '[disk]\ninterval = 2m\n',
    'README': 'not an ini file, ignored\n',
  });
  const { config, files, origins } = loadAgentConfig(dir);
  t.same(files, [join(dir, '10-base.ini'), join(dir, '20-site.ini')]);
  t.equal(disk(config).interval, 120_000);
  t.equal(disk(config).space_warning, 70);
  t.same(origins.get('disk.interval'), { file: join(dir, '20-site.ini'), line: 2, text: '2m' });
});

t.test('an unknown key names file:line and the nearest valid key', async (t) => {
  const dir = configDir({ 'a.ini': '; comment\n[disk]\nspace_warnig = 80%\n' });
  const err = errorOf(() => loadAgentConfig(dir));
  t.equal(err.code, 'CONFIG_INVALID');
  t.equal(err.message, `${join(dir, 'a.ini')}:3: unknown key "space_warnig" in [disk]; did you mean "space_warning"?`);
});

t.test('an unknown section is named with a suggestion', async (t) => {
  const dir = configDir({ 'a.ini': '[dsk]\nenabled = true\n' });
  t.match(errorOf(() => loadAgentConfig(dir)).message, /a\.ini:1: unknown section \[dsk\]; did you mean "disk"\?/);
});

t.test('a key set twice in one file is an error naming both lines', async (t) => {
  const dir = configDir({ 'a.ini': '[disk]\ninterval = 10s\n\ninterval = 20s\n' });
  t.match(errorOf(() => loadAgentConfig(dir)).message, /a\.ini:4: \[disk\] interval is set twice in this file \(first on line 2\)/);
});

t.test('bad values name the file, line, key and what is expected; all errors are reported', async (t) => {
  const dir = configDir({ 'a.ini': '[disk]\ninterval = soon\nspace_warning = 120%\nenabled = maybe\n' });
  const lines = errorOf(() => loadAgentConfig(dir)).message.split('\n');
  t.equal(lines.length, 3);
  t.match(lines[0], /a\.ini:2: \[disk\] interval: "soon" is not a duration/);
  t.match(lines[1], /a\.ini:3: \[disk\] space_warning: 120% is above the maximum 100%/);
  t.match(lines[2], /a\.ini:4: \[disk\] enabled: "maybe" is not a boolean/);
});

t.test('ranges: an interval below its minimum and warning above critical are refused', async (t) => {
  t.match(errorOf(() => loadAgentConfig(configDir({ 'a.ini': '[disk]\ninterval = 10ms\n' }))).message, /below the minimum 1s/);
  t.match(
    errorOf(() => loadAgentConfig(configDir({ 'a.ini': '[disk]\nspace_warning = 99%\n' }))).message,
    /a\.ini:2: \[disk\] space_warning \(99%\) must not exceed space_critical \(95%\)/,
  );
});

t.test('lines that are not key = value are errors; keys before a section too', async (t) => {
  t.match(errorOf(() => loadAgentConfig(configDir({ 'a.ini': 'interval = 1s\n' }))).message, /a\.ini:1: key "interval" comes before any \[section\]/);
  t.match(errorOf(() => loadAgentConfig(configDir({ 'a.ini': '[disk]\njunk\n' }))).message, /a\.ini:2: expected "key = value"/);
});

t.test('files others can write are refused like sshd StrictModes', async (t) => {
  const dir = configDir({ 'a.ini': '[disk]\n' });
  chmodSync(join(dir, 'a.ini'), 0o666);
  const err = errorOf(() => loadAgentConfig(dir));
  t.equal(err.code, 'CONFIG_INSECURE');
  t.match(err.message, /a\.ini: mode 666 lets group or others write it; refusing it \(chmod go-w/);
  chmodSync(join(dir, 'a.ini'), 0o644);
  chmodSync(dir, 0o777);
  t.match(errorOf(() => loadAgentConfig(dir)).message, /mode 777 lets group or others write it/);
});

t.test('values are verbatim (patterns keep ; # and backslashes); quoted values are JSON-decoded', async (t) => {
  const dir = configDir({
    'a.ini': '[agent]\nstate_dir = "/var/lib/x y"\n[rule "X"]\nsource = kernel\nreason = X\npattern = error: \\[#\\d+\\] a;b \\\\\n',
  });
  const { config } = loadAgentConfig(dir);
  t.equal(config.agent.state_dir, '/var/lib/x y');
  t.equal(config.named.rule.get('X')?.pattern, 'error: \\[#\\d+\\] a;b \\\\');
  const bad = configDir({ 'a.ini': '[agent]\nlog_level = debug ; chatty\n' });
  t.match(errorOf(() => loadAgentConfig(bad)).message, /a\.ini:2: \[agent\] log_level: "debug ; chatty" is not one of/);
});

t.test('named sections: merged across files, required keys named with file:line', async (t) => {
  const dir = configDir({
    '10-a.ini': '[rule "OOM"]\nsource = kernel\nreason = OOMKilling\npattern = Killed process\n',
    '20-b.ini': '[rule "OOM"]\nenabled = false\n\n[rule "Half"]\nsource = kernel\n',
  });
  const err = errorOf(() => loadAgentConfig(dir));
  t.match(err.message, /20-b\.ini:4: \[rule "Half"\] reason is required/);
  t.match(err.message, /20-b\.ini:4: \[rule "Half"\] pattern is required/);

  const ok = configDir({
    '10-a.ini': '[rule "OOM"]\nsource = kernel\nreason = OOMKilling\npattern = Killed process\n',
    '20-b.ini': '[rule "OOM"]\nenabled = false\n',
  });
  const { config, origins } = loadAgentConfig(ok);
  t.match(config.named.rule.get('OOM'), { enabled: false, reason: 'OOMKilling', kind: 'temporary' });
  t.equal(origins.get('rule "OOM".enabled')?.line, 2);
  t.match(errorOf(() => loadAgentConfig(configDir({ 'a.ini': '[rul "x"]\n' }))).message, /unknown named section \[rul "…"\]; did you mean "rule"\?/);
  t.match(errorOf(() => loadAgentConfig(configDir({ 'a.ini': '[rule "x"]\npatern = a\n' }))).message, /a\.ini:2: unknown key "patern" in \[rule "x"\]; did you mean "pattern"\?/);
});

t.test('the shipped etc/ files load and document every key with its default', async (t) => {
  const shipped = join(__dirname, '../../../etc');
  const { config, sections } = loadAgentConfig(shipped, { required: true });
  t.equal(disk(config).enabled, true);
  const text = readFileSync(join(shipped, 'node-health.ini'), 'utf8');
  t.ok(sections.length > registeredSections().length, 'the agent\'s sections and the registered ones');
  for (const { name: section, keys } of sections) {
    t.match(text, `[${section}]`, `section [${section}] is shipped`);
    for (const [name, spec] of Object.entries(keys)) {
      t.match(text, `;${name} = ${spec.default}\n`, `[${section}] ${name} shows its default`);
    }
  }
});

t.test("a duration beyond the timer limit is refused at load, naming file:line, key and the maximum", async (t) => {
  const msg = errorOf(() => loadAgentConfig(configDir({ 'a.ini': '[disk]\n\ninterval = 30d\n' }))).message;
  t.match(msg, /a\.ini:3: \[disk\] interval: 720h is above the maximum 2147483647ms \(about 24\.8 days/);
  // The largest value a timer takes is still accepted.
  t.equal(disk(loadAgentConfig(configDir({ 'a.ini': '[disk]\ninterval = 2147483647ms\n' })).config).interval, 2 ** 31 - 1);
  // A source's lookback is a span to read back over, not a wait: no timer limit.
  const long = loadAgentConfig(configDir({ 'a.ini': '[source "k"]\nmatches = _TRANSPORT=kernel\nlookback = 400d\n' }));
  t.equal(long.config.named.source.get("k")?.lookback, 400 * 86_400_000);
});
