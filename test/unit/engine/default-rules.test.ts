// Every shipped log rule against its positive and negative lines (test/fixtures/rules/vectors.json).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../../src/config/load';
import { LogMonitor } from '../../../src/engine/rules/log-monitor';
import { buildRuleSet } from '../../../src/engine/rules/rule-set';

const vectors = JSON.parse(readFileSync(join(__dirname, '../../fixtures/rules/vectors.json'), 'utf8')) as Record<
  string,
  { positive: string[]; negative: string[] }
>;
const loaded = loadConfig(join(__dirname, '../../../etc'), { required: true });
const ruleSet = buildRuleSet(loaded);
const BOOT = 'b'.repeat(32);

/** Feeds lines to a fresh monitor of the rule's source; returns the ids of rules that fired. */
function fired(sourceName: string, lines: string[]): Set<string> {
  const source = ruleSet.sources.find((s) => s.name === sourceName);
  if (!source) throw new Error(`no source ${sourceName}`);
  const ids = new Set<string>();
  const monitor = new LogMonitor(source, ruleSet.conditions, {
    event: (e) => ids.add(e.source),
    condition: (c) => {
      if (c.status === 'True') ids.add(c.source);
    },
  }, BOOT);
  lines.forEach((message, i) => monitor.process({ message, realtimeUs: 1e15 + i, bootId: BOOT }));
  return ids;
}

for (const [name, rule] of loaded.config.named.rule) {
  t.test(`rule ${name}`, async (t) => {
    const v = vectors[name];
    if (!v) {
      t.fail(`no test vectors for shipped rule ${name}`);
      return;
    }
    t.ok(v.positive.length > 0 && v.negative.length > 0, 'has positive and negative vectors');
    const id = `journal/${rule.source}/${name}`;
    const times = rule.kind === 'count' ? rule.count : 1;
    for (const line of v.positive) t.ok(fired(rule.source, Array(times).fill(line)).has(id), `fires on: ${line}`);
    for (const line of v.negative) t.notOk(fired(rule.source, Array(times).fill(line)).has(id), `quiet on: ${line}`);
  });
}

t.test('every vector names a shipped rule', async (t) => {
  for (const name of Object.keys(vectors).filter((k) => !k.startsWith('_'))) t.ok(loaded.config.named.rule.has(name), name);
});
