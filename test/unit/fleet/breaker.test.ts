// The breaker's arithmetic: max(floor, percentage), new nodes left out, slot holders not counted.
import t from 'tap';
import { judge, type NodeLite } from '../../../src/repair/fleet/breaker';

const now = Date.parse('2026-01-01T12:00:00Z');
const old = '2025-12-01T00:00:00Z';

function node(name: string, ready: string, extra: Record<string, string> = {}, created = old): NodeLite {
  return {
    metadata: { name, creationTimestamp: created },
    status: { conditions: [{ type: 'Ready', status: ready }, ...Object.entries(extra).map(([type, status]) => ({ type, status }))] },
  };
}

const policy = { maxNodes: 2, maxPercent: 10, conditions: ['KernelDeadlock'], graceMs: 600_000 };

t.test('a small pool heals: the absolute floor, not the percentage, decides', async (t) => {
  const pool = [node('a', 'False'), node('b', 'True', { KernelDeadlock: 'True' }), node('c', 'True')];
  const v = judge(pool, policy, new Set(), now);
  t.same(v, { tripped: false, total: 3, unhealthy: ['a', 'b'], allowed: 2 });
  t.equal(judge(pool, { ...policy, maxNodes: 0, maxPercent: 20 }, new Set(), now).tripped, true, 'a percentage alone: 20 % of 3 is no node');
});

t.test('a large cluster: the percentage decides', async (t) => {
  const nodes = Array.from({ length: 100 }, (_, i) => node(`n${i}`, i < 11 ? 'Unknown' : 'True'));
  const v = judge(nodes, policy, new Set(), now);
  t.equal(v.allowed, 10);
  t.equal(v.unhealthy.length, 11);
  t.equal(v.tripped, true, '11 of 100 is more than 10 %');
  const ten = nodes.map((n, i) => (i === 0 ? node('n0', 'True') : n));
  t.equal(judge(ten, policy, new Set(), now).tripped, false, '10 of 100 is not');
  t.equal(judge(nodes.slice(1), policy, new Set(), now).tripped, true, '10 of 99 is: 10 % of 99 rounds down to 9');
});

t.test('conditions: Ready missing or not True, or a watched condition True', async (t) => {
  const v = judge(
    [
      { metadata: { name: 'no-status', creationTimestamp: old } },
      node('other-true', 'True', { SomethingElse: 'True' }),
      node('watched-false', 'True', { KernelDeadlock: 'False' }),
      node('watched-true', 'True', { KernelDeadlock: 'True' }),
    ],
    policy,
    new Set(),
    now,
  );
  t.same(v.unhealthy, ['no-status', 'watched-true']);
});

t.test('nodes still joining are not counted; slot holders count in the total but not as unhealthy', async (t) => {
  const young = new Date(now - 60_000).toISOString();
  const nodes = [node('new1', 'False', {}, young), node('new2', 'False', {}, young), node('held', 'False'), node('x', 'False'), node('y', 'True')];
  const v = judge(nodes, policy, new Set(['held']), now);
  t.equal(v.total, 3, 'the two young nodes are left out');
  t.same(v.unhealthy, ['x'], 'the node being repaired is not counted');
});
