// A real containerd (the host's binary) on a private socket, root and state directory, for tests that
// talk to it: started, SIGSTOPped, killed and started again on the same socket.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStat } from '../../../src/sources/probes/zombies';

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export class ContainerdDaemon {
  private child: ChildProcess | undefined;
  readonly socket: string;
  private readonly config: string;
  private readonly log: string;

  private constructor(readonly dir: string) {
    this.socket = join(dir, 'containerd.sock');
    this.config = join(dir, 'config.toml');
    this.log = join(dir, 'containerd.log');
    // Only the gRPC socket: no debug or metrics listeners that could collide with a node's own.
    writeFileSync(
      this.config,
      [
        'version = 2',
        `root = "${join(dir, 'root')}"`,
        `state = "${join(dir, 'state')}"`,
        '[grpc]',
        `  address = "${this.socket}"`,
        '[ttrpc]',
        `  address = "${this.socket}.ttrpc"`,
        '[debug]',
        '  address = ""',
        '[metrics]',
        '  address = ""',
        '',
      ].join('\n'),
    );
  }

  /** Starts containerd and stops it and removes its directory when `t` ends. */
  static async start(t: TeardownHost): Promise<ContainerdDaemon> {
    const daemon = new ContainerdDaemon(mkdtempSync(join(tmpdir(), 'nha-containerd-')));
    t.teardown(async () => {
      await daemon.kill();
      rmSync(daemon.dir, { recursive: true, force: true });
    });
    await daemon.launch();
    return daemon;
  }

  get pid(): number {
    if (!this.child?.pid) throw new Error('containerd is not running');
    return this.child.pid;
  }

  async launch(): Promise<void> {
    rmSync(this.socket, { force: true });
    const child = spawn('containerd', ['--config', this.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    const lines: string[] = [];
    child.stderr?.on('data', (d: Buffer) => lines.push(d.toString('utf8')));
    child.on('exit', () => writeFileSync(this.log, lines.join('')));
    const deadline = Date.now() + 20_000;
    while (!lines.join('').includes('containerd successfully booted')) {
      if (child.exitCode !== null) throw new Error(`containerd exited ${child.exitCode}: ${lines.join('').slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`containerd did not boot in 20 s: ${lines.join('').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!existsSync(this.socket)) throw new Error(`containerd booted but ${this.socket} is missing`);
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  /**
   * SIGSTOP, returning once every thread of the daemon has stopped: the signal takes effect asynchronously,
   * and a thread still running could answer a call made right after it.
   */
  async stop(): Promise<void> {
    process.kill(this.pid, 'SIGSTOP');
    const deadline = Date.now() + 5000;
    for (;;) {
      const states = readdirSync(`/proc/${this.pid}/task`).map((tid) => {
        try {
          return parseStat(readFileSync(`/proc/${this.pid}/task/${tid}/stat`, 'utf8')).state;
        } catch {
          return 'T'; // the thread exited
        }
      });
      if (states.every((state) => state === 'T' || state === 't')) return;
      if (Date.now() > deadline) throw new Error(`containerd ${this.pid} not stopped 5 s after SIGSTOP (thread states ${states.join('')})`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * Imports a one-file OCI image named `ref` into the CRI's namespace (k8s.io) with ctr, and returns the
   * image ID the CRI lists it under (the digest of its config).
   */
  importImage(ref: string): string {
    const layout = join(this.dir, 'image');
    const blobs = join(layout, 'blobs/sha256');
    mkdirSync(blobs, { recursive: true });
    const blob = (content: Buffer | string): { digest: string; size: number } => {
      const hex = createHash('sha256').update(content).digest('hex');
      writeFileSync(join(blobs, hex), content);
      return { digest: `sha256:${hex}`, size: Buffer.byteLength(content) };
    };
    const files = join(this.dir, 'layer');
    mkdirSync(files, { recursive: true });
    writeFileSync(join(files, 'hello.txt'), 'hello\n');
    const layer = blob(execFileSync('tar', ['-C', files, '-cf', '-', 'hello.txt']));
    const config = blob(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} }),
    );
    const manifest = blob(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    );
    writeFileSync(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': 'latest' },
          },
        ],
      }),
    );
    writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const archive = join(this.dir, 'image.tar');
    execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
    execFileSync('ctr', ['--address', this.socket, '-n', 'k8s.io', 'images', 'import', archive], { stdio: 'ignore' });
    return config.digest;
  }

  logText(): string {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8') : '';
  }
}
