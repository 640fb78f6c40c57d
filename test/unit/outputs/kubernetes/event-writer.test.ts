// The event writer against a fake events API that keeps what it stores, so that exactly-once can be counted:
// answers lost after the write landed, refusals while a restarted API server warms up, permanent refusals,
// and the queue overflowing while an Event is being written.
import t from 'tap';
import { KubeApiError, KubeError } from '../../../../src/outputs/kubernetes/errors';
import { EventWriter, MAX_QUEUE, REFUSED_RETRY_MS, type EventsApi } from '../../../../src/outputs/kubernetes/event-writer';
import type { EventObject } from '../../../../src/outputs/kubernetes/types';
import { recordingLogger } from '../../../kubernetes/support';

interface Stored {
  name: string;
  reason: string;
  message: string;
  count: number;
}

/** An events API over a Map; `fault` may fail a call before or after it is applied. */
class FakeEvents implements EventsApi {
  readonly stored = new Map<string, Stored>();
  calls: string[] = [];
  /** Called for every request; may throw before the write (`before`) or after it landed (`after`). */
  fault: (verb: string, n: number) => { before?: Error; after?: Error } | undefined = () => undefined;
  gate: Promise<void> | undefined;

  async create(event: Record<string, unknown>): Promise<EventObject> {
    const metadata = event.metadata as { name: string; namespace: string };
    const f = this.begin('create');
    if (this.gate) await this.gate;
    if (f?.before) throw f.before;
    if (this.stored.has(metadata.name)) throw new KubeApiError(409, 'AlreadyExists', `events "${metadata.name}" already exists`, 'POST: 409');
    this.stored.set(metadata.name, { name: metadata.name, reason: String(event.reason), message: String(event.message), count: Number(event.count) });
    if (f?.after) throw f.after;
    return { metadata, count: Number(event.count) };
  }

  async patch(name: string, body: Record<string, unknown>): Promise<EventObject> {
    const f = this.begin('patch');
    if (f?.before) throw f.before;
    const e = this.stored.get(name);
    if (!e) throw new KubeApiError(404, 'NotFound', `events "${name}" not found`, 'PATCH: 404');
    e.count = Number(body.count);
    if (f?.after) throw f.after;
    return { metadata: { name, namespace: 'default' }, count: e.count };
  }

  total(): number {
    let n = 0;
    for (const e of this.stored.values()) n += e.count;
    return n;
  }

  private begin(verb: string) {
    this.calls.push(verb);
    return this.fault(verb, this.calls.length);
  }
}

const lost = () => new KubeError('UNREACHABLE', 'cannot reach the API server (socket hang up)');
const forbidden = (msg = 'events "x" is forbidden: not yet ready to handle request') => new KubeApiError(403, 'Forbidden', msg, 'POST: 403');

