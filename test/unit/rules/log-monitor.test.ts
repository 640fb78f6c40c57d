import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../../src/sections';
import { buildRuleSet } from '../../../src/sources/rules/rule-set';
import { LogMonitor, type LogConditionSpec, type RuleMatch, type RuleSpec } from '../../../src/sources/rules/log-monitor';
import { compilePattern } from '../../../src/sources/rules/pattern';
import type { ConditionReport, EventReport } from '../../../src/types';
import { kernelEntries } from '../../helpers/journal-files';

const BOOT = 'a'.repeat(32);
const MIN = 60_000_000; // µs

function rule(over: Omit<Partial<RuleSpec>, 'pattern' | 'revert'> & { pattern: string; revert?: string }): RuleSpec {
  const { pattern, revert, ...rest } = over;
  const spec: RuleSpec = { name: 'R', kind: 'temporary', condition: '', reason: 'Reason', count: 1, windowMs: 20 * 60_000, ...rest, pattern: compilePattern(pattern) };
  if (revert) spec.revert = compilePattern(revert);
  return spec;
}

function monitor(rules: RuleSpec[], conditions: LogConditionSpec[] = [], bufferSize = 10) {
  const events: EventReport[] = [];
  const reports: ConditionReport[] = [];
  const m = new LogMonitor(
    { name: 'kernel', bufferSize, rules },
    new Map(conditions.map((c) => [c.type, c])),
    { event: (e) => events.push(e), condition: (c) => reports.push(c) },
    BOOT,
  );
  let us = 1_700_000_000_000_000;
  const line = (message: string, opts: { bootId?: string; atUs?: number } = {}) => {
    us = opts.atUs ?? us + 1000;
    m.process({ message, realtimeUs: us, bootId: opts.bootId ?? BOOT });
  };
  return { m, events, reports, line, now: () => us };
}

const deadlock: LogConditionSpec = { type: 'KernelDeadlock', reason: 'KernelHasNoDeadlock', message: 'no deadlock', clearOnReboot: true };

t.test('temporary rule: one event per matching line, with the matched text', async (t) => {
  const { events, line } = monitor([rule({ name: 'OOM', reason: 'OOMKilling', pattern: 'Killed process \\d+ .*' })]);
  line('Out of memory: Killed process 12 (a) total-vm:1kB');
  line('unrelated');
  line('Killed process 13 (b)');
  t.same(events.map((e) => [e.source, e.reason, e.message]), [
    ['journal/kernel/OOM', 'OOMKilling', 'Killed process 12 (a) total-vm:1kB'],
    ['journal/kernel/OOM', 'OOMKilling', 'Killed process 13 (b)'],
  ]);
});

t.test('a message is trimmed before matching, as NPD does: a trailing blank does not defeat the end anchor', async (t) => {
  const { events, line } = monitor([rule({ name: 'Hung', reason: 'TaskHung', pattern: 'task .+:\\w+ blocked for more than \\w+ seconds\\.' })]);
  line('INFO: task jbd2/sda1-8:161 blocked for more than 120 seconds. ');
  line('INFO: task kworker/0:1:12 blocked for more than 120 seconds.\t\r');
  line('INFO: task kworker/0:1:12 blocked for more than 120 seconds. (not at the end)');
  t.same(
    events.map((e) => e.message),
    ['task jbd2/sda1-8:161 blocked for more than 120 seconds.', 'task kworker/0:1:12 blocked for more than 120 seconds.'],
  );
});

t.test('permanent rule: sets its condition once per message, a revert pattern clears it', async (t) => {
  const { reports, line } = monitor(
    [rule({ name: 'Hung', kind: 'permanent', condition: 'KernelDeadlock', reason: 'DockerHung', pattern: 'task docker:\\w+ blocked', revert: 'deadlock resolved' })],
    [deadlock],
  );
  line('INFO: task docker:7 blocked');
  line('INFO: task docker:7 blocked');
  t.equal(reports.length, 1, 'a repeated line does not report again (NPD re-emits every time)');
  t.match(reports[0], { source: 'journal/kernel/Hung', type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: 'task docker:7 blocked' });
  line('deadlock resolved');
  t.match(reports[1], { status: 'False' });
});

