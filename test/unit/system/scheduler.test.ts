import t from 'tap';
import { Scheduler } from '../../../src/system/scheduler';

t.test('tasks repeat on their interval with jitter and never overlap themselves', async (t) => {
  const scheduler = new Scheduler(() => 0.5);
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  scheduler.start(
    [
      {
        name: 'slow',
        intervalMs: 10,
        run: async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((r) => setTimeout(r, 30)); // longer than the interval
          running--;
          runs++;
        },
      },
    ],
    0,
  );
  const keepAlive = setTimeout(() => undefined, 1000);
  await new Promise((r) => setTimeout(r, 200));
  scheduler.stop();
  clearTimeout(keepAlive);
  const seen = runs;
  t.ok(seen >= 3, `ran ${seen} times`);
  t.equal(maxRunning, 1, 'a run never overlaps the previous one');
  await new Promise((r) => setTimeout(r, 100));
  t.ok(runs <= seen + 1, 'nothing new starts after stop');
});

t.test('first runs are spread over the first delay window', async (t) => {
  const draws = [0.1, 0.9];
  const scheduler = new Scheduler(() => draws.shift() ?? 0.5);
  const started: Record<string, number> = {};
  const t0 = Date.now();
  const task = (name: string) => ({ name, intervalMs: 10_000, run: async () => void (started[name] = Date.now() - t0) });
  const keepAlive = setTimeout(() => undefined, 1000);
  scheduler.start([task('a'), task('b')], 300);
  await new Promise((r) => setTimeout(r, 400));
  scheduler.stop();
  clearTimeout(keepAlive);
  t.ok((started.a as number) < 100, `a after ${started.a} ms`);
  t.ok((started.b as number) >= 250, `b after ${started.b} ms`);
});

t.test('an interval at the timer limit plus jitter does not fire at once', async (t) => {
  // Jitter 1.1 × (2^31-1) ms is past Node's timer limit, where setTimeout would fire after 1 ms.
  const scheduler = new Scheduler(() => 1);
  let runs = 0;
  scheduler.start([{ name: 'long', intervalMs: 2 ** 31 - 1, run: async () => void runs++ }], 0);
  const keepAlive = setTimeout(() => undefined, 1000);
  await new Promise((r) => setTimeout(r, 300));
  scheduler.stop();
  clearTimeout(keepAlive);
  t.equal(runs, 1, `ran ${runs} times: the first run, then a wait, not a busy loop`);
});
