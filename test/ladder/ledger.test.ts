// The ladder's ledger on a real file: runs and steps survive a reopen (as after a reboot), a torn last
// line from a crash is dropped, the open run is found, and a write that cannot be made stops the step.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LADDER_LEDGER_FILE, LadderLedger, LadderLedgerError } from '../../src/repair/ladder/ledger';

function stateDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-ladder-ledger-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const begin = { condition: 'KernelDeadlock', since: '2026-11-25T07:00:00Z', dryRun: false, steps: ['cordon', 'drain', 'reboot'] as const, lease: 'node-health/slot-0', bootId: 'b1' };

t.test('a run and its steps survive a reopen; the open run is found', async (t) => {
  const dir = stateDir(t);
  const a = LadderLedger.open(dir);
  const run = a.begin({ ...begin, steps: [...begin.steps] });
  a.intent(run.id, 'cordon', 'b1');
  a.outcome(run.id, 'cordon', { result: 'done', detail: 'cordoned the node', durationMs: 12 });
  a.intent(run.id, 'reboot', 'b1');

  const b = LadderLedger.open(dir);
  t.same(b.warnings, []);
  const open = b.unfinished();
  t.equal(open?.id, run.id);
  t.same(open?.done.map((s) => [s.step, s.bootId, s.outcome?.result]), [
    ['cordon', 'b1', 'done'],
    ['reboot', 'b1', undefined],
  ]);
  b.outcome(run.id, 'reboot', { result: 'done', detail: 'booted again', durationMs: 30_000 });
  b.end(run.id, 'repaired', 'fine');
  t.equal(b.unfinished(), undefined, 'an ended run is not open');
  const again = LadderLedger.open(dir);
  t.equal(again.lastRun('KernelDeadlock')?.end?.result, 'repaired');
  t.equal(again.lastRun('DiskFull'), undefined);
  t.equal(again.recent(5).length, 1);
});

t.test('a torn last line (a crash mid-write) is dropped and the file repaired', async (t) => {
  const dir = stateDir(t);
  const a = LadderLedger.open(dir);
  const run = a.begin({ ...begin, steps: [...begin.steps] });
  a.intent(run.id, 'cordon', 'b1');
  const file = join(dir, LADDER_LEDGER_FILE);
  appendFileSync(file, '{"kind":"outcome","run":"');
  const b = LadderLedger.open(dir);
  t.match(b.warnings, [/dropped an incomplete last line/]);
  t.equal(b.step(run.id, 'cordon')?.outcome, undefined, 'the cordon is still open');
  t.ok(readFileSync(file, 'utf8').endsWith('\n'), 'the torn line is cut off the file');
  t.same(LadderLedger.open(dir).warnings, [], 'and a second open finds nothing wrong');
});

t.test('a corrupt or foreign line is skipped and named', async (t) => {
  const dir = stateDir(t);
  const file = join(dir, LADDER_LEDGER_FILE);
  appendFileSync(file, 'garbage\n{"kind":"intent","run":"nope","step":"cordon","at":"x","bootId":"b"}\n');
  const l = LadderLedger.open(dir);
  t.match(l.warnings, [/:1: not a JSON record/, /:2: record of unknown run nope/]);
});

t.test('a ledger that cannot be written stops the step with the file named', async (t) => {
  const dir = stateDir(t);
  const l = LadderLedger.open(dir);
  // The state directory gone and a file in its place: no write can succeed, even as root.
  rmSync(dir, { recursive: true });
  writeFileSync(dir, '');
  t.throws(() => l.begin({ ...begin, steps: [...begin.steps] }), LadderLedgerError);
  t.throws(() => l.begin({ ...begin, steps: [...begin.steps] }), new RegExp(`${LADDER_LEDGER_FILE}: cannot write the ladder ledger .*no ladder step is taken without it`));
  t.equal(l.unfinished(), undefined, 'nothing is remembered that is not on disk');
});

t.test('an outcome for a step that never began is refused', async (t) => {
  const dir = stateDir(t);
  const l = LadderLedger.open(dir);
  const run = l.begin({ ...begin, steps: [...begin.steps] });
  t.throws(() => l.outcome(run.id, 'drain', { result: 'done', detail: '', durationMs: 0 }), /has no drain step/);
  t.throws(() => l.intent('nope', 'cordon', 'b1'), /no run nope/);
});

t.test('the file is compacted to the last 200 runs once it holds 400, keeping an open run', async (t) => {
  const dir = stateDir(t);
  const l = LadderLedger.open(dir);
  for (let i = 0; i < 400; i++) {
    const r = l.begin({ ...begin, condition: `C${i}`, steps: ['cordon'] });
    l.end(r.id, 'repaired', 'fine');
  }
  const open = l.begin({ ...begin, steps: ['cordon'] });
  l.intent(open.id, 'cordon', 'b1');
  const last = l.begin({ ...begin, condition: 'Last', steps: ['cordon'] });
  l.end(last.id, 'failed', 'compacts now');
  const lines = readFileSync(join(dir, LADDER_LEDGER_FILE), 'utf8').split('\n').filter((x) => x !== '');
  t.equal(lines.filter((x) => x.includes('"kind":"begin"')).length, 200, 'the last 200 runs are kept');
  const again = LadderLedger.open(dir);
  t.same(again.warnings, []);
  t.equal(again.unfinished()?.id, open.id, 'the open run survives the compaction');
  t.equal(again.lastRun('C0'), undefined, 'the oldest are gone');
  t.equal(again.lastRun('C399')?.end?.result, 'repaired');
  t.equal(again.lastRun('Last')?.end?.detail, 'compacts now');
});
