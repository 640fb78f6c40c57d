// A loopback proxy in front of the test cluster's API server whose behaviour a test switches while a
// client uses it: `pass` pipes TCP through (TLS and client certificates end at the real server), `slow`
// pipes it but holds every chunk from the server for `ms`, `status` ends TLS itself (with the API
// server's own certificate, so the client's CA check passes) and answers every request with `code`
// and a metav1.Status body, with Retry-After when given. A switch closes the open connections, so a
// keep-alive client meets the new behaviour at its next request.
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TeardownHost } from './box';
import type { Cluster } from './cluster';

export type ProxyMode = { kind: 'pass' } | { kind: 'slow'; ms: number } | { kind: 'status'; code: number; retryAfterSeconds?: number };

export class ApiProxy {
  private mode: ProxyMode = { kind: 'pass' };
  private readonly sockets = new Set<Socket>();
  /** When each request answered in `status` mode arrived (ms since the epoch), with its method and path. */
  readonly answered: Array<{ at: number; method: string; path: string }> = [];

  private constructor(
    private readonly server: Server,
    private readonly tls: HttpsServer,
    readonly port: number,
  ) {}

  static async start(cluster: Cluster): Promise<ApiProxy> {
    const upstream = new URL(cluster.server);
    let proxy: ApiProxy | undefined;
    const tls = createHttpsServer(
      { cert: readFileSync(join(cluster.dir, 'pki/apiserver.crt')), key: readFileSync(join(cluster.dir, 'pki/apiserver.key')) },
      (req, res) => {
        const mode = proxy?.mode;
        const code = mode?.kind === 'status' ? mode.code : 503;
        proxy?.answered.push({ at: Date.now(), method: req.method ?? '', path: req.url ?? '' });
        req.resume();
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (mode?.kind === 'status' && mode.retryAfterSeconds !== undefined) headers['Retry-After'] = String(mode.retryAfterSeconds);
        res.writeHead(code, headers);
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `injected ${code}`, reason: code === 429 ? 'TooManyRequests' : 'InternalError', code }));
      },
    );
    const server = createServer((client) => {
      const p = proxy as ApiProxy;
      p.sockets.add(client);
      client.on('close', () => p.sockets.delete(client));
      client.on('error', () => client.destroy());
      const mode = p.mode;
      if (mode.kind === 'status') {
        tls.emit('connection', client);
        return;
      }
      const up = connect(Number(upstream.port), upstream.hostname);
      p.sockets.add(up);
      up.on('close', () => {
        p.sockets.delete(up);
        client.destroy();
      });
      up.on('error', () => client.destroy());
      client.on('close', () => up.destroy());
      client.pipe(up);
      if (mode.kind === 'pass') {
        up.pipe(client);
        return;
      }
      // Each chunk from the server is held for `ms`, in order.
      let chain = Promise.resolve();
      up.on('data', (chunk: Buffer) => {
        chain = chain.then(() => new Promise<void>((r) => setTimeout(r, mode.ms))).then(() => {
          if (!client.destroyed) client.write(chunk);
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    proxy = new ApiProxy(server, tls, (server.address() as { port: number }).port);
    return proxy;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  set(mode: ProxyMode): void {
    this.mode = mode;
    for (const s of this.sockets) s.destroy();
  }

  /**
   * Sets `mode` for the test `t`: when it ends, passed or failed, the proxy pipes through again, so a
   * row that fails while its fault is on does not leave the fault on for the rows after it.
   */
  inject(t: TeardownHost, mode: ProxyMode): void {
    t.teardown(() => {
      if (this.mode.kind !== 'pass') this.set({ kind: 'pass' });
    });
    this.set(mode);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.tls.close();
    await new Promise((r) => this.server.close(r));
  }
}
