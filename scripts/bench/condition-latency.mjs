// Latency from a journal line in a node in a box to the condition visible through the API server.
//   node scripts/bench/condition-latency.mjs [trials] [--npd]     (root; default 120 trials)
// --npd: then node-problem-detector (npd-binary.mjs; built on first use) in the same box and cluster.
// Runs condition-latency.ts bundled (run-bundled.mjs).
import { npdBinary } from './npd-binary.mjs';
import { runBundled } from './run-bundled.mjs';

const args = process.argv.slice(2).map((a) => (a === '--npd' ? `--npd=${npdBinary().bin}` : a));
await runBundled('scripts/bench/condition-latency.ts', args);