function writer(api: EventsApi, over: { now?: () => number; burst?: number } = {}) {
  const log = recordingLogger();
  const w = new EventWriter(api, {
    burst: over.burst ?? 10,
    refillMs: 60_000,
    retryMaxMs: 20,
    component: 'node-health-agent',
    namespace: 'default',
    log,
    identity: () => ({ nodeName: 'n1', nodeNameSource: 'flag' }),
    ...(over.now ? { now: over.now } : {}),
  });
  w.setNode({ name: 'n1', uid: 'u1' });
  return { w, log };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const ev = (reason: string, message = 'm') => ({ source: 'test', severity: 'Warning' as const, reason, message });

t.test('a create whose answer is lost after it was stored is written once, not again under a new name', async (t) => {
  const api = new FakeEvents();
  api.fault = (verb, n) => (verb === 'create' && n === 1 ? { after: lost() } : undefined);
  const { w } = writer(api);
  t.teardown(() => w.stop());
  w.event(ev('TaskHung'));
  await until('the event sent', () => w.status().sent === 1);
  t.same(api.calls, ['create', 'create'], 'retried once, and the retry was answered AlreadyExists');
  t.equal(api.stored.size, 1, 'one Event stored');
  t.equal(api.total(), 1);
  t.equal(w.status().queued, 0);

  // The repeat patches the one Event: the writer knows its name although the create's answer was lost.
  w.event(ev('TaskHung'));
  await until('the repeat sent', () => w.status().sent === 2);
  t.equal(api.stored.size, 1);
  t.equal([...api.stored.values()][0]?.count, 2, 'count 2 on the one Event');
});

t.test('a count patch whose answer is lost is repeated with the same absolute count', async (t) => {
  const api = new FakeEvents();
  const { w } = writer(api);
  t.teardown(() => w.stop());
  w.event(ev('OOMKilling'));
  await until('the first sent', () => w.status().sent === 1);
  api.fault = (verb) => (verb === 'patch' && api.calls.filter((c) => c === 'patch').length === 1 ? { after: lost() } : undefined);
  w.event(ev('OOMKilling'));
  await until('the repeat sent', () => w.status().sent === 2);
  t.same(api.calls, ['create', 'patch', 'patch']);
  t.equal(api.total(), 2, 'count 2, not 3');
});

t.test('403 while a restarted API server warms up: retried with back-off, then written once', async (t) => {
  const api = new FakeEvents();
  api.fault = (_verb, n) => (n <= 4 ? { before: forbidden() } : undefined);
  const { w, log } = writer(api);
  t.teardown(() => w.stop());
  for (const r of ['A', 'B', 'C']) w.event(ev(r));
  await until('all three sent', () => w.status().sent === 3);
  t.equal(api.calls.length, 7, 'four refusals of the first, then three creates');
  t.same([...api.stored.values()].map((e) => e.reason), ['A', 'B', 'C'], 'none lost, in order');
  t.equal(w.status().failed, 0);
  t.equal(log.matching(/refused/, 'error').length, 1, 'the refusal logged once');
  t.equal(log.matching(/writing events succeeds again/, 'info').length, 1);
});

t.test('a refusal that lasts: the Event is dropped with a code and counted, then the next refused one at once', async (t) => {
  let skew = 0;
  const api = new FakeEvents();
  // The first four refusals each move the writer's clock 2 minutes on: the 4th is past REFUSED_RETRY_MS.
  api.fault = (_verb, n) => {
    if (n > 5) return undefined;
    if (n <= 4) skew += 2 * 60_000;
    return { before: forbidden('events is forbidden: User "system:node:n1" cannot create resource "events"') };
  };
  const { w, log } = writer(api, { now: () => Date.now() + skew });
  t.teardown(() => w.stop());
  for (const r of ['Doomed', 'Second', 'Last']) w.event(ev(r));
  await until('the last one sent', () => w.status().sent === 1);
  t.ok(3 * 2 * 60_000 >= REFUSED_RETRY_MS, 'the refusals outlast the bound');
  t.equal(api.calls.length, 6, 'four tries of the first, one of the second, one of the last');
  t.equal(w.status().failed, 2, 'both counted as failed');
  const dropped = log.entries.filter((e) => e.fields.code === 'EVENT_DROPPED');
  t.equal(dropped.length, 2);
  t.match(dropped[0]?.message, /dropped Event Doomed .*after 403, refused for 5m/);
  t.match(dropped[1]?.message, /dropped Event Second /);
  t.same([...api.stored.values()].map((e) => e.reason), ['Last'], 'a success ends the refusal: the last one is written');
});

t.test('an invalid Event (422) is dropped at once, not retried', async (t) => {
  const api = new FakeEvents();
  api.fault = (_verb, n) => (n === 1 ? { before: new KubeApiError(422, 'Invalid', 'Event "x" is invalid', 'POST: 422') } : undefined);
  const { w, log } = writer(api);
  t.teardown(() => w.stop());
  w.event(ev('Bad'));
  w.event(ev('Good'));
  await until('the good one sent', () => w.status().sent === 1);
  t.equal(api.calls.length, 2);
  t.equal(w.status().failed, 1);
  t.match(log.entries.find((e) => e.fields.code === 'EVENT_DROPPED')?.message, /after 422, a retry cannot succeed/);
});

t.test('the queue overflowing while an Event is being written: it is neither lost nor counted twice', async (t) => {
  const api = new FakeEvents();
  let release!: () => void;
  api.gate = new Promise((r) => {
    release = r;
  });
  const { w } = writer(api, { burst: 1000 });
  t.teardown(() => w.stop());
  const n = MAX_QUEUE + 5;
  for (let i = 0; i < n; i++) w.event(ev(`R${i}`));
  t.equal(w.status().suppressed, 5, 'the oldest waiting ones gave way');
  api.gate = undefined;
  release();
  await until('every event written', () => api.stored.size === n && w.status().queued === 0 && w.status().held === 0);
  await new Promise((r) => setTimeout(r, 50));
  const reasons = [...api.stored.values()].map((e) => e.reason).sort();
  t.same(reasons, Array.from({ length: n }, (_, i) => `R${i}`).sort(), 'each reason stored once');
  t.equal(api.total(), n);
});
