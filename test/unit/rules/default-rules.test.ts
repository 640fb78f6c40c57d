// Every shipped log rule against its positive and negative lines, and the benign look-alikes against
// every rule (test/fixtures/rules/vectors.json).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../../src/sections';
import { LogMonitor } from '../../../src/sources/rules/log-monitor';
import { buildRuleSet } from '../../../src/sources/rules/rule-set';

interface RuleVectors {
  provenance: string[];
  positive: string[];
  negative: string[];
}

// Keys starting with "_" are not rules: "_comment", and "_benign" (lines no rule may raise anything for).
const vectors = JSON.parse(readFileSync(join(__dirname, '../../fixtures/rules/vectors.json'), 'utf8')) as Record<string, unknown>;
const ruleVectors = new Map(
  Object.entries(vectors)
    .filter(([k]) => !k.startsWith('_'))
    .map(([k, v]) => [k, v as RuleVectors]),
);
const benign = vectors['_benign'] as { provenance: string[]; lines: string[] };
const loaded = loadAgentConfig(join(__dirname, '../../../etc'), { required: true });
const ruleSet = buildRuleSet(loaded);
const BOOT = 'b'.repeat(32);

/** Feeds lines to a fresh monitor of the source; returns the ids of rules that fired. */
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

/** A provenance entry names a source file of the component ("linux: fs/ext4/super.c") or a public URL. */
const PROVENANCE = /^(https:\/\/\S+|[a-z][\w-]*: \S.*)$/;

for (const [name, rule] of loaded.config.named.rule) {
  t.test(`rule ${name}`, async (t) => {
    const v = ruleVectors.get(name);
    if (!v) {
      t.fail(`no test vectors for shipped rule ${name}`);
      return;
    }
    t.ok(v.positive.length > 0 && v.negative.length > 0, 'has positive and negative vectors');
    t.ok(Array.isArray(v.provenance) && v.provenance.length > 0, 'says where its lines come from');
    for (const p of v.provenance ?? []) t.match(p, PROVENANCE, `provenance "${p}" is a "component: path" or a URL`);
    const id = `journal/${rule.source}/${name}`;
    const times = rule.kind === 'count' ? rule.count : 1;
    for (const line of v.positive) t.ok(fired(rule.source, Array(times).fill(line)).has(id), `fires on: ${line}`);
    for (const line of v.negative) t.notOk(fired(rule.source, Array(times).fill(line)).has(id), `quiet on: ${line}`);
  });
}

t.test('every vector names a shipped rule', async (t) => {
  for (const name of ruleVectors.keys()) t.ok(loaded.config.named.rule.has(name), name);
});

t.test('benign look-alikes raise nothing from any rule', async (t) => {
  t.ok(benign && benign.provenance.length > 0 && benign.lines.length > 0, 'has provenance and lines');
  for (const line of benign?.lines ?? []) {
    for (const source of ruleSet.sources) {
      // Repeated, so count rules reach their threshold too.
      t.same([...fired(source.name, Array(25).fill(line))], [], `[${source.name}] quiet on: ${line}`);
    }
  }
});

t.test('one OOM kill raises OOMKilling once, in the wording of every kernel since 3.10', async (t) => {
  const kills: Record<string, string[]> = {
    // 3.10–4.18, memory cgroup: invoked, "Task in … killed as a result of limit", "Kill process … or
    // sacrifice child", then "Killed process".
    '3.10 memcg': [
      'java invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=983',
      'Task in /kubepods/burstable/pod3f1a/8c2d killed as a result of limit of /kubepods/burstable/pod3f1a/8c2d',
      'Memory cgroup out of memory: Kill process 31432 (java) score 1974 or sacrifice child',
      'Killed process 31432 (java) total-vm:8402352kB, anon-rss:4183076kB, file-rss:21636kB',
    ],
    // 4.19+ (measured on Debian 12's 6.1): invoked, the oom-kill summary, "… out of memory: Killed process".
    '6.1 memcg': [
      'java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=983',
      'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-1a2b.scope,mems_allowed=0,oom_memcg=/kubepods/pod1,task_memcg=/kubepods/pod1/1a2b,task=java,pid=31432,uid=1000',
      'Memory cgroup out of memory: Killed process 31432 (java) total-vm:8402352kB, anon-rss:4183076kB, file-rss:21636kB, shmem-rss:0kB, UID:1000 pgtables:8404kB oom_score_adj:983',
      'oom_reaper: reaped process 31432 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB',
    ],
    '4.14 global': [
      'stress invoked oom-killer: gfp_mask=0x14280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=(null), order=0, oom_score_adj=0',
      'Out of memory: Kill process 4127 (stress) score 912 or sacrifice child',
      'Killed process 4127 (stress) total-vm:1056836kB, anon-rss:1048620kB, file-rss:1024kB, shmem-rss:0kB',
    ],
  };
  const kernel = ruleSet.sources.find((s) => s.name === 'kernel');
  if (!kernel) throw new Error('no kernel source');
  for (const [wording, lines] of Object.entries(kills)) {
    const reasons: string[] = [];
    const monitor = new LogMonitor(kernel, ruleSet.conditions, { event: (e) => reasons.push(e.reason), condition: () => {} }, BOOT);
    lines.forEach((message, i) => monitor.process({ message, realtimeUs: 1e15 + i, bootId: BOOT }));
    t.equal(reasons.filter((r) => r === 'OOMKilling').length, 1, `${wording}: one OOMKilling`);
    t.ok(reasons.every((r, i) => reasons.indexOf(r) === i), `${wording}: no reason twice (${reasons.join(', ')})`);
  }
});

t.test('every shipped pattern keeps the literal gate (docs/rules.md "Matching cost")', async (t) => {
  // One pattern without a required literal turns the source's one-pass gate off for every line.
  for (const source of ruleSet.sources) {
    for (const rule of source.rules) {
      for (const p of [rule.pattern, rule.revert]) {
        if (p) t.ok(p.literal.length >= 3, `[${source.name}] ${rule.name}: literal ${JSON.stringify(p.literal)} in ${p.source}`);
      }
      if (source.name === 'kernel') t.ok(rule.pattern.singleLine, `[kernel] ${rule.name} is matched against the last line only`);
    }
  }
});
