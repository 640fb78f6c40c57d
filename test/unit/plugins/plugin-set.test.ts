// Plugins declared in the ini files and NPD configs listed there: what they become, and every mistake
// reported with its file:line (or file and JSON path). Plugins others could have written are refused.
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../../src/sections';
import { buildPluginSet } from '../../../src/sources/plugins/plugin-set';
import { errorOf } from '../../helpers/errors';
import { configDir } from '../../helpers/tmp';
import { pluginDir } from './support';

const build = (ini: string) => buildPluginSet(loadAgentConfig(configDir({ 'a.ini': ini })));

t.test('[plugin] sections become one group with the [plugins] settings', async (t) => {
  const dir = pluginDir(t);
  const set = build(
    [
      '[plugins]', 'concurrency = 2', 'timeout = 4s', 'max_output_length = 120', 'skip_initial_status = true', '',
      '[plugin "ntp"]', `path = ${dir}/say.sh`, 'args = ["0", "ntp, ok"]', 'condition = NTPProblem', 'reason = NTPIsDown',
      'ok_reason = NTPIsUp', 'ok_message = ntp service is up', 'interval = 1m', '',
      '[plugin "ntp-event"]', `path = ${dir}/say.sh`, 'kind = temporary', 'reason = NTPIsDown', '',
      '[plugin "off"]', 'enabled = false', `path = ${dir}/say.sh`, 'reason = X', '',
    ].join('\n'),
  );
  t.equal(set.groups.length, 1);
  t.match(set.groups[0], { fromIni: true, concurrency: 2, maxOutputLength: 120, skipInitialStatus: true, messageChangeUpdates: false, cwd: '/' });
  t.same(
    set.groups[0]?.rules.map((r) => [r.id, r.label, r.kind, r.condition, r.args, r.timeoutMs, r.intervalMs]),
    [
      ['plugin/ntp', '[plugin "ntp"]', 'permanent', 'NTPProblem', ['0', 'ntp, ok'], 4000, 60_000],
      ['plugin/ntp-event', '[plugin "ntp-event"]', 'temporary', '', [], 4000, 30_000],
    ],
  );
  t.match(set.conditions, [{ type: 'NTPProblem', reason: 'NTPIsUp', message: 'ntp service is up' }]);
  t.equal(set.killGraceMs, 1000);
});

t.test('[plugins] enabled = false loads nothing', async (t) => {
  const set = build('[plugins]\nenabled = false\nnpd_configs = /nonexistent.json\n\n[plugin "x"]\npath = /bin/true\nreason = X\n');
  t.same(set.groups, []);
  t.same(set.conditions, []);
});

t.test('a plugin that does not exist yet is not a config error (it is reported when it runs)', async (t) => {
  const set = build('[plugin "later"]\npath = /opt/not/there.sh\nkind = temporary\nreason = Later\n');
  t.equal(set.groups[0]?.rules[0]?.path, '/opt/not/there.sh');
});

t.test('ini mistakes name file:line', async (t) => {
  const dir = pluginDir(t);
  const err = errorOf(() =>
    build(
      [
        '[plugin "nocond"]', `path = ${dir}/say.sh`, 'reason = X', '',
        '[plugin "tempcond"]', `path = ${dir}/say.sh`, 'kind = temporary', 'condition = C', 'reason = X', '',
        '[plugin "half"]', `path = ${dir}/say.sh`, 'condition = C', 'reason = X', 'ok_reason = Fine', '',
        '[plugin "nodefault"]', `path = ${dir}/say.sh`, 'condition = Lonely', 'reason = X', '',
        '[plugin "a"]', `path = ${dir}/say.sh`, 'condition = D', 'reason = X', 'ok_reason = A', 'ok_message = a', '',
        '[plugin "b"]', `path = ${dir}/say.sh`, 'condition = D', 'reason = X', 'ok_reason = B', 'ok_message = b', '',
      ].join('\n'),
    ),
  );
  t.equal(err.code, 'CONFIG_INVALID');
  const lines = err.message.split('\n');
  t.match(lines, [
    /a\.ini:2: \[plugin "nocond"\] condition: a permanent plugin needs condition = <NodeCondition type>/,
    /a\.ini:8: \[plugin "tempcond"\] condition: a temporary plugin sends events and sets no condition/,
    /a\.ini:15: \[plugin "half"\] ok_reason and ok_message: set both or neither/,
    /a\.ini:33: \[plugin "b"\] condition D is False with "B", "b", but \S+a\.ini:26 says "A", "a"/,
    /a\.ini:19: \[plugin "nodefault"\] condition: Lonely needs its reason and message while False: set ok_reason and ok_message/,
  ]);
  t.match(errorOf(() => build('[plugin "x"]\npath = /bin/true\nreason = X\nargs = --flag\n')).message, /a\.ini:4: \[plugin "x"\] args: --flag is not a JSON array of strings/);
  t.match(errorOf(() => build('[plugin "x"]\nreason = X\n')).message, /a\.ini:1: \[plugin "x"\] path is required/);
});

