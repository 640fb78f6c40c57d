// node-problem-detector's own system-log-monitor configs, loaded unmodified from its Go module.
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../../src/sections';
import { loadNpdConfig } from '../../../src/sources/rules/npd-config';
import { LogMonitor } from '../../../src/sources/rules/log-monitor';
import { buildRuleSet } from '../../../src/sources/rules/rule-set';
import { npdModuleDir } from '../../helpers/npd-module';
import { configDir } from '../../helpers/tmp';

function npdConfigDir(): string {
  return join(npdModuleDir(), 'config');
}

t.test("NPD's shipped kernel, readonly and systemd monitors load and behave as in NPD", async (t) => {
  const dir = npdConfigDir();
  const kernel = loadNpdConfig(join(dir, 'kernel-monitor.json'));
  t.same(kernel.source.matches, ['_TRANSPORT=kernel', 'SYSLOG_FACILITY=0'], 'kmsg: what the kernel printed, not what a process wrote to /dev/kmsg');
  t.equal(kernel.source.name, 'npd:kernel-monitor');
  t.equal(kernel.source.lookbackMs, 5 * 60_000);
  t.ok(kernel.conditions.some((c) => c.type === 'KernelDeadlock' && c.reason === 'KernelHasNoDeadlock'));
  const systemd = loadNpdConfig(join(dir, 'systemd-monitor.json'));
  t.same(systemd.source.matches, ['SYSLOG_IDENTIFIER=systemd', '_PID=1'], 'journald source systemd: only what PID 1 sent');
  t.ok(loadNpdConfig(join(dir, 'readonly-monitor.json')).source.rules.length > 0);

  const seen: string[] = [];
  const m = new LogMonitor(kernel.source, new Map(kernel.conditions.map((c) => [c.type, c])), {
    event: (e) => seen.push(`event ${e.reason}`),
    condition: (c) => seen.push(`${c.type}=${c.status} ${c.reason}`),
  }, '');
  for (const message of ['INFO: task docker:20744 blocked for more than 120 seconds.', 'divide error: 0000 [#1] PREEMPT SMP NOPTI']) {
    m.process({ message, realtimeUs: 1, bootId: '' });
  }
  t.same(seen.sort(), ['KernelDeadlock=True DockerHung', 'event TaskHung'], "NPD's own rules, with NPD's blind spot for newer oops wording");
});

t.test('listed in the ini, NPD configs join the rule set; mistakes name the file and JSON path', async (t) => {
  const dir = npdConfigDir();
  const cfg = configDir({ 'a.ini': `[journal]\nnpd_configs = ${join(dir, 'kernel-monitor.json')}\n` });
  const set = buildRuleSet(loadAgentConfig(cfg));
  t.ok(set.sources.some((s) => s.name === 'npd:kernel-monitor'));
  t.ok(set.conditions.has('CperHardwareErrorFatal'));

  const bad = join(configDir({}), 'bad.json');
  const write = (doc: unknown) => writeFileSync(bad, JSON.stringify(doc));
  write({ plugin: 'filelog', source: 'x', rules: [] });
  t.throws(() => loadNpdConfig(bad), /bad\.json: plugin: "filelog" is not supported/);
  write({ plugin: 'kmsg', source: 'x', conditions: [], rules: [{ type: 'temporary', reason: 'R', pattern: '(?=x)' }] });
  t.throws(() => loadNpdConfig(bad), /bad\.json: rules\[0\]\.pattern: invalid RE2 pattern/);
  write({ plugin: 'kmsg', source: 'x', conditions: [], rules: [{ type: 'permanent', condition: 'Nope', reason: 'R', pattern: 'x' }] });
  t.throws(() => loadNpdConfig(bad), /rules\[0\]\.condition: "Nope" is not in "conditions"/);
  writeFileSync(bad, '{ not json');
  t.throws(() => loadNpdConfig(bad), /bad\.json: cannot load node-problem-detector config/);
});

t.test('an NPD config with a lookback of months loads unmodified: no timer waits on lookback or delay', async (t) => {
  const file = join(configDir({}), 'long.json');
  writeFileSync(file, JSON.stringify({ plugin: 'kmsg', source: 'x', lookback: '12966h', delay: '1000h', conditions: [], rules: [] }));
  const { source } = loadNpdConfig(file);
  t.equal(source.lookbackMs, 12966 * 3_600_000);
  t.equal(source.delayMs, 1000 * 3_600_000);
});

t.test('an NPD log config must be root-owned and not group/world-writable, nor its directory', async (t) => {
  const dir = configDir({});
  const file = join(dir, 'systemd-monitor.json');
  writeFileSync(file, JSON.stringify({ plugin: 'journald', pluginConfig: { source: 'systemd' }, source: 's', conditions: [], rules: [] }), { mode: 0o644 });
  t.ok(loadNpdConfig(file), 'root-owned, 0644: loaded');
  const refused = (expected: string) => t.throws(() => loadNpdConfig(file), { code: 'CONFIG_INSECURE', message: expected });

  chmodSync(file, 0o664);
  refused(`${file}: mode 664 lets group or others write it; refusing it (chmod go-w ${file})`);
  chmodSync(file, 0o644);
  chownSync(file, 4321, 0);
  refused(`${file}: owned by uid 4321, not root; refusing it (chown root ${file})`);
  chownSync(file, 0, 0);
  chmodSync(dir, 0o777);
  refused(`${dir}: mode 777 lets group or others write it; refusing it (chmod go-w ${dir})`);
  chmodSync(dir, 0o755);

  // Through the ini, as the daemon and `config check` load it.
  chmodSync(file, 0o666);
  const cfg = configDir({ 'a.ini': `[journal]\nnpd_configs = ${file}\n` });
  t.throws(() => buildRuleSet(loadAgentConfig(cfg)), { message: new RegExp(`^${file}: mode 666 lets group or others write it`) });
});

t.test('ini rule mistakes: bad pattern, unknown source, missing condition, with file:line', async (t) => {
  const cfg = configDir({
    'a.ini': [
      '[source "kernel"]', 'matches = _TRANSPORT=kernel', '',
      '[rule "Bad"]', 'source = kernel', 'reason = X', 'pattern = (unclosed', '',
      '[rule "Orphan"]', 'source = kmsg', 'reason = X', 'pattern = x', '',
      '[rule "NoCond"]', 'source = kernel', 'kind = permanent', 'reason = X', 'pattern = x', '',
    ].join('\n'),
  });
  const err = (() => {
    try {
      buildRuleSet(loadAgentConfig(cfg));
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  })();
  t.match(err, /a\.ini:7: \[rule "Bad"\] pattern: invalid RE2 pattern "\(unclosed"/);
  t.match(err, /a\.ini:10: \[rule "Orphan"\] source: no enabled \[source "kmsg"\] \(enabled sources: kernel\)/);
  t.match(err, /a\.ini:16: \[rule "NoCond"\] condition: a permanent rule needs an enabled \[condition "…"\]/);
});
