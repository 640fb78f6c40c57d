// The built CLI as a user runs it.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { configDir } from '../helpers/tmp';

const bin = join(__dirname, '../../dist/node-health-agent.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

t.test('diagnose --json prints one finding per line with the documented fields', async (t) => {
  // A healthy host: no container runtime, kubelet or NTP daemon is expected on the test machine.
  const res = run('diagnose', '--json', '--config-dir', configDir({ 'a.ini': '[containerd]\nenabled = false\n[kubelet]\nenabled = false\n[time_sync]\nenabled = false\n' }));
  t.equal(res.status, 0, res.stdout + res.stderr);
  const findings = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(findings.length >= 2);
  for (const f of findings) {
    t.same(Object.keys(f).sort(), ['check', 'component', 'durationMs', 'message', 'reason', 'severity', 'status', 'subject']);
  }
});

t.test('diagnose exits 1 when a check finds a problem', async (t) => {
  const dir = configDir({ 'zz.ini': '[disk]\nspace_warning = 0%\nspace_critical = 0%\n' });
  const res = run('diagnose', '--config-dir', dir);
  t.equal(res.status, 1);
  t.match(res.stdout, /PROBLEM\s+host\/disk\s+\/\s+DiskSpaceCritical/);
  t.notMatch(res.stdout, /\x1b\[/, 'no colour when stdout is not a terminal');
});

t.test('bad config: one line naming file:line, exit 2, no stack trace', async (t) => {
  const dir = configDir({ '10.ini': '[disk]\ninterval = 5 minutes\n' });
  for (const args of [['diagnose', '--config-dir', dir], ['config', 'check', '--dir', dir]]) {
    const res = run(...args);
    t.equal(res.status, 2);
    t.equal(res.stderr, `node-health-agent: ${dir}/10.ini:2: [disk] interval: "5 minutes" is not a duration (use e.g. 500ms, 30s, 2m, 1h30m); expected a duration like 30s\n`);
  }
});

t.test('config check prints the merged values and where each came from', async (t) => {
  const dir = configDir({ '10.ini': '[disk]\ninterval = 1m\n' });
  const res = run('config', 'check', '--dir', dir);
  t.equal(res.status, 0, res.stderr);
  t.match(res.stdout, `interval = 1m  ; ${dir}/10.ini:2`);
  t.match(res.stdout, 'space_warning = 85%  ; default');
});

t.test('config check with sections or keys prints only those', async (t) => {
  const dir = configDir({ '10.ini': '[disk]\ninterval = 1m\n\n[source "kernel"]\nmatches = _TRANSPORT=kernel\n\n[rule "R"]\nsource = kernel\nreason = R\npattern = x\n' });
  const res = run('config', 'check', '--dir', dir, 'disk.interval', 'memory', 'rule.pattern');
  t.equal(res.status, 0, res.stderr);
  const body = res.stdout.split('\n').slice(1).join('\n');
  t.match(body, new RegExp(`^\n\\[disk\\]\ninterval = 1m  ; ${dir}/10\\.ini:2\n\n\\[memory\\]\nenabled = true  ; default\n`));
  t.match(body, /\n\[rule "R"\]\npattern = x {2}; .*10\.ini:10\n$/);
  t.notMatch(body, /space_warning|\[pressure\]|reason = R/);
  const bad = run('config', 'check', '--dir', dir, 'disk.intervall');
  t.equal(bad.status, 2);
  t.equal(bad.stderr, 'node-health-agent: config check: no such section or key: disk.intervall (use a section like disk or a key like disk.interval)\n');
});

t.test('version and unknown commands', async (t) => {
  t.match(run('version').stdout, /^node-health-agent \d+\.\d+\.\d+\n$/);
  const res = run('frobnicate');
  t.equal(res.status, 2);
  t.match(res.stderr, "unknown command 'frobnicate'");
});
