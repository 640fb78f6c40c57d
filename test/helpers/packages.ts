// The .deb and .rpm for tests, built once per change of their inputs with scripts/package.sh (amd64 by
// default; arm64 with the cross-built addon).
// Test files run in parallel processes: a lock file lets one of them build while the others wait, and a
// stamp holding a hash of every input lets later callers reuse the packages as long as nothing changed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface Packages {
  /** Absolute path of the .deb. */
  deb: string;
  /** Absolute path of the .rpm. */
  rpm: string;
}

const root = join(__dirname, '../..');
const dist = join(root, 'dist');
const lockFile = join(dist, '.packages.lock');
const bundle = join(dist, 'node-health-agent.js');

export type PackageArch = 'amd64' | 'arm64';

/** Where scripts/build-native.sh puts the addon of each architecture, and its argument for it. */
const ADDON: Record<PackageArch, { path: string; nativeArch: string }> = {
  amd64: { path: 'dist/node_health_native.node', nativeArch: 'x64' },
  arm64: { path: 'dist/arm64/node_health_native.node', nativeArch: 'arm64' },
};

const stampFile = (arch: PackageArch): string => join(dist, `.packages-${arch}.json`);
const LOCK_WAIT_MS = 15 * 60_000;

/** Every file under dir (recursively) whose name passes keep. */
function filesUnder(dir: string, keep: (name: string) => boolean = () => true): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p, keep);
    return e.isFile() && keep(e.name) ? [p] : [];
  });
}

/** What goes into the packages; the runtime is named by package.json (config.nodeRuntime). */
function inputs(arch: PackageArch): string[] {
  return [
    'package.json',
    'nfpm.yaml',
    'scripts/package.sh',
    'scripts/fetch-node.sh',
    ...filesUnder(join(root, 'packaging')).map((p) => relative(root, p)),
    ...filesUnder(join(root, 'systemd')).map((p) => relative(root, p)),
    ...filesUnder(join(root, 'etc'), (n) => n.endsWith('.ini')).map((p) => relative(root, p)),
    'dist/node-health-agent.js',
    'dist/node-health-agent.js.map',
    ADDON[arch].path,
    'dist/man/node-health-agent.8.gz',
    'dist/man/node-health.ini.5.gz',
    'dist/completion/node-health-agent',
  ].sort();
}

function inputHash(arch: PackageArch): string {
  const h = createHash('sha256');
  for (const rel of inputs(arch)) {
    h.update(`${rel}\0`);
    h.update(readFileSync(join(root, rel)));
    h.update('\0');
  }
  return h.digest('hex');
}

function fromStamp(arch: PackageArch, hash: string): Packages | undefined {
  try {
    const s = JSON.parse(readFileSync(stampFile(arch), 'utf8')) as { hash?: unknown; deb?: unknown; rpm?: unknown };
    if (s.hash !== hash || typeof s.deb !== 'string' || typeof s.rpm !== 'string') return undefined;
    const pkgs = { deb: join(root, s.deb), rpm: join(root, s.rpm) };
    return existsSync(pkgs.deb) && existsSync(pkgs.rpm) ? pkgs : undefined;
  } catch {
    return undefined;
  }
}

function newestMtime(files: string[]): number {
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/** Rebuilds the bundle or the addon when a source is newer than it (npm test builds the bundle first). */
function buildOutputsIfStale(arch: PackageArch): void {
  const tsSources = filesUnder(join(root, 'src'), (n) => n.endsWith('.ts'));
  if (!existsSync(bundle) || statSync(bundle).mtimeMs < newestMtime(tsSources)) {
    execFileSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  }
  const nativeSources = filesUnder(join(root, 'src/native'));
  const addon = join(root, ADDON[arch].path);
  if (!existsSync(addon) || statSync(addon).mtimeMs < newestMtime(nativeSources)) {
    execFileSync('npm', ['run', '-s', 'build:native', '--', ADDON[arch].nativeArch], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock file; a lock left by a process that died is taken over. */
function lock(): void {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(lockFile, 'utf8'));
    } catch {
      continue; // released between our open and read
    }
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
      try {
        unlinkSync(lockFile);
      } catch {
        // another waiter removed it first
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`ensurePackages: ${lockFile} held by pid ${holder} for over ${LOCK_WAIT_MS / 60_000} min; if no build runs, delete it`);
    }
    sleep(1000);
  }
}

/** Builds the packages for `arch` unless the ones in dist/ were built from the current inputs; returns their paths. */
export function ensurePackages(arch: PackageArch = 'amd64'): Packages {
  mkdirSync(dist, { recursive: true });
  lock();
  try {
    buildOutputsIfStale(arch);
    const hash = inputHash(arch);
    const ready = fromStamp(arch, hash);
    if (ready) return ready;
    const res = spawnSync('bash', [join(root, 'scripts/package.sh'), arch], { cwd: root, encoding: 'utf8' });
    if (res.status !== 0) {
      throw new Error(`scripts/package.sh failed (exit ${res.status ?? res.signal}):\n${res.stderr}${res.stdout}`);
    }
    const lines = res.stdout.trim().split('\n');
    const deb = lines.find((l) => l.endsWith('.deb'));
    const rpm = lines.find((l) => l.endsWith('.rpm'));
    if (!deb || !rpm) throw new Error(`scripts/package.sh named no .deb and .rpm; it printed:\n${res.stdout}`);
    writeFileSync(stampFile(arch), `${JSON.stringify({ hash, deb, rpm })}\n`);
    return { deb: join(root, deb), rpm: join(root, rpm) };
  } finally {
    unlinkSync(lockFile);
  }
}