t.test('permanent rule with a quiet period clears after that long without a match', async (t) => {
  const { reports, line, m, now } = monitor(
    [rule({ name: 'Xfs', kind: 'permanent', condition: 'XfsShutdown', reason: 'XfsHasShutdown', pattern: 'Shutting down filesystem' })],
    [{ type: 'XfsShutdown', reason: 'Ok', message: 'ok', clearOnReboot: false, clearAfterMs: 10 * 60_000 }],
  );
  line('XFS (sdb): Shutting down filesystem');
  m.tick(now() + 9 * MIN);
  t.equal(reports.length, 1);
  m.tick(now() + 10 * MIN);
  t.match(reports[1], { status: 'False' });
});

t.test('lines from an earlier boot do not set a condition that a reboot clears', async (t) => {
  const { reports, events, line } = monitor(
    [
      rule({ name: 'Hung', kind: 'permanent', condition: 'KernelDeadlock', reason: 'DockerHung', pattern: 'task docker:\\w+ blocked' }),
      rule({ name: 'Any', reason: 'TaskHung', pattern: 'task \\S+ blocked' }),
    ],
    [deadlock],
  );
  line('INFO: task docker:7 blocked', { bootId: 'f'.repeat(32) });
  t.same(reports, [], 'no condition from the previous boot');
  t.equal(events.length, 1, 'the event is still reported');
});

t.test('count rule: N matches minus revert matches within the window (NPD log counter)', async (t) => {
  const { reports, line, m, now } = monitor(
    [rule({ name: 'Freq', kind: 'count', condition: 'FrequentKubeletRestart', reason: 'FrequentKubeletRestart', pattern: 'Started kubelet', revert: 'Stopping kubelet', count: 3, windowMs: 20 * 60_000 })],
    [{ type: 'FrequentKubeletRestart', reason: 'NoFrequentKubeletRestart', message: 'ok', clearOnReboot: false }],
  );
  // An admin's restart (stop + start) does not count.
  line('Stopping kubelet');
  line('Started kubelet');
  line('Started kubelet');
  line('Started kubelet');
  t.same(reports, [], '3 starts − 1 stop = 2 < 3');
  line('Started kubelet');
  t.match(reports.at(-1), { status: 'True', reason: 'FrequentKubeletRestart', message: /^3 times within 20m \(threshold 3\); latest: Started kubelet$/ });
  m.tick(now() + 21 * MIN);
  t.match(reports.at(-1), { status: 'False' }, 'the window slid past the matches');
});

t.test('multi-line patterns match across the last lines of the buffer', async (t) => {
  const { events, line } = monitor([rule({ name: 'Two', reason: 'TwoLines', pattern: 'first\\nsecond' })], [], 3);
  line('first');
  line('second');
  line('first');
  line('other');
  line('second');
  t.equal(events.length, 1);
  t.equal(events[0]?.message, 'first\nsecond');
});

