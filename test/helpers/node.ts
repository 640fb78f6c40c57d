// A node in a box as a kubeadm node looks to the agent: the kubelet's credentials from the test cluster
// under / and the .deb installed (which starts the agent), optionally with an ini file of the test's own
// written first, so the agent's first start already uses it; and the wait the tests of such nodes share.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Box, type TeardownHost } from './box';
import type { Cluster } from './cluster';
import { freePort } from './net';
import { ensurePackages } from './packages';

export interface NodeOptions {
  /** An ini file for /etc/node-health/, in place before the agent first starts. */
  ini?: { name: string; text: string };
  /** Run in the box before the package is installed (e.g. start containerd). */
  before?: (box: Box) => Promise<unknown>;
  /** The agent's metrics port; a free one when not given. */
  metricsPort?: number;
}

/** A box with the agent installed, serving its metrics on a port of its own. */
export type NodeBox = Box & { readonly metricsPort: number };

export async function installedNode(t: TeardownHost, cluster: Cluster, node: string, opts: NodeOptions = {}): Promise<NodeBox> {
  const { deb } = ensurePackages();
  const box = await Box.up(t, 'k8s-node');
  await opts.before?.(box);
  const work = mkdtempSync(join(tmpdir(), 'nha-k8s-node-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const creds = join(work, 'creds.tar');
  execFileSync('tar', ['-C', cluster.nodeRoot(node), '-cf', creds, 'etc', 'var']);
  await box.copyIn(creds, '/tmp/');
  await box.check(['tar', '-C', '/', '-xf', '/tmp/creds.tar']);
  // Boxes share the host's network: the shipped port 20257 would be taken by whichever agent (in another
  // box, or a test's daemon on the host) started first. Written before the test's own ini, which sorts later.
  const metricsPort = opts.metricsPort ?? (await freePort());
  await box.check(['sh', '-c', 'mkdir -p /etc/node-health && cat > /etc/node-health/05-test-metrics.ini'], { input: `[metrics]\nport = ${metricsPort}\n` });
  const { ini } = opts;
  if (ini) await box.check(['sh', '-c', `mkdir -p /etc/node-health && cat > /etc/node-health/${ini.name}`], { input: ini.text });
  await box.copyIn(deb, '/tmp/');
  await box.check(['apt-get', 'install', '-y', '-q', `/tmp/${deb.split('/').pop() as string}`], {
    env: { DEBIAN_FRONTEND: 'noninteractive' },
    timeoutMs: 180_000,
  });
  return Object.assign(box, { metricsPort });
}

/** Polls `probe` every 100 ms until it gives a value (not undefined or false), which is returned; throws after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
