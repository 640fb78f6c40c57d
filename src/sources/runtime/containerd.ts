// containerd over gRPC on its unix socket: its own Version service (answered by the daemon's main
// loop, the call gardener-node-agent uses) and the CRI the kubelet uses (RuntimeReady, NetworkReady,
// image listing). Every call carries a deadline, so a hung daemon — socket accepting, nothing
// answering — shows up as a timeout instead of a probe that never returns.
//
// The three calls are unary with empty requests, so they speak gRPC's HTTP/2 mapping
// (grpc/doc/PROTOCOL-HTTP2.md) over node:http2 directly. @grpc/grpc-js did the same job with 4-6 MiB
// more idle RSS, and twice the idle CPU while containerd was absent (docs/benchmarks.md): channels,
// resolvers, load balancing and reconnect machinery that one local socket does not need.
import { connect as connectHttp2, constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { connect as connectUnix } from 'node:net';
import {
  decode,
  EMPTY_REQUEST,
  ListImagesResponse,
  StatusResponse,
  VersionResponse,
  type Decoded,
  type MessageSpec,
} from './messages';

export const VERSION_METHOD = '/containerd.services.version.v1.Version/Version';
export const STATUS_METHOD = '/runtime.v1.RuntimeService/Status';
export const LIST_IMAGES_METHOD = '/runtime.v1.ImageService/ListImages';

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatus = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const STATUS_NAMES = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

/** The largest reply accepted (an image list on a node with many images is the big one). */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;

export interface RuntimeConditionValue {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** A failed call: `code` is the gRPC status (DEADLINE_EXCEEDED, UNAVAILABLE, UNIMPLEMENTED, …). */
export class RuntimeCallError extends Error {
  override name = 'RuntimeCallError';
  constructor(
    readonly method: string,
    readonly code: number,
    readonly detail: string,
    readonly elapsedMs: number,
  ) {
    super(`${method}: ${STATUS_NAMES.get(code) ?? `status ${code}`}: ${detail}`);
  }

  get timedOut(): boolean {
    return this.code === GrpcStatus.DEADLINE_EXCEEDED;
  }
}

export class ContainerdClient {
  private session: ClientHttp2Session | undefined;

  constructor(readonly socket: string) {}

  async version(timeoutMs: number): Promise<Decoded<typeof VersionResponse>> {
    return this.call(VERSION_METHOD, VersionResponse, timeoutMs);
  }

  /** The CRI runtime conditions (RuntimeReady, NetworkReady). */
  async runtimeConditions(timeoutMs: number): Promise<RuntimeConditionValue[]> {
    const reply = await this.call(STATUS_METHOD, StatusResponse, timeoutMs);
    return reply.status.conditions;
  }

  /** The images the CRI lists (ID and size); the call's latency is what the slow-runtime warning measures. */
  async listImages(timeoutMs: number): Promise<Array<{ id: string; size: bigint }>> {
    const reply = await this.call(LIST_IMAGES_METHOD, ListImagesResponse, timeoutMs);
    return reply.images;
  }

  /** Closes the connection once calls in flight have finished. */
  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  /**
   * One connection, reused by every call. One that failed or closed (containerd restarted) is
   * replaced at the next call, without back-off: a daemon that is back is reached at once.
   */
  private connection(): ClientHttp2Session {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    const session = connectHttp2('http://localhost', { createConnection: () => connectUnix(this.socket) });
    const forget = (): void => {
      if (this.session === session) this.session = undefined;
    };
    // A connection error also reaches every stream on it, which reports it; this listener keeps the
    // session's own 'error' from being unhandled.
    session.on('error', forget);
    session.on('goaway', forget);
    session.on('close', forget);
    // An idle connection must not keep a one-shot command (diagnose) running; a call in flight is
    // kept alive by its deadline timer.
    session.unref();
    this.session = session;
    return session;
  }

  private call<M extends MessageSpec>(method: string, spec: M, timeoutMs: number): Promise<Decoded<M>> {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      let settled = false;
      let stream: ClientHttp2Stream | undefined;
      const fail = (code: number, detail: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new RuntimeCallError(method, code, detail, performance.now() - started));
      };
      const timer = setTimeout(() => {
        stream?.close(h2.NGHTTP2_CANCEL);
        fail(GrpcStatus.DEADLINE_EXCEEDED, `no reply within ${timeoutMs} ms`);
      }, timeoutMs);

      const session = this.connection();
      try {
        stream = session.request({
          [h2.HTTP2_HEADER_METHOD]: 'POST',
          [h2.HTTP2_HEADER_PATH]: method,
          [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
          [h2.HTTP2_HEADER_TE]: 'trailers',
          'grpc-timeout': `${Math.min(99_999_999, Math.max(1, Math.ceil(timeoutMs)))}m`,
          [h2.HTTP2_HEADER_USER_AGENT]: 'node-health-agent',
        });
      } catch (err) {
        // A session that received GOAWAY or is closing refuses new streams; the next call reconnects.
        this.session = undefined;
        fail(GrpcStatus.UNAVAILABLE, (err as Error).message);
        return;
      }

      let headers: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders = {};
      let error: (Error & { code?: string }) | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      const open = stream;
      open.on('response', (h) => (headers = h));
      open.on('trailers', (t) => (trailers = t));
      open.on('error', (err: Error) => (error = err));
      open.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_REPLY_BYTES) {
          open.close(h2.NGHTTP2_CANCEL);
          fail(GrpcStatus.RESOURCE_EXHAUSTED, `the reply is larger than ${MAX_REPLY_BYTES} bytes`);
        } else {
          chunks.push(chunk);
        }
      });
      open.on('close', () => {
        if (settled) return;
        const status = header(trailers, 'grpc-status') ?? header(headers, 'grpc-status');
        if (status === undefined) {
          const [code, detail] = noStatus(open, session, headers, error);
          fail(code, detail);
          return;
        }
        if (status !== '0') {
          fail(Number(status), grpcMessage(header(trailers, 'grpc-message') ?? header(headers, 'grpc-message')));
          return;
        }
        let reply: Decoded<M>;
        try {
          reply = decode(spec, unframe(Buffer.concat(chunks)));
        } catch (err) {
          fail(GrpcStatus.INTERNAL, `cannot decode the reply: ${(err as Error).message}`);
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(reply);
      });
      const request = Buffer.alloc(5 + EMPTY_REQUEST.length);
      request.writeUInt32BE(EMPTY_REQUEST.length, 1);
      EMPTY_REQUEST.copy(request, 5);
      open.end(request);
    });
  }
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** grpc-message is percent-encoded. */
function grpcMessage(raw: string | undefined): string {
  if (!raw) return 'no message';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** A unary reply: exactly one length-prefixed message, uncompressed (the agent offers no compression). */
function unframe(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(`${body.length} bytes, shorter than a message header`);
  if (body[0] !== 0) throw new Error('a compressed message, but no compression was offered');
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) throw new Error(`${body.length - 5} bytes after the header, which announces ${length}`);
  return body.subarray(5);
}