t.test('the match hook sees every match, the repeats the outputs are spared included', async (t) => {
  const matches: RuleMatch[] = [];
  const reports: ConditionReport[] = [];
  const m = new LogMonitor(
    {
      name: 'kernel',
      bufferSize: 10,
      rules: [
        rule({ name: 'Hung', kind: 'permanent', condition: 'KernelDeadlock', reason: 'DockerHung', pattern: 'task docker:\\w+ blocked', revert: 'resolved' }),
        rule({ name: 'Net', kind: 'count', condition: 'KernelDeadlock', reason: 'Many', pattern: 'free', count: 2 }),
      ],
    },
    new Map([[deadlock.type, deadlock]]),
    { event: () => {}, condition: (c) => reports.push(c), match: (x) => matches.push(x) },
    BOOT,
  );
  for (const message of ['task docker:7 blocked', 'task docker:7 blocked', 'resolved', 'free', 'free']) {
    m.process({ message, realtimeUs: 1_700_000_000_000_000, bootId: BOOT });
  }
  t.equal(reports.filter((r) => r.source.endsWith('/Hung')).length, 2, 'the outputs: set once, cleared once');
  t.same(
    matches.map((x) => [x.rule.name, x.revert, x.message, x.net]),
    [
      ['Hung', false, 'task docker:7 blocked', undefined],
      ['Hung', false, 'task docker:7 blocked', undefined],
      ['Hung', true, 'resolved', undefined],
      ['Net', false, 'free', 1],
      ['Net', false, '2 times within 20m (threshold 2); latest: free', 2],
    ],
  );
});

t.test('a flood stays cheap: 100k non-matching and matching lines', async (t) => {
  const { events, line } = monitor([
    rule({ name: 'OOM', reason: 'OOMKilling', pattern: 'Killed process \\d+ (.+) total-vm:\\d+kB.*' }),
    rule({ name: 'Cper', reason: 'Cper', pattern: '.*\\[Hardware Error\\]: event severity: fatal$' }),
  ]);
  for (let i = 0; i < 100_000; i++) line(i % 2 ? `Killed process ${i} (x) total-vm:1kB` : `eth0: link up ${i}`);
  t.equal(events.length, 50_000);
});

t.test('temporary rule with repeat_window: the same line again within it is one event, another line is not', async (t) => {
  const { events, line, now } = monitor([rule({ name: 'OOM', reason: 'OOMKilling', pattern: 'Killed process \\d+ .*', repeatWindowMs: 60_000 })]);
  // A memory.oom.group kill: the victim as chosen, then again as a member of the group, then another member.
  line('Memory cgroup out of memory: Killed process 666 (sh) total-vm:1kB');
  line('Tasks in /kubepods.slice/x.scope are going to be killed due to memory.oom.group set');
  line('Memory cgroup out of memory: Killed process 666 (sh) total-vm:1kB');
  line('Memory cgroup out of memory: Killed process 667 (sleep) total-vm:1kB');
  t.same(events.map((e) => e.message), ['Killed process 666 (sh) total-vm:1kB', 'Killed process 667 (sleep) total-vm:1kB']);
  // Outside the window the same text is a new occurrence.
  line('Memory cgroup out of memory: Killed process 667 (sleep) total-vm:1kB', { atUs: now() + MIN + 1 });
  t.equal(events.length, 3);
  // A group of several: the victim's second print comes after other members, still one kill each.
  line('Memory cgroup out of memory: Killed process 700 (a) total-vm:1kB');
  line('Memory cgroup out of memory: Killed process 701 (b) total-vm:1kB');
  line('Memory cgroup out of memory: Killed process 702 (c) total-vm:1kB');
  line('Memory cgroup out of memory: Killed process 700 (a) total-vm:1kB');
  t.same(events.slice(3).map((e) => e.message), ['Killed process 700 (a) total-vm:1kB', 'Killed process 701 (b) total-vm:1kB', 'Killed process 702 (c) total-vm:1kB']);
});

t.test('temporary rule without repeat_window: every matching line is an event, identical or not', async (t) => {
  const { events, line } = monitor([rule({ name: 'Hung', reason: 'TaskHung', pattern: 'task \\S+ blocked.*' })]);
  line('INFO: task sync:12 blocked for more than 5 seconds.');
  line('INFO: task sync:12 blocked for more than 5 seconds.');
  t.equal(events.length, 2);
});

