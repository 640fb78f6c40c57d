import t from 'tap';
import { ConditionConflictError, ConditionTable } from '../../../src/engine/conditions';
import type { ConditionStatus, NodeCondition } from '../../../src/types';

let clock = 0;
const table = (): { table: ConditionTable; changes: NodeCondition[] } => {
  const tbl = new ConditionTable(() => new Date(clock++ * 1000));
  const changes: NodeCondition[] = [];
  tbl.onChange((c) => changes.push(c));
  return { table: tbl, changes };
};
const report = (source: string, status: ConditionStatus, reason = 'Bad', message = 'it broke') => ({
  source,
  type: 'KernelDeadlock',
  status,
  reason,
  message,
});

t.test('a declared condition starts False with its default reason; reports flip it', async (t) => {
  const { table: tbl, changes } = table();
  tbl.declare({ type: 'KernelDeadlock', owner: 'journal', reason: 'KernelHasNoDeadlock', message: 'kernel has no deadlock' });
  t.match(tbl.get('KernelDeadlock'), { status: 'False', reason: 'KernelHasNoDeadlock' });
  tbl.report(report('journal/kernel/DockerHung', 'True', 'DockerHung', 'task docker:7 blocked'));
  t.match(changes, [{ status: 'True', reason: 'DockerHung', message: 'task docker:7 blocked' }]);
  tbl.report(report('journal/kernel/DockerHung', 'False'));
  t.match(tbl.get('KernelDeadlock'), { status: 'False', reason: 'KernelHasNoDeadlock', message: 'kernel has no deadlock' });
  t.equal(changes.length, 2);
});

t.test('worst wins across sources: one source clearing does not hide another still True', async (t) => {
  const { table: tbl, changes } = table();
  tbl.declare({ type: 'KernelDeadlock', owner: 'journal', reason: 'Ok', message: 'ok' });
  tbl.report(report('a', 'True', 'A'));
  tbl.report(report('b', 'True', 'B'));
  tbl.report(report('a', 'False'));
  t.match(tbl.get('KernelDeadlock'), { status: 'True', reason: 'B' });
  tbl.report(report('b', 'Unknown', 'Timeout'));
  t.match(tbl.get('KernelDeadlock'), { status: 'Unknown', reason: 'Timeout' });
  tbl.retainReports((r) => r.source !== 'b');
  t.match(tbl.get('KernelDeadlock'), { status: 'False' });
  t.same(changes.map((c) => `${c.status}:${c.reason}`), ['True:A', 'True:B', 'Unknown:Timeout', 'False:Ok']);
});

t.test('lastTransitionTime changes on a status flip only', async (t) => {
  const { table: tbl } = table();
  tbl.declare({ type: 'KernelDeadlock', owner: 'journal', reason: 'Ok', message: 'ok' });
  tbl.report(report('a', 'True', 'A', 'first'));
  const since = tbl.get('KernelDeadlock')?.lastTransitionTime;
  tbl.report(report('a', 'True', 'A', 'second message'));
  t.equal(tbl.get('KernelDeadlock')?.message, 'second message');
  t.equal(tbl.get('KernelDeadlock')?.lastTransitionTime, since);
});

t.test('hysteresis: N bad in a row to set, M good in a row to clear', async (t) => {
  const { table: tbl } = table();
  tbl.declare({ type: 'KernelDeadlock', owner: 'probes', reason: 'Ok', message: 'ok', setAfter: 3, clearAfter: 2 });
  const seq: Array<[ConditionStatus, ConditionStatus]> = [
    ['True', 'False'], ['True', 'False'], ['False', 'False'], // interrupted: streak restarts
    ['True', 'False'], ['True', 'False'], ['True', 'True'],
    ['False', 'True'], ['True', 'True'], ['False', 'True'], ['False', 'False'],
  ];
  for (const [reported, expected] of seq) {
    tbl.report(report('p', reported));
    t.equal(tbl.get('KernelDeadlock')?.status, expected, `after ${reported}`);
  }
});

t.test('one owner per type; adopted state is kept instead of reset', async (t) => {
  const { table: tbl, changes } = table();
  tbl.declare({ type: 'KernelDeadlock', owner: 'journal', reason: 'Ok', message: 'ok' });
  t.throws(() => tbl.declare({ type: 'KernelDeadlock', owner: 'plugins', reason: 'x', message: 'x' }), ConditionConflictError);
  t.throws(() => tbl.report({ ...report('a', 'True'), type: 'Nope' }), /never declared/);
  tbl.adopt({ type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: 'old', lastTransitionTime: '2026-01-01T00:00:00.000Z' });
  t.match(tbl.get('KernelDeadlock'), { status: 'True', lastTransitionTime: '2026-01-01T00:00:00.000Z' });
  t.same(changes, [], 'adopting is not a change to publish');
  t.same(tbl.retain([]), ['KernelDeadlock']);
  t.same(tbl.conditions(), []);
});

t.test('apply: a type moving to another owner keeps its state; undeclared types are dropped', async (t) => {
  const { table: tbl } = table();
  tbl.apply([
    { type: 'KernelDeadlock', owner: 'journal', reason: 'Ok', message: 'ok' },
    { type: 'NTPProblem', owner: 'plugins', reason: 'Ok', message: 'ok' },
  ]);
  tbl.adopt({ type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: 'old', lastTransitionTime: '2026-01-01T00:00:00.000Z' });
  const { moved, gone } = tbl.apply([{ type: 'KernelDeadlock', owner: '[kernel_taint]', reason: 'Ok', message: 'ok' }]);
  t.same(moved.map((d) => `${d.type} ${d.owner}`), ['KernelDeadlock [kernel_taint]']);
  t.same(gone, ['NTPProblem']);
  t.equal(tbl.ownerOf('KernelDeadlock'), '[kernel_taint]');
  t.match(tbl.get('KernelDeadlock'), { status: 'True', reason: 'DockerHung', lastTransitionTime: '2026-01-01T00:00:00.000Z' });
  t.equal(tbl.get('NTPProblem'), undefined);
});