t.test('plugins others could have written are refused, naming the plugin and what to do', async (t) => {
  const dir = pluginDir(t);
  const section = (path: string) => `[plugin "p"]\npath = ${path}\nkind = temporary\nreason = X\n`;

  chmodSync(join(dir, 'say.sh'), 0o775);
  let err = errorOf(() => build(section(join(dir, 'say.sh'))));
  t.equal(err.code, 'CONFIG_INSECURE');
  t.equal(err.message, `[plugin "p"] path: plugin ${dir}/say.sh: mode 775 lets group or others write it; refusing it (chmod go-w ${dir}/say.sh)`);

  chmodSync(join(dir, 'say.sh'), 0o755);
  chownSync(join(dir, 'say.sh'), 4321, 0);
  err = errorOf(() => build(section(join(dir, 'say.sh'))));
  t.equal(err.message, `[plugin "p"] path: plugin ${dir}/say.sh: owned by uid 4321, not root; refusing it (chown root ${dir}/say.sh)`);

  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  writeFileSync(join(open, 'x.sh'), '#!/bin/sh\n', { mode: 0o755 });
  err = errorOf(() => build(section(join(open, 'x.sh'))));
  t.equal(err.message, `[plugin "p"] path: plugin ${open}: mode 777 lets group or others write it; refusing it (chmod go-w ${open})`, 'its directory counts too');

  const json = join(dir, 'npd.json');
  writeFileSync(json, JSON.stringify({ plugin: 'custom', rules: [{ type: 'temporary', reason: 'R', path: './open/x.sh' }] }), { mode: 0o644 });
  err = errorOf(() => build(`[plugins]\nnpd_configs = ${json}\nnpd_root = ${dir}\n`));
  t.equal(err.code, 'CONFIG_INSECURE');
  t.match(err.message, `${json} rules[0] path: plugin ${open}: mode 777`);
});

t.test('NPD configs: conflicting condition defaults and clashing file names are refused', async (t) => {
  const dir = pluginDir(t);
  const write = (name: string, doc: unknown): string => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(doc), { mode: 0o644 });
    return file;
  };
  const cond = (message: string) => ({
    plugin: 'custom',
    conditions: [{ type: 'NTPProblem', reason: 'NTPIsUp', message }],
    rules: [{ type: 'permanent', condition: 'NTPProblem', reason: 'NTPIsDown', path: `${dir}/say.sh` }],
  });
  const a = write('a.json', cond('ntp service is up'));
  const b = write('b.json', cond('ntp is fine'));
  const ok = build(`[plugins]\nnpd_configs = ${a}\n\n[plugin "ini"]\npath = ${dir}/say.sh\ncondition = NTPProblem\nreason = NTPIsDown\nok_reason = NTPIsUp\nok_message = ntp service is up\n`);
  t.equal(ok.groups.length, 2);
  t.equal(ok.conditions.length, 1, 'same defaults: one condition fed by both');
  let err = errorOf(() => build(`[plugins]\nnpd_configs = ${a}, ${b}\n`));
  t.equal(err.message, `${b}: conditions[0]: condition NTPProblem is False with reason "NTPIsUp", message "ntp is fine", but ${a}: conditions[0] says "NTPIsUp", "ntp service is up"; make them the same`);

  mkdirSync(join(dir, 'other'));
  const again = join(dir, 'other', 'a.json');
  writeFileSync(again, JSON.stringify(cond('ntp service is up')), { mode: 0o644 });
  err = errorOf(() => build(`[plugins]\nnpd_configs = ${a}, ${again}\n`));
  t.equal(err.message, `${again}: has the same file name as ${a}; rename one (it names the condition sources)`);
});
