// Time for N nodes to be repaired under k slots, and the API cost of coordinating them, extrapolated to
// a large cluster. Starts a test cluster (scripts/cluster/cluster.sh), applies the coordination manifest
// and runs the racing simulation of test/fleet/simulation.ts: N in-process coordinators, each its own
// node, all asking at once.
//   node scripts/bench/fleet-coordination.mjs [--nodes 50] [--slots 3] [--hold 300-1200] [--crash 0.2]
//        [--ttl 3s] [--gap 100ms] [--retry 1s] [--seed N] [--at 5000]
// Bundles fleet-coordination.ts with esbuild (the test helpers find the repository through __dirname,
// so it is pinned to theirs) and runs it.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(join(tmpdir(), 'nha-fleet-coordination-'));
try {
  const out = join(work, 'run.js');
  await build({
    entryPoints: [join(root, 'scripts/bench/fleet-coordination.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    logLevel: 'warning',
    define: { __dirname: JSON.stringify(join(root, 'test/helpers')) },
  });
  const r = spawnSync(process.execPath, [out, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