// The literal scan only decides which rules get tried: the events must be those of trying every rule's
// pattern on every line, in rule order. Rules are made temporary so that every match is an event.
function everyRule(rules: RuleSpec[], lines: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of lines) {
    const text = raw.trim();
    for (const r of rules) {
      const m = r.pattern.matchEnd(text);
      if (m !== null) out.push([`journal/kernel/${r.name}`, m]);
    }
  }
  return out;
}

function scanned(rules: RuleSpec[], lines: string[]): Array<[string, string]> {
  const { events, line } = monitor(rules);
  for (const l of lines) line(l);
  return events.map((e) => [e.source, e.message]);
}

t.test('the literal scan tries exactly the rules whose literal a line contains (edge cases, table and alternation)', async (t) => {
  const edge: Array<[string, string]> = [
    ['SharedA', 'BUG: unable to handle kernel NULL pointer dereference at .*'], // same first 12 characters as SharedB
    ['SharedB', 'BUG: unable to handle page fault for address: .*'],
    ['SameLiteralA', 'Killed process \\d+ .*'], // two rules, one literal
    ['SameLiteralB', 'Killed process \\d+ \\(java\\).*'],
    ['Inner', 'lock'], // inside other literals
    ['Outer', 'soft lockup - CPU#\\d+.*'],
    ['AtEnd', 'table full, dropping packet'],
    ['Revert', 'server .+ not responding.*'],
  ];
  // Padding rules with literals of their own push the source past the alternation's limit into the table.
  const padding = Array.from({ length: 40 }, (_, i): [string, string] => [`Pad${i}`, `padding literal number ${i} x`]);
  const lines = [
    'BUG: unable to handle kernel NULL pointer dereference at 0000000000000008',
    'BUG: unable to handle page fault for address: ffff8881',
    'BUG: unable to handle something else', // the shared prefix, neither whole literal
    'Out of memory: Killed process 12 (java) total-vm:1kB',
    'Killed process x', // a literal's prefix without the rest of the pattern
    'watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [kworker:1]',
    'spinlock held',
    'nf_conntrack: table full, dropping packet',
    'table full, dropping packet.', // the literal, not at the end
    'nfs: server 10.0.0.1 not responding, still trying',
    'nfs: server 10.0.0.1 OK',
    'ünïcode ✓ Killed process 7 (x) ✓',
    'padding literal number 7 x',
    'padding literal number 77 x', // Pad7's literal inside another line than Pad7's own
    '',
    '   ',
  ];
  for (const count of [0, padding.length]) {
    const rules = [...edge, ...padding.slice(0, count)].map(([name, pattern]) => rule({ name, reason: name, pattern, ...(name === 'Revert' ? { revert: 'server .+ OK' } : {}) }));
    const lits = new Set(rules.map((r) => r.pattern.literal));
    t.ok(count === 0 ? lits.size <= 32 : lits.size > 32, `${lits.size} literals`);
    t.same(scanned(rules, [...lines, ...lines]), everyRule(rules, [...lines, ...lines]), `${rules.length} rules`);
  }
});

t.test('the literal scan with the shipped kernel library: the same matches as trying every rule', async (t) => {
  const kernel = buildRuleSet(loadAgentConfig(join(__dirname, '../../../etc'), { required: true })).sources.find((s) => s.name === 'kernel');
  if (!kernel) throw new Error('no kernel source in etc/');
  const rules = kernel.rules.map((r): RuleSpec => ({ ...r, kind: 'temporary', repeatWindowMs: 0 }));
  const reports = JSON.parse(readFileSync(join(__dirname, '../../fixtures/rules/reports.json'), 'utf8')) as { problems: Array<{ line: string }>; benign: Array<{ line: string }> };
  const lines = [...reports.problems, ...reports.benign].map((l) => l.line);
  for (const e of kernelEntries(20_000, { seed: 3 })) lines.push(String(e.fields.MESSAGE));
  const want = everyRule(rules, lines);
  t.ok(want.length > reports.problems.length, `${want.length} matches`);
  t.same(scanned(rules, lines), want);
});
