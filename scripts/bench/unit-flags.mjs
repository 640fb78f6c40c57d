// The Node flags of the unit's ExecStart (between the runtime and the bundle), for benchmarks that run
// the pipeline as the installed daemon runs it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** @param {string} root the repository root */
export function unitNodeFlags(root) {
  const execStart = /^ExecStart=(.*)$/m.exec(readFileSync(join(root, 'systemd/node-health-agent.service'), 'utf8'))?.[1] ?? '';
  const words = execStart.split(/\s+/).slice(1);
  return words.slice(0, words.findIndex((w) => w.endsWith('.js')));
}
