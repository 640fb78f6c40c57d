// node-problem-detector's own custom-plugin-monitor configs, loaded unmodified from its Go module, and
// the mistakes a config can hold, each named by file and JSON path.
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AgentError } from '../../../src/errors';
import { loadNpdPluginConfig, NPD_DEFAULTS, parseGoDuration } from '../../../src/sources/plugins/npd-config';
import { configDir } from '../../helpers/tmp';
import { npdModuleDir } from './support';

t.test("every custom-plugin config NPD ships loads, with NPD's defaults and paths resolved against its root", async (t) => {
  const root = npdModuleDir();
  const dir = join(root, 'config');
  const custom = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    // By text: one of NPD's filelog configs is not valid JSON (trailing commas) and is none of ours.
    .filter((f) => /"plugin"\s*:\s*"custom"/.test(readFileSync(join(dir, f), 'utf8')));
  t.ok(custom.length >= 10, `${custom.length} custom-plugin configs: ${custom.join(', ')}`);
  for (const f of custom) {
    const group = loadNpdPluginConfig(join(dir, f), { root });
    t.ok(group.rules.length > 0, `${f}: ${group.rules.length} rules`);
  }

  const ntp = loadNpdPluginConfig(join(dir, 'custom-plugin-monitor.json'), { root });
  t.match(ntp, {
    name: 'custom-plugin-monitor',
    source: 'ntp-custom-plugin-monitor',
    cwd: root,
    concurrency: 3,
    maxOutputLength: 80,
    messageChangeUpdates: false,
    skipInitialStatus: false,
    conditions: [{ type: 'NTPProblem', reason: 'NTPIsUp', message: 'ntp service is up' }],
  });
  t.same(
    ntp.rules.map((r) => [r.id, r.kind, r.condition, r.reason, r.path, r.timeoutMs, r.intervalMs]),
    [
      ['plugin/custom-plugin-monitor/rules[0]', 'temporary', '', 'NTPIsDown', join(root, 'config/plugin/check_ntp.sh'), 3000, 30_000],
      ['plugin/custom-plugin-monitor/rules[1]', 'permanent', 'NTPProblem', 'NTPIsDown', join(root, 'config/plugin/check_ntp.sh'), 3000, 30_000],
    ],
  );

  const kubelet = loadNpdPluginConfig(join(dir, 'health-checker-kubelet.json'), { root });
  t.match(kubelet, { concurrency: 1, rules: [{ path: '/home/kubernetes/bin/health-checker', timeoutMs: 180_000, intervalMs: 10_000 }] });
  t.same(kubelet.rules[0]?.args.slice(0, 2), ['--component=kubelet', '--enable-repair=true']);
  t.equal(loadNpdPluginConfig(join(dir, 'iptables-mode-monitor.json'), { root }).rules[0]?.intervalMs, 86_400_000);
});

t.test('defaults apply when pluginConfig says nothing', async (t) => {
  const dir = configDir({});
  const file = join(dir, 'bare.json');
  writeFileSync(file, JSON.stringify({ plugin: 'custom', rules: [{ type: 'temporary', reason: 'R', path: '/bin/true' }] }));
  const group = loadNpdPluginConfig(file, { root: '/' });
  t.match(group, {
    name: 'bare',
    source: 'bare',
    concurrency: NPD_DEFAULTS.concurrency,
    maxOutputLength: 80,
    rules: [{ timeoutMs: 5000, intervalMs: 30_000, args: [] }],
  });
});

t.test("Go durations as NPD's time.ParseDuration reads them", async (t) => {
  t.equal(parseGoDuration('86400s'), 86_400_000);
  t.equal(parseGoDuration('1h30m'), 5_400_000);
  t.equal(parseGoDuration('1.5s'), 1500);
  t.equal(parseGoDuration('.5s'), 500);
  t.equal(parseGoDuration('300ms'), 300);
  t.equal(parseGoDuration('2500us'), 2.5);
  t.equal(parseGoDuration('0'), 0);
  for (const bad of ['', '5', '5x', 's', '1d', '-5s', '5s ']) t.throws(() => parseGoDuration(bad), bad);
});

