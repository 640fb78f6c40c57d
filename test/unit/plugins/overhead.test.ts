// The runner's cost per plugin invocation, from the call until the result (spawned in its own group,
// reaped, output collected), against a bare spawn-and-wait of the same executable. The figures are in
// docs/plugins.md; NODE_HEALTH_PLUGIN_RUNS sets the number of runs (default 300).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { runPlugin } from '../../../src/sources/plugins/runner';
import { pluginDir } from './support';

const RUNS = Number(process.env.NODE_HEALTH_PLUGIN_RUNS ?? 300);

function bare(path: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', () => resolve());
  });
}

interface Figures {
  p50: number;
  p99: number;
  cpuMs: number;
}

const round = (n: number): number => Math.round(n * 100) / 100;

function figures(times: number[], cpuMicros: number): Figures {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);
  return { p50: at(0.5), p99: at(0.99), cpuMs: round(cpuMicros / 1000 / times.length) };
}

/** Runs a and b alternately, so load from elsewhere falls on both alike. */
async function compare(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[Figures, Figures]> {
  for (let i = 0; i < 20; i++) {
    await a();
    await b();
  }
  const times: [number[], number[]] = [[], []];
  const cpu = [0, 0];
  for (let i = 0; i < RUNS; i++) {
    for (const [k, run] of [a, b].entries()) {
      const c = process.cpuUsage();
      const start = performance.now();
      await run();
      times[k]?.push(performance.now() - start);
      const used = process.cpuUsage(c);
      cpu[k] = (cpu[k] as number) + used.user + used.system;
    }
  }
  return [figures(times[0], cpu[0] as number), figures(times[1], cpu[1] as number)];
}

t.test(`runner overhead per invocation over ${RUNS} runs`, async (t) => {
  const dir = pluginDir(t);
  const spec = { cwd: '/', timeoutMs: 5000, killGraceMs: 1000, maxOutputLength: 80 };
  for (const [label, path, args] of [
    ['/usr/bin/true', '/usr/bin/true', []],
    ['say.sh (sh script printing a line)', join(dir, 'say.sh'), ['0', 'ok']],
  ] as Array<[string, string, string[]]>) {
    const reaped: number[] = [];
    const [base, ours] = await compare(
      () => bare(path, args),
      async () => {
        const out = await runPlugin({ ...spec, path, args });
        if (out.status !== 'ok') throw new Error(`${label}: ${out.exit} ${out.output}`);
        reaped.push(out.durationMs);
      },
    );
    const spawnToReap = figures(reaped, 0);
    t.comment(
      `${label}: runner p50 ${ours.p50} ms, p99 ${ours.p99} ms (spawn to reaped p50 ${spawnToReap.p50} ms, p99 ${spawnToReap.p99} ms), ` +
        `agent CPU ${ours.cpuMs} ms/run; bare spawn p50 ${base.p50} ms, p99 ${base.p99} ms, CPU ${base.cpuMs} ms/run; ` +
        `runner adds ${round(ours.p50 - base.p50)} ms at p50`,
    );
    // What the runner adds (stat checks, its own session and group, a group kill after the exit) stays
    // small next to starting a process at all.
    t.ok(ours.p50 - base.p50 < 3, `${label}: runner adds ${round(ours.p50 - base.p50)} ms at p50`);
  }
});
