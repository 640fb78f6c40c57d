// Bundles the agent into one file (dist/node-health-agent.js) that the packages run with their own Node.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RE2Set } from 're2js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = 'dist/node-health-agent.js';

// The shipped rules' patterns, checked and analysed here so the daemon need not parse or scan them again at
// every start (src/sources/rules/pattern.ts says why), with the daemon's own code for the analysis. Values
// run verbatim to the end of the line (docs/configuration.md).
const etc = new URL('../etc/', import.meta.url);
const patterns = readdirSync(etc)
  .filter((f) => f.endsWith('.ini'))
  .flatMap((f) => [...readFileSync(new URL(f, etc), 'utf8').matchAll(/^(?:pattern|revert_pattern) = (.+)$/gm)].map((m) => m[1]));
for (const p of patterns) new RE2Set().add(`(?:${p})$`);
// pattern.ts bundled with re2js, so the scratch module outside the project imports nothing it cannot find.
const analyser = await build({
  entryPoints: ['src/sources/rules/pattern.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  write: false,
  logLevel: 'warning',
});
const scratch = mkdtempSync(join(tmpdir(), 'nha-build-'));
let analysePattern, patternKey;
try {
  const entry = join(scratch, 'pattern.mjs');
  writeFileSync(entry, analyser.outputFiles[0].text);
  ({ analysePattern, patternKey } = await import(pathToFileURL(entry).href));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
const checkedPatterns = Object.fromEntries(
  [...new Set(patterns)].map((p) => {
    const { literal, singleLine } = analysePattern(p);
    return [patternKey(p), [literal, singleLine]];
  }),
);

await build({
  entryPoints: ['src/cli/bin.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  // V8 keeps the source of the whole bundle in the daemon's heap: without comments and indentation it
  // is 1.1 MB instead of 1.6 MB, 1.0 MiB less V8 heap (docs/benchmarks.md). Names are kept, so stack
  // traces still name their functions; the linked source map gives the lines back.
  minifySyntax: true,
  minifyWhitespace: true,
  // The native addon is loaded at run time from beside the bundle (or the build tree in development).
  // dbus-next requires `x11` only to find a desktop session bus, which a host agent never uses.
  external: ['*.node', 'x11'],
  define: { __AGENT_VERSION__: JSON.stringify(pkg.version), __CHECKED_PATTERNS__: JSON.stringify(checkedPatterns) },
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});

// One character above U+00FF makes V8 hold the whole source as UTF-16, twice its size (+1.1 MiB of
// heap). esbuild escapes such characters in strings but leaves regular expression literals as written.
const wide = [...readFileSync(outfile, 'utf8').matchAll(/[^\x00-\xff]/g)];
for (const m of wide.slice(0, 5)) {
  const code = (m[0].codePointAt(0) ?? 0).toString(16).padStart(4, '0');
  const context = m.input.slice(Math.max(0, m.index - 40), m.index + 40);
  console.warn(`build: ${outfile} holds U+${code} in "${context}"; write it as \\u${code} in the source, so that V8 keeps the bundle at one byte per character`);
}

// The man pages and the bash completion, written from the same command definitions and config schema
// that went into the bundle (src/cli/manual/), into dist/man/ and dist/completion/ for the packages.
const generator = 'build/manual/generate.js';
await build({
  entryPoints: ['src/cli/manual/generate.ts'],
  outfile: generator,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['*.node', 'x11'],
  define: { __AGENT_VERSION__: JSON.stringify(pkg.version) },
  logLevel: 'warning',
});
execFileSync(process.execPath, [generator, 'dist'], { stdio: 'inherit' });