t.test('mistakes name the file and the JSON path', async (t) => {
  const dir = configDir({});
  const file = join(dir, 'bad.json');
  const errorOf = (doc: unknown): AgentError => {
    writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    try {
      loadNpdPluginConfig(file, { root: '/' });
    } catch (err) {
      if (err instanceof AgentError) return err;
      throw err;
    }
    throw new Error('no error');
  };
  const rule = { type: 'temporary', reason: 'R', path: '/bin/true' };
  const cases: Array<[unknown, RegExp]> = [
    ['{ nope', /bad\.json: not valid JSON: /],
    [[], /bad\.json: \(top level\): expected an object/],
    [{ plugin: 'kmsg', rules: [] }, /bad\.json: plugin: "kmsg" is not "custom": only custom-plugin-monitor configs belong in \[plugins\] npd_configs \(system-log-monitor configs go in \[journal\] npd_configs\)/],
    [{ plugin: 'custom', pluginConfig: { timeout: '5 seconds' }, rules: [] }, /bad\.json: pluginConfig\.timeout: "5 seconds" is not a Go duration/],
    [{ plugin: 'custom', pluginConfig: { invoke_interval: '0s' }, rules: [] }, /bad\.json: pluginConfig\.invoke_interval: "0s" must be longer than 0/],
    [{ plugin: 'custom', pluginConfig: { invoke_interval: '720h' }, rules: [] }, /bad\.json: pluginConfig\.invoke_interval: 720h is above the maximum 2147483647ms/],
    [{ plugin: 'custom', pluginConfig: { concurrency: 0 }, rules: [] }, /pluginConfig\.concurrency: expected a whole number of at least 1/],
    [{ plugin: 'custom', pluginConfig: { max_output_length: '80' }, rules: [] }, /pluginConfig\.max_output_length: expected a whole number of at least 0/],
    [{ plugin: 'custom', pluginConfig: { skip_initial_status: 'yes' }, rules: [] }, /pluginConfig\.skip_initial_status: expected true or false/],
    [{ plugin: 'custom', rules: {} }, /bad\.json: rules: expected an array/],
    [{ plugin: 'custom', rules: [{ ...rule, type: 'sometimes' }] }, /rules\[0\]\.type: expected "temporary" or "permanent"/],
    [{ plugin: 'custom', rules: [{ ...rule, path: '' }] }, /rules\[0\]\.path: expected a non-empty string/],
    [{ plugin: 'custom', rules: [rule, { ...rule, args: ['a', 1] }] }, /rules\[1\]\.args: expected an array of strings/],
    [{ plugin: 'custom', rules: [{ ...rule, timeout: '10s' }] }, /rules\[0\]\.timeout: 10s exceeds pluginConfig\.timeout \(5s\); NPD refuses a rule timeout above the global one/],
    [{ plugin: 'custom', rules: [{ ...rule, type: 'permanent', condition: 'X' }] }, /rules\[0\]\.condition: "X" has no default in "conditions"/],
    [{ plugin: 'custom', conditions: [{ type: 'X', reason: 'R' }], rules: [] }, /conditions\[0\]\.message: expected a non-empty string/],
  ];
  for (const [doc, expected] of cases) {
    const err = errorOf(doc);
    t.equal(err.code, 'CONFIG_INVALID');
    t.match(err.message, expected);
  }
});

t.test('a config file others could write, or in a directory they could write, is refused', async (t) => {
  const dir = configDir({});
  const file = join(dir, 'open.json');
  writeFileSync(file, JSON.stringify({ plugin: 'custom', rules: [] }));
  chmodSync(file, 0o666);
  t.throws(() => loadNpdPluginConfig(file, { root: '/' }), {
    code: 'CONFIG_INSECURE',
    message: `${file}: mode 666 lets group or others write it; refusing it (chmod go-w ${file})`,
  });
  chmodSync(file, 0o644);
  chmodSync(dir, 0o757);
  t.throws(() => loadNpdPluginConfig(file, { root: '/' }), {
    code: 'CONFIG_INSECURE',
    message: `${dir}: mode 757 lets group or others write it; refusing it (chmod go-w ${dir})`,
  }, 'nor its directory, where it could be swapped');
  chmodSync(dir, 0o755);
  t.throws(() => loadNpdPluginConfig(join(dir, 'missing.json'), { root: '/' }), {
    code: 'CONFIG_UNREADABLE',
    message: /missing\.json: cannot read node-problem-detector config: ENOENT/,
  });
});
