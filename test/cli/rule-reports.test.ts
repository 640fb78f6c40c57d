// Kernel lines quoted in public bug reports (test/fixtures/rules/reports.json), with the prefixes the reports
// carry (syslog, dmesg -T, journal timestamps), through `rules test --config-dir etc --json` as an operator
// would paste them: every problem line raises something, no benign line raises or counts toward anything.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

interface Line {
  class?: string;
  source: string;
  line: string;
}
interface Result {
  line: number;
  raised: Array<{ rule: string }>;
  counted: Array<{ rule: string }>;
}

const bin = join(__dirname, '../../dist/node-health-agent.js');
const etc = join(__dirname, '../../etc');
const reports = JSON.parse(readFileSync(join(__dirname, '../fixtures/rules/reports.json'), 'utf8')) as { problems: Line[]; benign: Line[] };

function run(lines: Line[]): Result[] {
  // A first line that is not a journal field keeps the input plain text (a line such as `kernel: …` is not `NAME=value`).
  const input = ['-- reports --', ...lines.map((l) => l.line)].join('\n') + '\n';
  const res = spawnSync(process.execPath, [bin, 'rules', 'test', '--config-dir', etc, '--json'], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.status !== 0) throw new Error(`rules test exited ${res.status}: ${res.stderr}`);
  return res.stdout.trimEnd().split('\n').slice(1).map((l) => JSON.parse(l) as Result);
}

t.test('every problem line from a public report raises something', async (t) => {
  t.ok(reports.problems.length >= 200, 'the corpus is there');
  const results = run(reports.problems);
  t.equal(results.length, reports.problems.length, 'one result per line');
  reports.problems.forEach((p, i) => {
    const r = results[i];
    t.ok(r && r.raised.length + r.counted.length > 0, `${p.class}: ${p.line} (${p.source})`);
  });
});

t.test('no benign line from a public report raises or counts toward anything', async (t) => {
  const results = run(reports.benign);
  reports.benign.forEach((b, i) => {
    const r = results[i];
    t.same([...(r?.raised ?? []), ...(r?.counted ?? [])].map((x) => x.rule), [], `${b.line} (${b.source})`);
  });
});
