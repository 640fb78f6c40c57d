// The containerd client's gRPC-over-HTTP/2 side against a node:http2 server on a unix socket, for what
// a real containerd (containerd.test.ts) cannot be made to do: error statuses in trailers, HTTP errors
// without a gRPC status, reset streams, malformed replies, a connection closed mid-call.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, constants as h2, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ContainerdClient, GrpcStatus, RuntimeCallError, VERSION_METHOD } from '../../../src/sources/runtime/containerd';
import type { TeardownHost } from './containerd-daemon';

type Handler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: Buffer) => void;

interface FakeServer {
  socket: string;
  sessions: number;
  requests: Array<{ headers: IncomingHttpHeaders; body: Buffer }>;
  handle: Handler;
}

/** An HTTP/2 server on a private unix socket; `handle` answers each request once its body has arrived. */
async function fakeServer(t: TeardownHost): Promise<FakeServer> {
  const dir = mkdtempSync(join(tmpdir(), 'nha-grpc-'));
  const fake: FakeServer = { socket: join(dir, 'grpc.sock'), sessions: 0, requests: [], handle: () => undefined };
  const server: Http2Server = createServer();
  const open = new Set<Http2Session>();
  server.on('session', (s) => {
    fake.sessions++;
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    // Closing a stream with an error code (the reset cases) also reports it here.
    stream.on('error', () => undefined);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      fake.requests.push({ headers, body });
      fake.handle(stream, headers, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(fake.socket, resolve));
  t.teardown(async () => {
    for (const s of open) s.destroy();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  return fake;
}

/** A gRPC reply: one length-prefixed message, then grpc-status 0 in the trailers. */
function reply(stream: ServerHttp2Stream, message: Buffer, prefix?: Buffer): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  const header = prefix ?? Buffer.from([0, 0, 0, 0, 0]);
  if (!prefix) header.writeUInt32BE(message.length, 1);
  stream.end(Buffer.concat([header, message]));
}

/** VersionResponse{version: v, revision: r} on the wire. */
const versionReply = (v: string, r: string): Buffer =>
  Buffer.concat([Buffer.from([0x0a, v.length]), Buffer.from(v), Buffer.from([0x12, r.length]), Buffer.from(r)]);

async function failure(p: Promise<unknown>): Promise<RuntimeCallError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RuntimeCallError) return err;
    throw err;
  }
  throw new Error('the call succeeded');
}

t.test('a unary call: gRPC request headers and framing, the reply decoded, one connection for every call', async (t) => {
  const fake = await fakeServer(t);
  fake.handle = (stream) => reply(stream, versionReply('v2.1.5', 'abc123'));
  const client = new ContainerdClient(fake.socket);
  t.teardown(() => client.close());
  for (let i = 0; i < 3; i++) t.same(await client.version(2000), { version: 'v2.1.5', revision: 'abc123' });
  t.equal(fake.sessions, 1, 'the connection is reused');
  const { headers, body } = fake.requests[0] as { headers: IncomingHttpHeaders; body: Buffer };
  t.match(headers, {
    ':method': 'POST',
    ':path': VERSION_METHOD,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': '2000m',
  });
  t.same([...body], [0, 0, 0, 0, 0], 'an empty message: uncompressed, length 0');
});

t.test('an idle connection does not keep a one-shot process alive', async (t) => {
  const fake = await fakeServer(t);
  fake.handle = (stream) => reply(stream, versionReply('v', 'r'));
  // A process that makes one call and then has nothing left to do, as `diagnose` does: it must exit.
  const script = join(fake.socket, '..', 'one-call.ts');
  writeFileSync(
    script,
    `import { ContainerdClient } from ${JSON.stringify(join(__dirname, '../../../src/sources/runtime/containerd'))};\n` +
      `void new ContainerdClient(${JSON.stringify(fake.socket)}).version(5000).then((v) => console.log(v.version));\n`,
  );
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const child = spawn(process.execPath, [...loader, script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(killer);
  t.equal(out.trim(), 'v', 'the call was answered');
  t.same([code, signal], [0, null], 'the process exited by itself after the call');
});

t.test('an error status in the headers (trailers-only) with a percent-encoded message', async (t) => {
  const fake = await fakeServer(t);
  fake.handle = (stream) =>
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown%20service%20runtime.v1' },
      { endStream: true },
    );
  const client = new ContainerdClient(fake.socket);
  t.teardown(() => client.close());
  const err = await failure(client.version(2000));
  t.equal(err.code, GrpcStatus.UNIMPLEMENTED);
  t.equal(err.detail, 'unknown service runtime.v1');
  t.equal(err.message, `${VERSION_METHOD}: UNIMPLEMENTED: unknown service runtime.v1`);
});

t.test('an error status in the trailers after the headers', async (t) => {
  const fake = await fakeServer(t);
  fake.handle = (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '8', 'grpc-message': 'too many' }));
    stream.end();
  };
  const client = new ContainerdClient(fake.socket);
  t.teardown(() => client.close());
  t.match(await failure(client.version(2000)), { code: GrpcStatus.RESOURCE_EXHAUSTED, detail: 'too many' });
});

