// node-problem-detector for the benchmarks: built once per version from its Go module with journald
// support (CGO, libsystemd-dev, pkg-config) into the user cache directory, ~/.cache/node-health-agent/npd/.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const NPD_MODULE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).config.npd;
export const NPD_VERSION = NPD_MODULE.slice(NPD_MODULE.indexOf('@') + 1);

/** The binary's path and the module's source directory (its shipped configs are under config/). */
export function npdBinary() {
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'node-health-agent', 'npd', NPD_VERSION);
  const bin = join(cache, 'node-problem-detector');
  const moduleDir = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', NPD_MODULE], { encoding: 'utf8', cwd: '/' }),
  ).Dir;
  if (!existsSync(bin)) {
    mkdirSync(cache, { recursive: true });
    const t0 = Date.now();
    const partial = `${bin}.${process.pid}`;
    const res = spawnSync('go', ['build', '-tags', 'journald', '-o', partial, './cmd/nodeproblemdetector'], {
      cwd: moduleDir,
      env: { ...process.env, CGO_ENABLED: '1' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (res.status !== 0) {
      throw new Error(`building node-problem-detector ${NPD_VERSION} in ${moduleDir} failed (needs libsystemd-dev and pkg-config)`);
    }
    renameSync(partial, bin);
    console.log(`built node-problem-detector ${NPD_VERSION} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  return { bin, moduleDir };
}
