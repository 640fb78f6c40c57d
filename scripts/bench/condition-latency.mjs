// Latency from a journal line in a node in a box to the condition visible through the API server.
//   node scripts/bench/condition-latency.mjs [trials] [--npd]     (root; default 120 trials)
// --npd: then node-problem-detector (npd-binary.mjs; built on first use) in the same box and cluster.
// Bundles condition-latency.ts with esbuild (the test helpers it uses find the repository through
// __dirname, so it is pinned to theirs) and runs it.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { npdBinary } from './npd-binary.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(join(tmpdir(), 'nha-condition-latency-'));
try {
  const out = join(work, 'run.js');
  await build({
    entryPoints: [join(root, 'scripts/bench/condition-latency.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    logLevel: 'warning',
    define: { __dirname: JSON.stringify(join(root, 'test/helpers')) },
  });
  const args = process.argv.slice(2).map((a) => (a === '--npd' ? `--npd=${npdBinary().bin}` : a));
  const r = spawnSync(process.execPath, [out, ...args], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