t.test('HTTP errors without a gRPC status map as gRPC clients map them', async (t) => {
  const fake = await fakeServer(t);
  let status = 404;
  fake.handle = (stream) => stream.respond({ ':status': status }, { endStream: true });
  const client = new ContainerdClient(fake.socket);
  t.teardown(() => client.close());
  for (const [http, code] of [
    [404, GrpcStatus.UNIMPLEMENTED],
    [503, GrpcStatus.UNAVAILABLE],
    [401, GrpcStatus.UNAUTHENTICATED],
    [500, GrpcStatus.UNKNOWN],
  ] as const) {
    status = http;
    const err = await failure(client.version(2000));
    t.equal(err.code, code, `HTTP ${http}: ${err.message}`);
    t.match(err.detail, `HTTP ${http}`);
  }
});

t.test('a stream the server refuses is UNAVAILABLE; one it cancels is CANCELLED', async (t) => {
  const fake = await fakeServer(t);
  let code: number = h2.NGHTTP2_REFUSED_STREAM;
  fake.handle = (stream) => stream.close(code);
  const client = new ContainerdClient(fake.socket);
  t.teardown(() => client.close());
  t.equal((await failure(client.version(2000))).code, GrpcStatus.UNAVAILABLE);
  code = h2.NGHTTP2_CANCEL;
  t.equal((await failure(client.version(2000))).code, GrpcStatus.CANCELLED);
});

t.test('malformed replies are INTERNAL and say what is wrong', async (t) => {
  const fake = await fakeServer(t);
  let prefix = Buffer.from([0, 0, 0, 0, 9]);
  fake.handle = (stream) => reply(stream, versionReply('v', 'r'), prefix);
  const client = new ContainerdClient(fake.socket);
  t.teardown(() => client.close());
  let err = await failure(client.version(2000));
  t.equal(err.code, GrpcStatus.INTERNAL);
  t.match(err.detail, /announces 9/);
  prefix = Buffer.from([1, 0, 0, 0, 6]);
  err = await failure(client.version(2000));
  t.equal(err.code, GrpcStatus.INTERNAL);
  t.match(err.detail, /compressed/);
  // A field of the wrong wire type: the protobuf decoder's error, with the message and field named.
  prefix = Buffer.from([0, 0, 0, 0, 2]);
  fake.handle = (stream) => reply(stream, Buffer.from([0x08, 0x01]), prefix);
  err = await failure(client.version(2000));
  t.equal(err.code, GrpcStatus.INTERNAL);
  t.match(err.detail, /VersionResponse\.version/);
});

t.test('a connection closed mid-call is UNAVAILABLE, and the next call connects again', async (t) => {
  const fake = await fakeServer(t);
  let drop = true;
  fake.handle = (stream) => {
    if (drop) stream.session?.destroy();
    else reply(stream, versionReply('v', 'r'));
  };
  const client = new ContainerdClient(fake.socket);
  t.teardown(() => client.close());
  const err = await failure(client.version(2000));
  t.equal(err.code, GrpcStatus.UNAVAILABLE, err.message);
  drop = false;
  t.same(await client.version(2000), { version: 'v', revision: 'r' });
  t.equal(fake.sessions, 2);
});

t.test('a server that never answers: DEADLINE_EXCEEDED at the deadline, the stream cancelled', async (t) => {
  const fake = await fakeServer(t);
  let cancelled: Promise<number> | undefined;
  fake.handle = (stream) => {
    cancelled = new Promise((resolve) => stream.on('close', () => resolve(stream.rstCode)));
  };
  const client = new ContainerdClient(fake.socket);
  t.teardown(() => client.close());
  const started = Date.now();
  const err = await failure(client.version(300));
  t.equal(err.code, GrpcStatus.DEADLINE_EXCEEDED);
  t.ok(err.timedOut);
  t.ok(Date.now() - started >= 290, `after ${Date.now() - started} ms`);
  t.equal(await cancelled, h2.NGHTTP2_CANCEL, 'the server sees the stream reset with CANCEL');
});
