// Every shipped rule's vectors (test/fixtures/rules/vectors.json) through `rules test --config-dir etc`,
// as an operator would run them: each positive line raises its rule, no negative line does, and no
// benign look-alike raises or counts toward anything.
//
// The lines go in as one journal export stream: each line in a time slot of its own, further apart than
// any count window, so the count a line reaches is its own; before it, enough neutral lines to flush
// its source's multi-line buffer. Count rules get their line `count` times in a row.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../src/sections';
import type { JournalSourceSpec } from '../../src/sources/rules/log-monitor';
import { buildRuleSet } from '../../src/sources/rules/rule-set';
import { matchGroups } from '../../src/sources/journal/monitor';
import { exportEntry } from '../helpers/journal-files';
import { configDir } from '../helpers/tmp';

const bin = join(__dirname, '../../dist/node-health-agent.js');
const etc = join(__dirname, '../../etc');
const vectors = JSON.parse(readFileSync(join(__dirname, '../fixtures/rules/vectors.json'), 'utf8')) as Record<string, unknown>;

// Rules shipped disabled (opt-in) are tested too: enabled by one more file after the shipped ones.
const shipped = loadAgentConfig(etc, { required: true }).config.named.rule;
const disabled = [...shipped].filter(([, r]) => !r.enabled).map(([name]) => name);
const dir =
  disabled.length === 0
    ? etc
    : configDir({
        ...Object.fromEntries(readdirSync(etc).filter((f) => f.endsWith('.ini')).map((f) => [f, readFileSync(join(etc, f), 'utf8')])),
        'zz-vectors.ini': disabled.map((name) => `[rule "${name}"]\nenabled = true\n`).join('\n'),
      });
const loaded = loadAgentConfig(dir, { required: true });
const ruleSet = buildRuleSet(loaded);

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s !== '');
const field = (v: unknown, key: string): unknown => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined);

interface Result {
  line: number;
  raised: Array<{ source: string; rule: string }>;
  counted: Array<{ source: string; rule: string }>;
}

// ── The input: one case (a line for a source, fed `times` times) per time slot.
interface Case {
  source: JournalSourceSpec;
  text: string;
  times: number;
  /** 0-based indexes of the case's copies in the input. */
  at: number[];
}
const cases: Case[] = [];
const entries: Array<string | Buffer> = [];
const flushLines = Math.max(...ruleSet.sources.map((s) => s.bufferSize));
const slotUs = (Math.max(...[...loaded.config.named.rule.values()].map((r) => r.window)) + 60_000) * 1000;
const base = 1_780_000_000_000_000;

function addCase(source: JournalSourceSpec, text: string, times: number): Case {
  const fields = matchGroups(source.matches)[0] ?? {};
  let us = base + cases.length * slotUs;
  const entry = (message: string): number => entries.push(exportEntry({ realtimeUs: us++, fields: { ...fields, MESSAGE: message } })) - 1;
  for (let i = 0; i < flushLines; i++) entry('-- rules test: next vector --');
  const c: Case = { source, text, times, at: Array.from({ length: times }, () => entry(text)) };
  cases.push(c);
  return c;
}

const sourceOf = (name: string): JournalSourceSpec | undefined => {
  const source = loaded.config.named.rule.get(name)?.source;
  return ruleSet.sources.find((s) => s.name === source);
};
const ruleCases = new Map<string, { positive: Case[]; negative: Case[] }>();
for (const [name, rule] of loaded.config.named.rule) {
  const v = vectors[name];
  const source = sourceOf(name);
  const positive = field(v, 'positive');
  const negative = field(v, 'negative');
  if (!source || !strings(positive) || !strings(negative)) continue;
  const times = rule.kind === 'count' ? rule.count : 1;
  ruleCases.set(name, { positive: positive.map((l) => addCase(source, l, times)), negative: negative.map((l) => addCase(source, l, times)) });
}
const benign = field(vectors._benign, 'lines');
const benignCases = strings(benign) ? benign.flatMap((l) => ruleSet.sources.map((s) => addCase(s, l, 1))) : [];

// ── One run of the CLI for all of them.
const res = spawnSync(process.execPath, [bin, 'rules', 'test', '--config-dir', dir, '--json'], {
  input: Buffer.concat(entries.map((e) => (typeof e === 'string' ? Buffer.from(e) : e))),
  encoding: 'utf8',
  maxBuffer: 256 << 20,
});
const results: Result[] = res.status === 0 ? res.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Result) : [];
const raises = (c: Case, copy: number, rule: string): boolean =>
  results[c.at[copy] as number]?.raised.some((x) => x.rule === rule && x.source === c.source.name) === true;

t.test('rules test ran every vector', async (t) => {
  t.equal(res.status, 0, res.stderr);
  t.equal(results.length, entries.length, 'one result per input entry');
});

for (const [name, rule] of loaded.config.named.rule) {
  t.test(`rule ${name}`, async (t) => {
    const v = vectors[name];
    t.ok(v, `test/fixtures/rules/vectors.json has vectors for shipped rule ${name}`);
    t.ok(strings(field(v, 'positive')), 'positive: a non-empty list of lines');
    t.ok(strings(field(v, 'negative')), 'negative: a non-empty list of lines');
    t.ok(strings(field(v, 'provenance')), 'provenance: a non-empty list (kernel source files, report URLs)');
    t.ok(sourceOf(name), `its source "${rule.source}" is enabled with rules`);
    const c = ruleCases.get(name);
    if (!c) return;
    // A count rule raises on the copy that reaches its threshold.
    for (const p of c.positive) t.ok(raises(p, p.times - 1, name), `raises on: ${p.text}${p.times > 1 ? ` (×${p.times})` : ''}`);
    for (const n of c.negative) t.notOk(n.at.some((_, i) => raises(n, i, name)), `quiet on: ${n.text}${n.times > 1 ? ` (×${n.times})` : ''}`);
  });
}

t.test('benign look-alikes raise nothing and count toward nothing, in any source', async (t) => {
  t.ok(strings(benign), '_benign.lines: a non-empty list of lines');
  t.ok(strings(field(vectors._benign, 'provenance')), '_benign.provenance: a non-empty list');
  for (const c of benignCases) {
    const r = results[c.at[0] as number];
    const what = [...(r?.raised ?? []), ...(r?.counted ?? [])].map((x) => x.rule);
    t.same(what, [], `${c.source.name}: ${c.text}`);
  }
});

t.test('every vector names a shipped rule', async (t) => {
  for (const name of Object.keys(vectors).filter((k) => !k.startsWith('_'))) t.ok(shipped.has(name), name);
});
