// Time from a hung and from a crashed containerd to detection and to a healthy runtime again, over
// repeated trials with the installed agent in a box, and the agent's CPU and memory while it watches.
// Figures go to the test output (docs/repair.md keeps a run with the shipped defaults).
//   NHA_MEASURE_TRIALS   trials of each kind (default 3)
//   NHA_MEASURE_DEFAULTS 1: the shipped [containerd] settings (a hang trial then takes over 2 minutes);
//                        otherwise scaled down: interval 2s, timeout 1s, failure_duration 2s, cooldown 2s
//   NHA_MEASURE_IDLE     seconds of idle watching for the CPU figure (default 20)
import t from 'tap';
import { AGENT_UNIT, lastCondition, RepairNode, type Rec } from './repair-harness';

const TRIALS = Number(process.env.NHA_MEASURE_TRIALS ?? 3);
const DEFAULTS = process.env.NHA_MEASURE_DEFAULTS === '1';
const IDLE_S = Number(process.env.NHA_MEASURE_IDLE ?? 20);
const CLK_TCK = 100;

const settings = DEFAULTS
  ? { interval: 10_000, timeout: 5_000, failure: 60_000, cooldown: 60_000 }
  : { interval: 2_000, timeout: 1_000, failure: 2_000, cooldown: 2_000 };

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function row(name: string, values: number[]): string {
  return `${name.padEnd(28)} p50 ${String(percentile(values, 50)).padStart(6)} ms   p99 ${String(percentile(values, 99)).padStart(6)} ms   (${values.join(', ')})`;
}

const at = (recs: Rec[], pred: (r: Rec) => boolean): number | undefined => recs.find(pred)?.t;

t.test(`detection and recovery, ${TRIALS} trials each (${DEFAULTS ? 'shipped defaults' : 'scaled settings'})`, async (t) => {
  const node = await RepairNode.up(t, 'nha-measure');
  await node.box.check(['systemctl', 'start', 'containerd']);
  const s = (ms: number) => `${ms / 1000}s`;
  await node.install(`
[kubelet]
enabled = false
[containerd]
${DEFAULTS ? '' : `interval = ${s(settings.interval)}\ntimeout = ${s(settings.timeout)}\nfailure_duration = ${s(settings.failure)}\ncooldown = ${s(settings.cooldown)}`}
backoff = 1s
backoff_max = 1s
max_repairs = 100
repair_window = 1m
`);
  await node.untilHealthy(['containerd'], 30_000);

  const uptimeMs = async () => {
    const { InactiveExitTimestampMonotonic: mono } = await node.show('containerd', 'InactiveExitTimestampMonotonic');
    const now = Number((await node.box.check(['cat', '/proc/uptime'])).split(' ')[0]) * 1000;
    return now - Number(mono) / 1000;
  };
  const perTrial = settings.cooldown + settings.failure + settings.interval + settings.timeout + 30_000;

  t.test('hang (SIGSTOP)', { timeout: TRIALS * perTrial + 60_000 }, async (t) => {
    const detect: number[] = [];
    const healthy: number[] = [];
    for (let i = 0; i < TRIALS; i++) {
      // Past the cooldown, then a random phase against the probe interval.
      const wait = Math.max(0, settings.cooldown - (await uptimeMs())) + Math.random() * settings.interval;
      await new Promise((r) => setTimeout(r, wait));
      const pid = (await node.show('containerd', 'MainPID')).MainPID as string;
      const t0 = Date.now();
      await node.box.check(['kill', '-STOP', pid]);
      const recs = await node.waitFor(
        'restarted and healthy',
        (r) => r.some((x) => x.reason === 'ContainerdRestarted') && lastCondition(r, 'ContainerRuntimeUnhealthy')?.status === 'False',
        perTrial,
        t0,
      );
      const seen = at(recs, (r) => r.type === 'ContainerRuntimeUnhealthy' && r.status === 'True') ?? NaN;
      detect.push(seen - t0);
      healthy.push((at(recs, (r) => r.type === 'ContainerRuntimeUnhealthy' && r.status === 'False' && r.t >= seen) ?? NaN) - t0);
    }
    t.comment(row('hang → detected', detect));
    t.comment(row('hang → healthy again', healthy));
    const bound = settings.interval * 1.1 + settings.timeout + 1000;
    t.ok(Math.max(...detect) <= bound, `every hang detected within interval + timeout (${bound} ms)`);
    t.ok(Math.min(...healthy) >= settings.failure, 'never repaired before failure_duration');
  });

  t.test('crash (kill -9, Restart=no)', async (t) => {
    await node.sh('mkdir -p /run/systemd/system/containerd.service.d && printf "[Service]\\nRestart=no\\n" > /run/systemd/system/containerd.service.d/no-restart.conf && systemctl daemon-reload');
    const detect: number[] = [];
    const healthy: number[] = [];
    for (let i = 0; i < TRIALS; i++) {
      await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1000));
      const pid = (await node.show('containerd', 'MainPID')).MainPID as string;
      const t0 = Date.now();
      await node.box.check(['kill', '-KILL', pid]);
      const recs = await node.waitFor(
        'started and healthy',
        (r) => r.some((x) => x.reason === 'ContainerdStarted') && lastCondition(r, 'ContainerRuntimeUnhealthy')?.status === 'False',
        30_000,
        t0,
      );
      const seen = at(recs, (r) => r.type === 'ContainerRuntimeUnhealthy' && r.status === 'True') ?? NaN;
      detect.push(seen - t0);
      healthy.push((at(recs, (r) => r.type === 'ContainerRuntimeUnhealthy' && r.status === 'False' && r.t >= seen) ?? NaN) - t0);
    }
    t.comment(row('crash → detected', detect));
    t.comment(row('crash → healthy again', healthy));
    t.ok(Math.max(...detect) < 1000, 'every crash seen within a second, independent of the probe interval');
  });

  t.test(`CPU and memory while watching (${IDLE_S} s idle)`, { timeout: IDLE_S * 1000 + 60_000 }, async (t) => {
    const pid = (await node.show(AGENT_UNIT, 'MainPID')).MainPID as string;
    const cpu = async () => {
      const fields = (await node.box.check(['cat', `/proc/${pid}/stat`])).split(') ')[1]?.split(' ') ?? [];
      // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12 after the command name).
      return (Number(fields[11]) + Number(fields[12])) * (1000 / CLK_TCK);
    };
    const before = await cpu();
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const usedMs = (await cpu()) - before;
    const rss = /VmRSS:\s+(\d+) kB/.exec(await node.box.check(['cat', `/proc/${pid}/status`]))?.[1];
    const runtime = (await node.box.check(['/usr/lib/node-health-agent/node', '--version'])).trim();
    // The whole daemon: besides containerd it runs the shipped host probes and journal rules.
    t.comment(
      `watching containerd every ${s(settings.interval)}: ${usedMs} ms CPU in ${IDLE_S} s ` +
        `(${((usedMs / (IDLE_S * 1000)) * 100).toFixed(2)} % of one core, ${((usedMs / IDLE_S) * 60 / 1000).toFixed(2)} s per minute); RSS ${Math.round(Number(rss) / 1024)} MB (the whole agent, Node ${runtime})`,
    );
    t.ok(usedMs / (IDLE_S * 1000) < 0.05, 'under 5 % of a core');
  });
});
