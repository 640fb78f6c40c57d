// The repair ledger on a real filesystem: records survive reopening, a torn last line left by a crash
// is dropped, dangling intents are found, dry-run and real actions are counted apart, the file is
// compacted, and an unwritable ledger refuses the action.
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LEDGER_FILE, RepairLedger } from '../../../src/repair/ledger';

function dir(t: { teardown(fn: () => unknown): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'nha-ledger-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const fields = (over: Partial<Parameters<RepairLedger['intent']>[0]> = {}) => ({
  component: 'containerd',
  unit: 'containerd.service',
  action: 'restart' as const,
  dryRun: false,
  reason: 'ContainerdUnresponsive',
  message: 'no answer',
  before: { activeState: 'active', subState: 'running', mainPid: 10, inactiveExitUs: 5 },
  ...over,
});

t.test('intent and outcome are on disk and read back; an intent without outcome is dangling', async (t) => {
  const d = dir(t);
  const ledger = RepairLedger.open(d);
  t.same(ledger.dangling(), []);
  const a = ledger.intent(fields(), new Date('2026-01-01T00:00:00Z'));
  ledger.outcome(a.id, { result: 'done', detail: 'job 7 done', durationMs: 800 });
  const b = ledger.intent(fields({ action: 'start' }), new Date('2026-01-01T00:10:00Z'));
  t.equal((statSync(join(d, LEDGER_FILE)).mode & 0o777).toString(8), '600');

  const again = RepairLedger.open(d);
  t.same(again.warnings, []);
  t.same(again.dangling().map((e) => e.id), [b.id]);
  const recent = again.recent(10);
  t.same(recent.map((e) => e.id), [b.id, a.id], 'newest first');
  t.match(recent[1], { action: 'restart', outcome: { result: 'done', detail: 'job 7 done', durationMs: 800 } });
});

t.test('a torn last line (crash mid-write) is dropped and cut off; a corrupt line is skipped', async (t) => {
  const d = dir(t);
  const ledger = RepairLedger.open(d);
  const a = ledger.intent(fields());
  ledger.outcome(a.id, { result: 'done', detail: '', durationMs: 1 });
  const path = join(d, LEDGER_FILE);
  const good = readFileSync(path, 'utf8');
  appendFileSync(path, 'not json\n{"kind":"intent","id":"x","at":"2026-');
  const again = RepairLedger.open(d);
  t.equal(again.warnings.length, 2);
  t.match(again.warnings[0], /dropped an incomplete last line \(\d+ bytes\) left by a crash/);
  t.match(again.warnings[1], new RegExp(`${LEDGER_FILE}:3: not a JSON record; skipped`));
  t.equal(readFileSync(path, 'utf8'), `${good}not json\n`, 'the torn line is cut from the file');
  t.same(again.dangling(), []);
  const b = again.intent(fields());
  t.same(RepairLedger.open(d).dangling().map((e) => e.id), [b.id], 'appending after the cut gives whole lines');
});

t.test('action times per component, dry-run apart, since a time', async (t) => {
  const ledger = RepairLedger.open(dir(t));
  ledger.intent(fields(), new Date(1000));
  ledger.intent(fields(), new Date(5000));
  ledger.intent(fields({ dryRun: true }), new Date(6000));
  ledger.intent(fields({ component: 'kubelet', unit: 'kubelet.service' }), new Date(7000));
  t.same(ledger.actionTimes('containerd', false, 0), [1000, 5000]);
  t.same(ledger.actionTimes('containerd', false, 2000), [5000]);
  t.same(ledger.actionTimes('containerd', true, 0), [6000]);
  t.same(ledger.actionTimes('kubelet', false, 0), [7000]);
});

t.test('compaction keeps the last 500 actions, written aside and renamed over', async (t) => {
  const d = dir(t);
  const ledger = RepairLedger.open(d);
  let last = '';
  for (let i = 0; i < 1001; i++) {
    const e = ledger.intent(fields(), new Date(i * 1000));
    ledger.outcome(e.id, { result: 'done', detail: String(i), durationMs: 1 });
    last = e.id;
  }
  // Compacted when the 1001st intent made the file pass 2000 lines: 500 actions, then one more line.
  t.equal(readFileSync(join(d, LEDGER_FILE), 'utf8').trim().split('\n').length, 1000);
  const again = RepairLedger.open(d);
  t.equal(again.recent(1)[0]?.id, last);
  t.equal(again.recent(1000).length, 500);
  t.equal(again.actionTimes('containerd', false, -1)[0], 501_000, 'the oldest were dropped');
});

t.test('a ledger that cannot be written refuses the action, naming the file', async (t) => {
  const d = dir(t);
  const ledger = RepairLedger.open(d);
  // Root ignores file modes; a directory where the file should be stops it too.
  mkdirSync(join(d, LEDGER_FILE));
  t.throws(() => ledger.intent(fields()), { name: 'LedgerError', message: /repair-ledger\.jsonl: cannot write the repair ledger .*no repair is made without it/ });
  t.throws(() => ledger.outcome('nope', { result: 'done', detail: '', durationMs: 0 }), /no intent nope to record an outcome for/);
});
