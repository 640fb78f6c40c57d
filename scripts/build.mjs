// Bundles the agent into one file (dist/node-health-agent.js) that the packages run with their own Node.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/node-health-agent.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  minifySyntax: true,
  // The native addon is loaded at run time from beside the bundle (or the build tree in development).
  // dbus-next requires `x11` only to find a desktop session bus, which a host agent never uses.
  external: ['*.node', 'x11'],
  define: { __AGENT_VERSION__: JSON.stringify(pkg.version) },
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
