// Plain-HTTP health endpoints on the node: the kubelet's /healthz (127.0.0.1:10248) and kube-proxy's
// /livez (:10256). The whole exchange — connect, headers, body — is bounded by one timeout, because a
// hung kubelet accepts the connection and then never answers.
import { get } from 'node:http';

export interface HttpHealth {
  healthy: boolean;
  /** The HTTP status, when a response arrived. */
  statusCode?: number;
  /** The start of the body (healthz answers "ok", or the failing checks). */
  body: string;
  /** Why there was no usable response: refused, timed out, reset. */
  error?: string;
  timedOut: boolean;
  elapsedMs: number;
}

const MAX_BODY = 1024;

export function probeHttpHealth(url: string, timeoutMs: number): Promise<HttpHealth> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: Omit<HttpHealth, 'elapsedMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ...r, elapsedMs: elapsed() });
    };
    const req = get(url, { agent: false, headers: { 'user-agent': 'node-health-agent' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        if (size < MAX_BODY) chunks.push(d);
        size += d.length;
      });
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY).trim();
        finish({ healthy: res.statusCode === 200, statusCode: res.statusCode ?? 0, body, timedOut: false });
      });
      res.on('error', (err) => finish({ healthy: false, body: '', error: err.message, timedOut: false }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const what = err.code === 'ECONNREFUSED' ? `nothing listens on ${new URL(url).host}` : err.message;
      finish({ healthy: false, body: '', error: what, timedOut: false });
    });
    const timer = setTimeout(
      () => finish({ healthy: false, body: '', error: `no complete answer within ${timeoutMs} ms`, timedOut: true }),
      timeoutMs,
    );
    timer.unref();
  });
}
