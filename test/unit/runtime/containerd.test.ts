// The containerd client against a real containerd on a private socket: version, CRI status and image
// listing decode real replies; a stopped daemon times out at the deadline; a killed one is unreachable
// at once; a restarted one is reached again without waiting for gRPC's reconnect back-off.
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { ContainerdClient, GrpcStatus, RuntimeCallError } from '../../../src/sources/runtime/containerd';
import { ContainerdDaemon } from './containerd-daemon';

async function failure(p: Promise<unknown>): Promise<RuntimeCallError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RuntimeCallError) return err;
    throw err;
  }
  throw new Error('the call succeeded');
}

t.test('a real containerd: version, CRI status, images, hang, crash, restart', async (t) => {
  const daemon = await ContainerdDaemon.start(t);
  const client = new ContainerdClient(daemon.socket);
  t.teardown(() => client.close());

  t.test('Version matches the binary', async (t) => {
    const v = await client.version(5000);
    const cli = execFileSync('containerd', ['--version'], { encoding: 'utf8' });
    t.ok(v.version.length > 0, `version ${v.version}`);
    t.match(cli, v.version, 'containerd --version names the same version');
    t.match(cli, v.revision, 'and the same revision');
  });

  t.test('CRI Status reports RuntimeReady and NetworkReady', async (t) => {
    const conditions = await client.runtimeConditions(5000);
    t.same(conditions.map((c) => c.type).sort(), ['NetworkReady', 'RuntimeReady']);
    const network = conditions.find((c) => c.type === 'NetworkReady');
    // No CNI configuration on this host: the runtime says so, with its reason and message.
    t.equal(network?.status, false);
    t.equal(network?.reason, 'NetworkPluginNotReady');
    t.match(network?.message, /cni/i);
    t.equal(conditions.find((c) => c.type === 'RuntimeReady')?.status, true);
  });

  t.test('ListImages: none in a fresh root, then the imported one with its ID and size', async (t) => {
    t.same(await client.listImages(5000), []);
    const id = daemon.importImage('example.test/nha/hello:latest');
    // The CRI picks up images from containerd's events, a moment after the import returns.
    let images = await client.listImages(5000);
    for (let i = 0; i < 50 && images.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      images = await client.listImages(5000);
    }
    t.equal(images.length, 1);
    t.equal(images[0]?.id, id);
    t.ok((images[0]?.size ?? 0n) > 0n, `size ${images[0]?.size}`);
  });

  t.test('a stopped daemon: the call ends at its deadline with DEADLINE_EXCEEDED', async (t) => {
    await daemon.stop();
    const started = Date.now();
    const err = await failure(client.version(500));
    const took = Date.now() - started;
    daemon.signal('SIGCONT');
    t.equal(err.code, GrpcStatus.DEADLINE_EXCEEDED, err.message);
    t.ok(err.timedOut);
    t.ok(took >= 450 && took < 2000, `ended after ${took} ms`);
    t.ok((await client.version(5000)).version, 'answers again after SIGCONT');
  });

  t.test('a killed daemon is UNAVAILABLE at once; a restarted one answers within a second', async (t) => {
    await daemon.kill();
    const started = Date.now();
    const err = await failure(client.version(5000));
    t.equal(err.code, GrpcStatus.UNAVAILABLE, err.message);
    t.ok(Date.now() - started < 2000, `failed after ${Date.now() - started} ms, not at the deadline`);
    await daemon.launch();
    const back = Date.now();
    let answered = false;
    while (!answered && Date.now() - back < 5000) {
      answered = await client.version(1000).then(() => true, () => false);
      if (!answered) await new Promise((r) => setTimeout(r, 50));
    }
    t.ok(answered, `answered ${Date.now() - back} ms after containerd was back`);
    t.ok(Date.now() - back < 1500, 'without gRPC reconnect back-off');
  });
});

t.test('a socket that does not exist is UNAVAILABLE with the path in the message', async (t) => {
  const client = new ContainerdClient('/run/nha-test-no-such-dir/containerd.sock');
  t.teardown(() => client.close());
  const err = await failure(client.version(2000));
  t.equal(err.code, GrpcStatus.UNAVAILABLE);
  t.match(err.message, 'Version/Version: UNAVAILABLE');
  t.match(err.message, '/run/nha-test-no-such-dir/containerd.sock');
});
