// Prometheus and promtool as scripts/setup.sh builds them (scripts/prometheus/build.sh, pinned version,
// cached). Never built here: a test that finds them missing fails and says to run setup.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TeardownHost } from './box';
import { freePort } from './net';

const root = join(__dirname, '../..');

export interface PrometheusBinaries {
  prometheus: string;
  promtool: string;
}

export function prometheusBinaries(): PrometheusBinaries {
  const r = spawnSync('bash', [join(root, 'scripts/prometheus/build.sh'), '--path'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr.trim() || `scripts/prometheus/build.sh --path exited ${r.status ?? r.signal}`);
  const dir = r.stdout.trim();
  return { prometheus: join(dir, 'prometheus'), promtool: join(dir, 'promtool') };
}

/** The shipped alerting rules and the Grafana dashboard. */
export const rulesFile = join(root, 'packaging/monitoring/node-health-agent.rules.yaml');
export const dashboardFile = join(root, 'packaging/monitoring/node-health-agent.dashboard.json');

/** A dashboard query as Grafana sends it: every job and node selected, a 1-minute rate window. */
export function grafanaExpr(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', 'node-health-agent').replaceAll('$instance', '.*');
}

export interface RuleView {
  name: string;
  type: string;
  state?: 'inactive' | 'pending' | 'firing';
  alerts?: Array<{ labels: Record<string, string>; state: 'pending' | 'firing'; value: string }>;
}

export interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

/** A Prometheus server on 127.0.0.1 with its own data directory; stopped (SIGTERM, then SIGKILL) when `t` ends. */
export class PrometheusServer {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly log: () => string,
  ) {}

  /** Writes `config` (prometheus.yml) and `files` into a fresh directory and starts Prometheus there. */
  static async start(t: TeardownHost, config: string, files: Record<string, string> = {}): Promise<PrometheusServer> {
    const { prometheus } = prometheusBinaries();
    const dir = mkdtempSync(join(tmpdir(), 'nha-prometheus-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'prometheus.yml'), config);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const port = await freePort();
    const child = spawn(
      prometheus,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-8000)));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    t.teardown(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    });
    const server = new PrometheusServer(`http://127.0.0.1:${port}`, child, () => stderr);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode} at start: ${stderr}`);
      try {
        if ((await fetch(`${server.url}/-/ready`)).ok) return server;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prometheus not ready after 30 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async api<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}/api/v1/${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus /api/v1/${path}: ${res.status} ${body.error ?? ''}; log: ${this.log()}`);
    return body.data;
  }

  /** An instant query; throws with Prometheus' message when it does not parse or evaluate. */
  async query(expr: string): Promise<Series[]> {
    const data = await this.api<{ resultType: string; result: Series[] }>(`query?query=${encodeURIComponent(expr)}`);
    return data.result;
  }

  /** The loaded alerting rules by group, each with its state and active alerts. */
  async rules(): Promise<Array<{ name: string; file: string; rules: RuleView[] }>> {
    return (await this.api<{ groups: Array<{ name: string; file: string; rules: RuleView[] }> }>('rules?type=alert')).groups;
  }

  /** The state and health of each scrape target. */
  async targets(): Promise<Array<{ scrapeUrl: string; health: string; lastError: string }>> {
    return (await this.api<{ activeTargets: Array<{ scrapeUrl: string; health: string; lastError: string }> }>('targets')).activeTargets;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
}
