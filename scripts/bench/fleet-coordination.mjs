// Time for N nodes to be repaired under k slots, and the API cost of coordinating them, extrapolated to
// a large cluster. Starts a test cluster (scripts/cluster/cluster.sh), applies the coordination manifest
// and runs the racing simulation of test/fleet/simulation.ts: N in-process coordinators, each its own
// node, all asking at once.
//   node scripts/bench/fleet-coordination.mjs [--nodes 50] [--slots 3] [--hold 300-1200] [--crash 0.2]
//        [--ttl 3s] [--gap 100ms] [--retry 1s] [--seed N] [--at 5000]
// Runs fleet-coordination.ts bundled (run-bundled.mjs).
import { runBundled } from './run-bundled.mjs';

await runBundled('scripts/bench/fleet-coordination.ts', process.argv.slice(2));
