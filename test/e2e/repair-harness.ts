// A node in a box set up for the repair tests: the runtime health monitor (repair-harness-agent.ts,
// bundled with esbuild) runs as a unit inside the box against the box's own systemd, D-Bus and
// containerd; a kubelet stand-in can play kubelet.service on a port of the test's own (boxes share the
// host's network, so each test needs its own port).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { Box, type TeardownHost } from '../helpers/box';

const repo = resolve(__dirname, '../..');
const LIB = '/usr/local/lib/nha-test';
export const CONFIG_DIR = '/etc/nha-test';
export const STATE_DIR = '/var/lib/nha-test';
export const OUT = '/run/nha-test/out.jsonl';
export const AGENT_UNIT = 'nha-agent.service';
const STANDIN = '/usr/local/lib/kubelet-standin/standin.js';
export const MODE_FILE = '/run/kubelet-standin/mode';

let bundled: string | undefined;

/** The monitor program, bundled once per test process. */
function harnessBundle(): string {
  if (bundled) return bundled;
  const dir = mkdtempSync(join(tmpdir(), 'nha-harness-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'harness.js');
  buildSync({
    entryPoints: [join(__dirname, 'repair-harness-agent.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // The native addon is loaded from beside the bundle; dbus-next's X11 session lookup is never used.
    external: ['*.node', 'x11'],
    logLevel: 'error',
  });
  bundled = out;
  return out;
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

export interface Rec {
  t: number;
  kind: 'condition' | 'event' | 'started';
  source?: string;
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
  severity?: string;
}

export interface UnitShow {
  [property: string]: string;
}

export class RepairNode {
  private constructor(readonly box: Box) {}

  static async up(t: TeardownHost, prefix: string): Promise<RepairNode> {
    const bundle = harnessBundle();
    const box = await Box.up(t, prefix);
    await box.check(['mkdir', '-p', LIB, CONFIG_DIR, STATE_DIR, '/run/nha-test', '/usr/local/lib/kubelet-standin', '/run/kubelet-standin']);
    await box.copyIn(bundle, `${LIB}/harness.js`);
    await box.copyIn(join(repo, 'dist/node_health_native.node'), `${LIB}/node_health_native.node`);
    await box.copyIn(join(repo, 'test/fixtures/kubelet-standin/standin.js'), STANDIN);
    return new RepairNode(box);
  }

  async sh(script: string, timeoutMs?: number): Promise<string> {
    return this.box.check(['sh', '-c', script], timeoutMs ? { timeoutMs } : {});
  }

  /** Writes the agent's config (one ini file) with root ownership and mode 0644, as the loader requires. */
  async writeConfig(ini: string): Promise<void> {
    await this.box.check(['sh', '-c', `umask 022; cat > ${CONFIG_DIR}/test.ini`], { input: ini });
  }

  /** Installs the stand-in as kubelet.service listening on `port`, and starts it. */
  async installKubelet(port: number, restart: 'always' | 'no' = 'always'): Promise<void> {
    const unit = readFileSync(join(repo, 'test/fixtures/kubelet-standin/kubelet.service'), 'utf8')
      .replaceAll('@NODE@', process.execPath)
      .replaceAll('@SCRIPT@', STANDIN)
      .replaceAll('@PORT@', String(port))
      .replaceAll('@RESTART@', restart);
    await this.box.check(['sh', '-c', 'cat > /etc/systemd/system/kubelet.service'], { input: unit });
    await this.box.check(['systemctl', 'daemon-reload']);
    await this.box.check(['systemctl', 'start', 'kubelet.service']);
  }

  /** Sets the stand-in's mode: '' (healthy), 'unhealthy', 'hang', 'ignore-term', or several. */
  async kubeletMode(mode: string): Promise<void> {
    await this.box.check(['sh', '-c', `cat > ${MODE_FILE}`], { input: mode });
  }

  async startAgent(): Promise<void> {
    await this.box.check([
      'systemd-run', `--unit=${AGENT_UNIT}`, '--collect', '--property=Type=exec', '--quiet',
      process.execPath, `${LIB}/harness.js`, CONFIG_DIR, STATE_DIR, OUT,
    ]);
    await this.waitFor('the monitor to start', (recs) => recs.some((r) => r.kind === 'started'), 15_000, 0);
  }

  /** SIGKILL, as a crash or the OOM killer would. */
  async killAgent(): Promise<void> {
    await this.box.check(['systemctl', 'kill', '--signal=KILL', AGENT_UNIT]);
    await this.until('the monitor to be gone', async () => (await this.box.exec(['systemctl', 'is-active', AGENT_UNIT])).code !== 0, 10_000);
  }

  async stopAgent(): Promise<void> {
    await this.box.exec(['systemctl', 'stop', AGENT_UNIT]);
  }

  async records(): Promise<Rec[]> {
    const res = await this.box.exec(['cat', OUT]);
    if (res.code !== 0) return [];
    return res.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Rec);
  }

  /** Polls the records until `pred` holds; records from before `since` (ms) are left out. */
  async waitFor(what: string, pred: (recs: Rec[]) => boolean, timeoutMs: number, since = 0): Promise<Rec[]> {
    let recs: Rec[] = [];
    await this.until(what, async () => {
      recs = (await this.records()).filter((r) => r.t >= since);
      return pred(recs);
    }, timeoutMs);
    return recs;
  }

  /** The monitor's status() as JSON. */
  async status<T = Record<string, unknown>>(): Promise<T> {
    await this.box.check(['rm', '-f', `${OUT}.status`]);
    await this.box.check(['systemctl', 'kill', '--signal=USR1', AGENT_UNIT]);
    let text = '';
    await this.until('the status dump', async () => {
      const res = await this.box.exec(['cat', `${OUT}.status`]);
      text = res.stdout;
      return res.code === 0;
    }, 5000);
    return JSON.parse(text) as T;
  }

  async show(unit: string, ...props: string[]): Promise<UnitShow> {
    const out = await this.box.check(['systemctl', 'show', unit, ...props.map((p) => `--property=${p}`)]);
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  /** The monitor's journal entries as objects (fields as journald stores them). */
  async journal(...matches: string[]): Promise<Array<Record<string, string>>> {
    const out = await this.box.check(['journalctl', '--no-pager', '-o', 'json', `_SYSTEMD_UNIT=${AGENT_UNIT}`, ...matches]);
    return out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, string>);
  }

  /** What the monitor said last, for a failure message. */
  async diagnostics(): Promise<string> {
    const out = await this.box.exec(['tail', '-n', '15', OUT]);
    const journal = await this.box.exec(['journalctl', '--no-pager', '-o', 'cat', '-n', '30', `--unit=${AGENT_UNIT}`]);
    const systemd = await this.box.exec(['journalctl', '--no-pager', '-o', 'short-monotonic', '-n', '15', '_PID=1']);
    return `last records:\n${out.stdout}${out.stderr}\nmonitor journal:\n${journal.stdout}${journal.stderr}\nsystemd:\n${systemd.stdout}`;
  }

  async until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await probe()) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.box.name}: timed out after ${timeoutMs} ms waiting for ${what}\n${await this.diagnostics()}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

/** The last condition record of `type`. */
export function lastCondition(recs: Rec[], type: string): Rec | undefined {
  return recs.filter((r) => r.kind === 'condition' && r.type === type).at(-1);
}
