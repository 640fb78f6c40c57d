// Times the default probe cycle: every check the default configuration enables, run together the way
// `diagnose` and the daemon run them, built once so the rate checks judge rates after the first cycle.
// Prints wall time and CPU time per cycle (p50, p99, max), then each check's own cost.
//
//   node scripts/bench/probes.mjs [cycles] [--processes N]
//
// cycles defaults to 1000; --processes starts N sleeping processes first (stopped at the end) to see
// how the zombie scan, which reads every process's stat, grows with the process count.
//
// The sources are TypeScript; esbuild (already a build dependency) bundles a small entry into a
// temporary file, so nothing else needs installing.
import { spawn } from 'node:child_process';
import { build } from 'esbuild';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = args.indexOf('--processes');
const extraText = flag >= 0 ? args.splice(flag, 2)[1] : '0';
const cyclesText = args[0] ?? '1000';
const extra = Number(extraText);
const cycles = Number(cyclesText);
if (!/^\d+$/.test(cyclesText) || cycles < 1) {
  console.error(`probes.mjs: cycles must be a whole number above 0, got "${cyclesText}"`);
  process.exit(2);
}
if (!/^\d+$/.test(extraText ?? '')) {
  console.error(`probes.mjs: --processes needs a whole number, got "${extraText ?? ''}"`);
  process.exit(2);
}

// One shell in its own process group holds the sleepers, so one kill of the group stops them all.
let sleepers;
if (extra > 0) {
  sleepers = spawn('sh', ['-c', `i=0; while [ $i -lt ${extra} ]; do sleep 3600 & i=$((i+1)); done; wait`], {
    detached: true,
    stdio: 'ignore',
  });
  const count = () => readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length;
  const target = count() + extra;
  for (let i = 0; i < 600 && count() < target; i++) await sleep(50);
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'nha-bench-'));
try {
  const outfile = join(work, 'bench.js');
  await build({
    stdin: {
      contents: `
        export { loadAgentConfig } from './src/sections';
        export { enabledChecks } from './src/sources/checks';
        export { loadNative } from './src/system/native';
        export { runCheck } from './src/engine/run-check';
      `,
      resolveDir: root,
      loader: 'ts',
    },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    logLevel: 'warning',
  });
  const { loadAgentConfig, enabledChecks, loadNative, runCheck } = createRequire(import.meta.url)(outfile);

  const emptyConfigDir = mkdtempSync(join(work, 'etc-'));
  const checks = enabledChecks(loadAgentConfig(emptyConfigDir).config, loadNative).map((s) => s.check);

  const cycle = () => Promise.all(checks.map((c) => runCheck(c)));
  for (let i = 0; i < 20; i++) await cycle(); // warm up the JIT and the kernel's dentry cache

  const wall = [];
  const cpu = [];
  for (let i = 0; i < cycles; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await cycle();
    wall.push(performance.now() - t0);
    const used = process.cpuUsage(c0);
    cpu.push((used.user + used.system) / 1000);
  }

  // Each check alone, run back to back, to see where the time goes.
  const perCheck = [];
  for (const check of checks) {
    const rounds = Math.min(cycles, 200);
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) await runCheck(check);
    perCheck.push([check.name, (performance.now() - t0) / rounds]);
  }

  const quantile = (xs, q) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  };
  const ms = (v) => `${v.toFixed(2)} ms`;
  const processes = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length;
  console.log(`${checks.length} checks, ${cycles} cycles, ${processes} processes on this host, Node ${process.version}`);
  for (const [name, xs] of [['wall', wall], ['cpu', cpu]]) {
    console.log(`${name.padEnd(5)} p50 ${ms(quantile(xs, 0.5))}  p99 ${ms(quantile(xs, 0.99))}  max ${ms(Math.max(...xs))}`);
  }
  for (const [name, avg] of perCheck.sort((a, b) => b[1] - a[1])) console.log(`  ${name.padEnd(14)} ${ms(avg)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
  if (sleepers) process.kill(-sleepers.pid, 'SIGTERM');
}
