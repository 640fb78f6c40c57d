// node-problem-detector's Go module at the version package.json names (config.npd): its config/ holds
// the shipped monitor configs and plugins. scripts/build-test-tools.sh downloads it during setup, so
// here `go mod download` only looks it up in the module cache.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../..');

export function npdModuleDir(): string {
  const { config } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { config: { npd: string } };
  const out = execFileSync('go', ['mod', 'download', '-json', config.npd], { encoding: 'utf8', cwd: '/' });
  return (JSON.parse(out) as { Dir: string }).Dir;
}
