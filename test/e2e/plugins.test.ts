// Custom plugins in a node in a box, under the box's real systemd: the plugin monitor runs as a service
// there (a small program around PluginMonitor, bundled with esbuild), an NPD config's plugin script sets
// and clears its condition, and a plugin that hangs is killed on time with its whole process group and
// leaves no zombie behind (its orphaned child is reaped by the box's systemd).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import t from 'tap';
import type { NodeCondition } from '../../src/types';
import type { PluginRunStatus } from '../../src/sources/plugins/monitor';
import { Box } from '../helpers/box';

const FIXTURES = join(__dirname, '../fixtures/plugins');
const UNIT = 'nha-plugins-e2e';

interface Snapshot {
  stopped: boolean;
  conditions: NodeCondition[];
  events: Array<{ source: string; reason: string; message: string }>;
  status: PluginRunStatus[];
}

interface Proc {
  pid: number;
  pgid: number;
  stat: string;
  comm: string;
}

t.test('plugins under the box systemd: a condition set and cleared, a hanging plugin killed on time without zombies', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'nha-plugins-e2e-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const bundle = join(work, 'monitor.js');
  await build({
    entryPoints: [join(FIXTURES, 'monitor-entry.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
  });
  const npd = join(work, 'ntp.json');
  writeFileSync(
    npd,
    JSON.stringify({
      plugin: 'custom',
      pluginConfig: { invoke_interval: '500ms', timeout: '2s', max_output_length: 80, concurrency: 3 },
      source: 'ntp-custom-plugin-monitor',
      conditions: [{ type: 'NTPProblem', reason: 'NTPIsUp', message: 'ntp service is up' }],
      rules: [{ type: 'permanent', condition: 'NTPProblem', reason: 'NTPIsDown', path: './plugins/from-file.sh', args: ['/run/nha-ntp'] }],
    }),
  );
  const ini = join(work, 'plugins.ini');
  writeFileSync(
    ini,
    [
      '[plugins]', 'npd_configs = /opt/nha-e2e/ntp.json', 'npd_root = /opt/nha-e2e', 'kill_grace = 1s', '',
      '[plugin "hang"]', 'path = /opt/nha-e2e/plugins/hang.sh', 'args = ["/run/nha-hang.pids"]', 'timeout = 1s', 'interval = 1h',
      'condition = PluginHang', 'reason = PluginHung', 'ok_reason = PluginDone', 'ok_message = the plugin finishes in time', '',
    ].join('\n'),
  );

  const box = await Box.up(t, 'plugins');
  await box.check(['install', '-d', '-m', '755', '/opt/nha-e2e', '/opt/nha-e2e/plugins', '/opt/nha-e2e/etc']);
  await box.copyIn(bundle, '/opt/nha-e2e/monitor.js');
  await box.copyIn(npd, '/opt/nha-e2e/ntp.json');
  await box.copyIn(ini, '/opt/nha-e2e/etc/plugins.ini');
  for (const script of ['from-file.sh', 'hang.sh']) await box.copyIn(join(FIXTURES, script), '/opt/nha-e2e/plugins/');
  await box.check(['sh', '-c', 'chmod 755 /opt/nha-e2e/plugins/*.sh && chmod 644 /opt/nha-e2e/ntp.json /opt/nha-e2e/etc/plugins.ini']);
  await box.check(['sh', '-c', 'printf "1\\nntp is down\\n" > /run/nha-ntp']);

  await box.check([
    'systemd-run', `--unit=${UNIT}`, '--property=Type=exec', '--collect',
    process.execPath, '/opt/nha-e2e/monitor.js', '/opt/nha-e2e/etc', '/run/nha-e2e.json',
  ]);
  t.teardown(() => box.exec(['systemctl', 'stop', UNIT]));

  const snapshot = async (): Promise<Snapshot | undefined> => {
    const res = await box.exec(['cat', '/run/nha-e2e.json']);
    return res.code === 0 ? (JSON.parse(res.stdout) as Snapshot) : undefined;
  };
  const waitFor = async (what: string, ok: (s: Snapshot) => boolean, timeoutMs = 15_000): Promise<Snapshot> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = await snapshot();
      if (s && ok(s)) return s;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const condition = (s: Snapshot, type: string) => s.conditions.find((c) => c.type === type);
  const plugin = (s: Snapshot, name: string) => s.status.find((p) => p.plugin === name);

  const set = await waitFor('NTPProblem True', (s) => condition(s, 'NTPProblem')?.status === 'True');
  t.match(condition(set, 'NTPProblem'), { reason: 'NTPIsDown', message: 'ntp is down' });
  await box.check(['sh', '-c', 'printf "0\\n" > /run/nha-ntp']);
  const cleared = await waitFor('NTPProblem False', (s) => condition(s, 'NTPProblem')?.status === 'False');
  t.match(condition(cleared, 'NTPProblem'), { reason: 'NTPIsUp', message: 'ntp service is up' });

  const hung = await waitFor('the hanging plugin to be killed', (s) => plugin(s, 'hang')?.timeouts === 1);
  const run = plugin(hung, 'hang') as PluginRunStatus;
  t.match(run, { lastExit: 'signal SIGKILL', lastStatus: 'unknown', running: false });
  t.ok((run.durationMs as number) >= 1000 && (run.durationMs as number) < 1500, `killed ${run.durationMs} ms after its start (timeout 1s)`);
  t.match(condition(hung, 'PluginHang'), { status: 'Unknown', message: 'timed out after 1s, killed; output: hanging' });

  const [leader, child] = (await box.check(['cat', '/run/nha-hang.pids'])).trim().split(' ').map(Number) as [number, number];
  const procs = async (): Promise<Proc[]> =>
    (await box.check(['ps', '-e', '-o', 'pid=,pgid=,stat=,comm=']))
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .map(([pid, pgid, stat, comm]) => ({ pid: Number(pid), pgid: Number(pgid), stat: stat as string, comm: comm as string }));
  let left: Proc[] = [];
  for (let i = 0; i < 50; i++) {
    left = (await procs()).filter((p) => p.pgid === leader || p.pid === leader || p.pid === child);
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same(left, [], `nothing of the plugin's group (pgid ${leader}: sh ${leader}, sleep ${child}) is left, zombies included`);
  // A zombie lives between a process's exit and its parent's wait; one that stays is a leak.
  let zombies: Proc[] = [];
  for (let i = 0; i < 50; i++) {
    zombies = (await procs()).filter((p) => p.stat.startsWith('Z'));
    if (zombies.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same(zombies, [], 'no zombie anywhere in the box');

  await box.check(['systemctl', 'stop', UNIT]);
  const final = await snapshot();
  t.equal(final?.stopped, true, 'the monitor stopped cleanly on SIGTERM');
  t.equal((await box.exec(['systemctl', 'is-active', UNIT])).stdout.trim(), 'inactive');
});
