// The healthz probe against real local HTTP servers: healthy, failing, hung before and after the
// headers, and nothing listening.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { probeHttpHealth } from '../../../src/sources/runtime/http-health';

async function serve(t: { teardown(fn: () => unknown): void }, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
}

t.test('200 "ok" is healthy', async (t) => {
  const url = await serve(t, (_req, res) => res.end('ok'));
  const r = await probeHttpHealth(url, 2000);
  t.match(r, { healthy: true, statusCode: 200, body: 'ok', timedOut: false });
  t.equal(r.error, undefined);
});

t.test('500 is unhealthy and keeps the body (the failing checks), cut to 1 KiB', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.statusCode = 500;
    res.end(`[-]syncloop failed: reason withheld\n${'x'.repeat(5000)}`);
  });
  const r = await probeHttpHealth(url, 2000);
  t.match(r, { healthy: false, statusCode: 500, timedOut: false });
  t.match(r.body, /^\[-\]syncloop failed/);
  t.ok(r.body.length <= 1024);
});

t.test('a server that accepts and never answers times out at the bound', async (t) => {
  const url = await serve(t, () => undefined);
  const r = await probeHttpHealth(url, 300);
  t.match(r, { healthy: false, timedOut: true, error: 'no complete answer within 300 ms' });
  t.ok(r.elapsedMs >= 290 && r.elapsedMs < 1500, `${r.elapsedMs} ms`);
});

t.test('headers sent, body never finished: also a timeout', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.writeHead(200);
    res.write('o');
  });
  const r = await probeHttpHealth(url, 300);
  t.match(r, { healthy: false, timedOut: true });
});

t.test('nothing listening: refused at once, naming host and port', async (t) => {
  // A port just released by a server of our own is free.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const r = await probeHttpHealth(`http://127.0.0.1:${port}/healthz`, 2000);
  t.match(r, { healthy: false, timedOut: false, error: `nothing listens on 127.0.0.1:${port}` });
  t.ok(r.elapsedMs < 1000);
});
