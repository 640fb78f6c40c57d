// A thin typed client for the few API calls the agent makes, over node:https. Not @kubernetes/client-node:
// measured, that library alone adds ~60 MB of RSS and 20 MB of bundled JavaScript to a daemon that needs
// five endpoints (docs/kubernetes.md). TLS is always verified; credentials are fetched for every request,
// so a rotated certificate or renewed token is used from the next request on.
import { Agent, request } from 'node:https';
import { messageOf } from '../../errors';
import { Credentials } from './credentials';
import { KubeApiError, KubeError } from './errors';
import type { Kubeconfig } from './kubeconfig';

export interface RequestOptions {
  query?: Record<string, string>;
  body?: unknown;
  /** Default application/json (when there is a body). */
  contentType?: string;
}

/** One finished API request, for metrics: code is the HTTP status, or "error" when none came back. */
export interface RequestRecord {
  verb: string;
  resource: string;
  code: string;
  seconds: number;
}

export interface ClientOptions {
  userAgent: string;
  timeoutMs: number;
  onRequest?: (r: RequestRecord) => void;
}

/** Errors from node's TLS layer that mean the server's certificate did not verify. */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class KubeClient {
  readonly credentials: Credentials;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4, timeout: 60_000 });

  constructor(
    readonly config: Kubeconfig,
    private readonly options: ClientOptions,
  ) {
    this.credentials = new Credentials(config);
  }

  get server(): string {
    return this.config.server;
  }

  /** Sends one request; a 401 makes the credentials be read (or the plugin run) again and is retried once. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    try {
      return await this.once<T>(method, path, opts);
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.status !== 401) throw err;
      this.credentials.invalidate();
      return this.once<T>(method, path, opts);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private async once<T>(method: string, path: string, opts: RequestOptions): Promise<T> {
    const auth = await this.credentials.get();
    const url = new URL(this.config.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': this.options.userAgent };
    if (body) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = String(body.length);
    }
    if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
    const started = process.hrtime.bigint();
    const record = (code: string) =>
      this.options.onRequest?.({
        verb: method,
        resource: resourceOf(path),
        code,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
      });

    return new Promise<T>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          headers,
          agent: this.agent,
          ...(auth.ca ? { ca: auth.ca } : {}),
          ...(auth.cert ? { cert: auth.cert, key: auth.key } : {}),
          ...(this.config.tlsServerName ? { servername: this.config.tlsServerName } : {}),
          rejectUnauthorized: true,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('error', (err) => {
            record('error');
            reject(this.transportError(err, method, path));
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            record(String(status));
            const text = Buffer.concat(chunks).toString('utf8');
            if (status >= 200 && status < 300) {
              try {
                resolve((text === '' ? {} : JSON.parse(text)) as T);
              } catch {
                reject(new KubeError('API', `${method} ${path}: the API server ${this.config.server} answered ${status} with a body that is not JSON`));
              }
              return;
            }
            const retryAfter = Number(res.headers['retry-after']);
            reject(apiError(method, path, status, text, Number.isFinite(retryAfter) ? retryAfter : undefined));
          });
        },
      );
      req.setTimeout(this.options.timeoutMs, () => {
        req.destroy(Object.assign(new Error(`no answer within ${this.options.timeoutMs / 1000}s`), { code: 'ETIMEDOUT' }));
      });
      req.on('error', (err) => {
        record('error');
        reject(this.transportError(err, method, path));
      });
      req.end(body);
    });
  }

  private transportError(err: Error, method: string, path: string): KubeError {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const server = this.config.server;
    if (TLS_VERIFY_CODES.has(code)) {
      const ca = this.config.ca ? ('file' in this.config.ca ? this.config.ca.file : `certificate-authority-data in ${this.config.file}`) : "the system's trusted CAs";
      return new KubeError(
        'TLS',
        `the API server ${server} presented a certificate that ${ca} does not verify (${code}: ${err.message}); check the CA and server in ${this.config.file}`,
        { cause: err },
      );
    }
    if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || code === 'EPROTO') {
      return new KubeError('TLS', `TLS with the API server ${server} failed (${code}: ${err.message}); check the server address in ${this.config.file}`, {
        cause: err,
      });
    }
    return new KubeError(
      'UNREACHABLE',
      `cannot reach the API server ${server} (${method} ${path}: ${messageOf(err)}); check that it is up and that this node can reach the server in ${this.config.file}`,
      { cause: err },
    );
  }
}

function apiError(method: string, path: string, status: number, text: string, retryAfter: number | undefined): KubeApiError {
  let reason = '';
  let message = text.trim().slice(0, 500);
  try {
    const s = JSON.parse(text) as { kind?: string; reason?: string; message?: string };
    if (s.kind === 'Status') {
      reason = s.reason ?? '';
      message = s.message ?? message;
    }
  } catch {
    // Not a Status object (a proxy's error page): keep the text.
  }
  return new KubeApiError(status, reason, message, `${method} ${path}: ${status} ${reason || 'error'}: ${message}`, retryAfter);
}

/** "nodes/status" for /api/v1/nodes/x/status, "events" for /api/v1/namespaces/default/events/y. */
export function resourceOf(path: string): string {
  const parts = path.split('?')[0]?.split('/').filter((p) => p !== '') ?? [];
  // /api/v1/... or /apis/<group>/<version>/...
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const resource = rest[0] ?? '';
  return rest.length > 2 ? `${resource}/${rest[2]}` : resource;
}
