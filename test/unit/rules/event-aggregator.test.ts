import t from 'tap';
import { EventAggregator } from '../../../src/sources/rules/event-aggregator';
import type { EventReport } from '../../../src/types';
import { wallClock } from '../../helpers/wall-clock';

const oom = (n: number): EventReport => ({ source: 'journal/kernel/OOM', severity: 'Warning', reason: 'OOMKilling', message: `Killed process ${n}` });

t.test('a flood becomes the first event plus one counted event per window; nothing is lost', async (t) => {
  let now = 0;
  const sent: EventReport[] = [];
  const agg = new EventAggregator(60_000, (e) => sent.push(e), () => now);
  for (let i = 0; i < 5000; i++) agg.report(oom(i));
  t.equal(sent.length, 1, 'the first goes out at once');
  now = 59_999;
  agg.tick();
  t.equal(sent.length, 1);
  now = 60_000;
  agg.tick();
  t.match(sent[1], { count: 4999, message: '4999 more in the last 1m; latest: Killed process 4999' });
  agg.report(oom(5000));
  now = 120_000;
  agg.tick();
  t.match(sent[2], { count: 1 });
  now = 180_000;
  agg.tick();
  t.equal(sent.length, 3, 'a quiet window closes without an event');
  agg.report(oom(6000));
  t.equal(sent.length, 4, 'after a quiet window the next event goes out at once');
  const total = sent.reduce((n, e) => n + (e.count ?? 1), 0);
  t.equal(total, 5002, 'every occurrence is accounted for');
});

t.test('reasons and sources are aggregated separately; flush sends what is pending', async (t) => {
  const sent: EventReport[] = [];
  const agg = new EventAggregator(60_000, (e) => sent.push(e), () => 0);
  agg.report(oom(1));
  agg.report({ ...oom(2), reason: 'TaskHung' });
  agg.report(oom(3));
  t.equal(sent.length, 2);
  agg.flush();
  t.match(sent[2], { reason: 'OOMKilling', count: 1 });
});

t.test('with its own clock, a wall clock stepped back an hour neither holds the repeats nor bursts', async (t) => {
  const clock = wallClock(t);
  const sent: EventReport[] = [];
  const agg = new EventAggregator(200, (e) => sent.push(e));
  agg.report(oom(1));
  clock.step(-3_600_000);
  agg.report(oom(2));
  await new Promise((r) => setTimeout(r, 250));
  agg.tick();
  t.equal(sent.length, 2, 'the window closed on time');
  t.match(sent[1], { count: 1 });
  agg.tick();
  t.equal(sent.length, 2, 'and sent its repeat once');
});
