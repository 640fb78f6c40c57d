// Runs a TypeScript bench entry: esbuild bundles it into a temporary directory, and it runs under this
// Node with the given arguments; its exit status becomes this process's. The test helpers the entries
// use find the repository through __dirname, so that is pinned to theirs.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** `entry`: the path of the .ts file from the repository's root. */
export async function runBundled(entry, args) {
  const work = mkdtempSync(join(tmpdir(), `nha-${basename(entry, '.ts')}-`));
  try {
    const out = join(work, 'run.js');
    await build({
      entryPoints: [join(root, entry)],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      logLevel: 'warning',
      define: { __dirname: JSON.stringify(join(root, 'test/helpers')) },
    });
    const r = spawnSync(process.execPath, [out, ...args], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
