// The layering of src/ (docs/architecture.md): dependency-cruiser checks every import against the arrows
// in .dependency-cruiser.cjs and looks for cycles; any violation fails.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';

const ROOT = resolve(__dirname, '../..');
const CONFIG = resolve(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = resolve(ROOT, 'node_modules/.bin/depcruise');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  cycle?: Array<{ name: string }>;
}

function key(v: Violation): string {
  const path = v.cycle ? [v.from, ...v.cycle.map((c) => c.name)].join(' → ') : `${v.from} → ${v.to}`;
  return `${v.rule.name}: ${path}`;
}

/** Every violation of the rules in the tree under `cwd` (its `src/`), as "rule: from → to" lines. */
function cruise(cwd: string): string[] {
  const run = spawnSync(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'json'], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (run.error) throw new Error(`${DEPCRUISE}: ${run.error.message} (run npm ci)`);
  if (run.status !== 0 && !run.stdout) throw new Error(`depcruise exited ${run.status}: ${run.stderr}`);
  const result = JSON.parse(run.stdout) as { summary: { violations: Violation[] } };
  return result.summary.violations.map(key).sort();
}

t.test('no import of src/ crosses an arrow or closes a cycle', async (t) => {
  t.same(cruise(ROOT), [], 'violations (see the arrows in .dependency-cruiser.cjs and docs/architecture.md)');
});

t.test('the rules catch an import against the arrows and a cycle', async (t) => {
  t.same(cruise(resolve(ROOT, 'test/fixtures/layering')), [
    'no-cycle: src/engine/b.ts → src/engine/c.ts → src/engine/b.ts',
    'sources: src/sources/a.ts → src/engine/b.ts',
  ]);
});
