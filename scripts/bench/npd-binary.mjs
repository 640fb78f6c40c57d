// node-problem-detector for the benchmarks: built once per version from its Go module with journald
// support (CGO, libsystemd-dev, pkg-config) into the user cache directory, ~/.cache/node-health-agent/npd/.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const NPD_VERSION = 'v1.36.0';

/** The binary's path and the module's source directory (its shipped configs are under config/). */
export function npdBinary() {
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'node-health-agent', 'npd', NPD_VERSION);
  const bin = join(cache, 'node-problem-detector');
  const moduleDir = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', `k8s.io/node-problem-detector@${NPD_VERSION}`], { encoding: 'utf8', cwd: '/' }),
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