/** Why a stream ended without a gRPC status, mapped as gRPC clients do (PROTOCOL-HTTP2.md, http-grpc-status-mapping.md). */
function noStatus(
  stream: ClientHttp2Stream,
  session: ClientHttp2Session,
  headers: IncomingHttpHeaders,
  error: (Error & { code?: string }) | undefined,
): [number, string] {
  // The connection failed or closed: the socket is missing, nothing listens, containerd went away.
  if ((error && error.code !== 'ERR_HTTP2_STREAM_ERROR') || (!error && session.destroyed)) {
    const cause = error?.cause instanceof Error ? error.cause : error;
    return [GrpcStatus.UNAVAILABLE, cause ? cause.message : 'the connection closed before the reply'];
  }
  // node:http2 gives :status as a number, though its type says string.
  const rawStatus = headers[h2.HTTP2_HEADER_STATUS];
  const httpStatus = rawStatus === undefined ? 200 : Number(rawStatus);
  if (httpStatus !== 200) {
    const code =
      httpStatus === 400 ? GrpcStatus.INTERNAL
      : httpStatus === 401 ? GrpcStatus.UNAUTHENTICATED
      : httpStatus === 403 ? GrpcStatus.PERMISSION_DENIED
      : httpStatus === 404 ? GrpcStatus.UNIMPLEMENTED
      : [429, 502, 503, 504].includes(httpStatus) ? GrpcStatus.UNAVAILABLE
      : GrpcStatus.UNKNOWN;
    return [code, `HTTP ${httpStatus} without a gRPC status`];
  }
  const rst = stream.rstCode;
  const code =
    rst === h2.NGHTTP2_REFUSED_STREAM ? GrpcStatus.UNAVAILABLE
    : rst === h2.NGHTTP2_CANCEL ? GrpcStatus.CANCELLED
    : rst === h2.NGHTTP2_ENHANCE_YOUR_CALM ? GrpcStatus.RESOURCE_EXHAUSTED
    : rst === h2.NGHTTP2_INADEQUATE_SECURITY ? GrpcStatus.PERMISSION_DENIED
    : GrpcStatus.INTERNAL;
  return [code, `the stream ended without a gRPC status (HTTP/2 error code ${rst ?? 'none'})`];
}
