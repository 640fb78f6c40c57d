// node-problem-detector's Go module at the version package.json names (config.npd): its config/ holds
// the shipped monitor configs and plugins. scripts/build-test-tools.sh downloads it during setup, so
// here it is only looked up in the module cache.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../..');

export function npdModuleDir(): string {
  const { config } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { config: { npd: string } };
  // GOPROXY=off: a lookup in the module cache only; a test never downloads.
  const r = spawnSync('go', ['mod', 'download', '-json', config.npd], { encoding: 'utf8', cwd: '/', env: { ...process.env, GOPROXY: 'off' } });
  if (r.status !== 0) throw new Error(`${config.npd} is not in the Go module cache: run scripts/setup.sh (or scripts/build-test-tools.sh) first`);
  return (JSON.parse(r.stdout) as { Dir: string }).Dir;
}
