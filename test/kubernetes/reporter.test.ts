// The Kubernetes output against a real kube-apiserver with Node,RBAC authorization and NodeRestriction,
// using kubelet-style credentials; every outcome is read back with the admin certificate.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { KubeClient } from '../../src/outputs/kubernetes/client';
import { ConditionWriter } from '../../src/outputs/kubernetes/condition-writer';
import { loadKubeconfig, parseKubeconfig } from '../../src/outputs/kubernetes/kubeconfig';
import { NodeReporter, type KubernetesConfig } from '../../src/outputs/kubernetes/reporter';
import type { NodeObject } from '../../src/outputs/kubernetes/types';
import type { NodeCondition } from '../../src/types';
import { Cluster, waitFor, type ConditionView } from '../helpers/cluster';
import { execKubeconfig, expiringTokenPlugin } from '../helpers/exec-kubeconfig';
import { kubernetesConfig, recordingLogger, type RecordingLogger } from './support';

interface Teardown {
  teardown(fn: () => unknown): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fast: Partial<KubernetesConfig> = { status_refill: 100, retry_max: 1000 };

function tmp(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-kube-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function start(
  t: Teardown,
  kubeconfig: string,
  overrides: Partial<KubernetesConfig> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<{ r: NodeReporter; log: RecordingLogger }> {
  const log = recordingLogger();
  const r = await NodeReporter.create(kubernetesConfig({ kubeconfig_paths: [kubeconfig], ...fast, ...overrides }), log, { env });
  t.teardown(() => r.stop());
  return { r, log };
}

function cond(type: string, status: NodeCondition['status'], reason: string, message = `${type} is ${status}`, at = new Date()): NodeCondition {
  return { type, status, reason, message, lastTransitionTime: at.toISOString() };
}

/** API times have second precision. */
const seconds = (iso: string) => new Date(Math.floor(Date.parse(iso) / 1000) * 1000).toISOString().replace('.000Z', 'Z');

const NODES = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e', 'node-f', 'node-x'];

t.test('against a real API server', async (t) => {
  const cluster = await Cluster.up(t, NODES);

  const until = (node: string, type: string, ok: (c: ConditionView) => boolean) =>
    waitFor(`${type} on ${node}`, async () => {
      const c = await cluster.condition(node, type);
      return c && ok(c) ? c : undefined;
    });

  t.test("the node's credentials are laid out as on a kubeadm node and resolve there when copied to /", async (t) => {
    const conf = parseKubeconfig('/etc/kubernetes/kubelet.conf', readFileSync(cluster.kubeletConf('node-a'), 'utf8'));
    t.same(conf.clientCert, { file: '/var/lib/kubelet/pki/kubelet-client-current.pem' });
    t.same(conf.clientKey, { file: '/var/lib/kubelet/pki/kubelet-client-current.pem' });
    t.equal(conf.server, cluster.server);
    const subject = execFileSync('openssl', ['x509', '-noout', '-subject', '-in', join(cluster.nodeRoot('node-a'), 'var/lib/kubelet/pki/kubelet-client-current.pem')]);
    t.equal(subject.toString().trim(), 'subject=O = system:nodes, CN = system:node:node-a');
  });

  t.test('sets and clears an owned condition; lastTransitionTime moves only on a flip', async (t) => {
    const { r } = await start(t, cluster.kubeletConf('node-a'));
    t.same(r.adopted(), [], 'a new Node has nothing to adopt');
    t.match(r.status(), { apiServer: cluster.server, identity: 'system:node:node-a', nodeName: 'node-a', nodeNameSource: 'certificate', connected: true });

    const t0 = new Date(Date.now() - 5000);
    r.setConditions([cond('KernelDeadlock', 'True', 'TaskHung', 'task jbd2/sda1-8:211 blocked for more than 120 seconds', t0)]);
    const set = await until('node-a', 'KernelDeadlock', (c) => c.status === 'True');
    t.match(set, { reason: 'TaskHung', message: 'task jbd2/sda1-8:211 blocked for more than 120 seconds', lastTransitionTime: seconds(t0.toISOString()) });

    const t1 = new Date();
    r.setConditions([cond('KernelDeadlock', 'False', 'KernelHasNoDeadlock', 'kernel has no deadlock', t1)]);
    const cleared = await until('node-a', 'KernelDeadlock', (c) => c.status === 'False');
    t.equal(cleared.lastTransitionTime, seconds(t1.toISOString()), 'a flip sets lastTransitionTime');

    r.setConditions([cond('KernelDeadlock', 'False', 'KernelHasNoDeadlock', 'still no deadlock', new Date(Date.now() + 3_600_000))]);
    const reworded = await until('node-a', 'KernelDeadlock', (c) => c.message === 'still no deadlock');
    t.equal(reworded.lastTransitionTime, cleared.lastTransitionTime, 'a new message is not a transition: the Node keeps its time');
    t.ok(Date.parse(reworded.lastHeartbeatTime ?? '') >= Date.parse(cleared.lastHeartbeatTime ?? ''), 'heartbeat time refreshed');

    await waitFor('nothing pending', async () => (r.status().pending === 0 ? true : undefined));
    const st = r.status();
    t.equal(st.lastError, null);
    t.ok(st.lastWriteAt);
    t.equal(st.conditionWrites, 3);
    const managed = (await cluster.node('node-a')).metadata.managedFields?.find((m) => m.manager === 'node-health-agent');
    t.equal(managed?.subresource, 'status', 'written with fieldManager node-health-agent to the status subresource');
  });

  t.test("a kubelet patching Ready with the same identity concurrently: both writers' conditions survive", async (t) => {
    const { r } = await start(t, cluster.kubeletConf('node-b'));
    let kubeletBeat = '';
    const kubelet = (async () => {
      for (let i = 0; i < 60; i++) {
        kubeletBeat = new Date(Date.now() + i * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
        // The kubelet's own patch: only its condition types, with $setElementOrder naming them.
        const res = await cluster.asNode(
          'node-b',
          'PATCH',
          '/api/v1/nodes/node-b/status?fieldManager=kubelet',
          {
            status: {
              '$setElementOrder/conditions': [{ type: 'MemoryPressure' }, { type: 'Ready' }],
              conditions: [
                { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'ok', lastHeartbeatTime: kubeletBeat, lastTransitionTime: '2026-01-01T00:00:00Z' },
                { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: kubeletBeat, lastTransitionTime: '2026-01-01T00:00:00Z' },
              ],
            },
          },
          'application/strategic-merge-patch+json',
        );
        if (res.status !== 200) throw new Error(`kubelet patch: ${res.status} ${JSON.stringify(res.body)}`);
        await sleep(20);
      }
    })();
    let last = cond('FrequentContainerdRestart', 'False', 'NoFrequentContainerdRestart');
    for (let i = 0; i < 40; i++) {
      last = i % 2 === 0 ? cond('FrequentContainerdRestart', 'True', 'FrequentContainerdRestart', `restart ${i}`) : cond('FrequentContainerdRestart', 'False', 'NoFrequentContainerdRestart', `quiet ${i}`);
      r.setConditions([last]);
      await sleep(30);
    }
    await kubelet;
    const ours = await until('node-b', 'FrequentContainerdRestart', (c) => c.message === last.message);
    t.equal(ours.status, last.status);
    const node = await cluster.node('node-b');
    const types = (node.status?.conditions ?? []).map((c) => c.type).sort();
    t.same(types, ['FrequentContainerdRestart', 'MemoryPressure', 'Ready']);
    t.match(node.status?.conditions?.find((c) => c.type === 'Ready'), { status: 'True', lastHeartbeatTime: kubeletBeat }, "the kubelet's last heartbeat stands");
    t.equal(r.status().lastError, null);
    t.ok(r.status().conditionWrites < 40, `changes coalesced: ${r.status().conditionWrites} writes for 40 changes`);
  });

  t.test("another node's Node is refused and reported clearly, once", async (t) => {
    const { r, log } = await start(t, cluster.kubeletConf('node-c'), { node_name: 'node-a' });
    r.setConditions([cond('KernelDeadlock', 'True', 'TaskHung')]);
    t.equal(r.status().connected, false);
    t.match(
      r.status().lastError,
      /^the API server refused to let system:node:node-c read Node node-a \(403 Forbidden: .*node 'node-c' cannot read 'node-a'.*\): a node's credentials may only write its own Node, and the node name node-a came from \[kubernetes\] node_name; unset it or use node-c$/,
    );
    await sleep(3000); // several retries (retry_max 1s)
    t.equal(log.matching(/refused to let system:node:node-c/, 'error').length, 1, 'logged once, not per retry');

    // The write itself, as the condition writer makes it.
    const wlog = recordingLogger();
    const client = new KubeClient(
      loadKubeconfig(cluster.kubeletConf('node-c')),
      { userAgent: 'test', timeoutMs: 10_000 },
    );
    t.teardown(() => client.close());
    const writer = new ConditionWriter(
      { patchStatus: (body) => client.request<NodeObject>('PATCH', '/api/v1/nodes/node-a/status', { body, contentType: 'application/strategic-merge-patch+json' }) },
      { heartbeatMs: 60_000, burst: 5, refillMs: 100, retryMaxMs: 1000, removeStale: true, fieldManager: 'node-health-agent', log: wlog, identity: () => ({ nodeName: 'node-a', nodeNameSource: 'flag', identity: 'system:node:node-c' }) },
    );
    t.teardown(() => writer.stop());
    writer.adopt({ metadata: { name: 'node-a', uid: 'x' } });
    writer.setConditions([cond('Intruder', 'True', 'X')]);
    await waitFor('the refusal', async () => writer.status().lastError ?? undefined);
    t.match(writer.status().lastError, /^the API server refused to let system:node:node-c write the status of Node node-a \(403 Forbidden: .*\): a node's credentials may only write its own Node, and the node name node-a came from --node-name; unset it or use node-c$/);
    t.equal(writer.status().pending, 1, 'the change is kept for later');
    t.equal(await cluster.condition('node-a', 'Intruder'), undefined);
  });

  t.test('a restart adopts the Node instead of resetting it; types no longer owned are deleted (opt-out)', async (t) => {
    const first = await start(t, cluster.kubeletConf('node-d'));
    const since = new Date(Date.now() - 60_000);
    first.r.setConditions([cond('KernelDeadlock', 'True', 'TaskHung', 'hung', since), cond('ReadonlyFilesystem', 'False', 'FilesystemIsNotReadOnly')]);
    await until('node-d', 'ReadonlyFilesystem', () => true);
    await until('node-d', 'KernelDeadlock', () => true);
    await first.r.stop();
    await cluster.asNode('node-d', 'PATCH', '/api/v1/nodes/node-d/status', { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok' }] } }, 'application/strategic-merge-patch+json');

    const second = await start(t, cluster.kubeletConf('node-d'));
    const adopted = second.r.adopted();
    t.same(adopted.map((c) => c.type).sort(), ['KernelDeadlock', 'ReadonlyFilesystem'], "everything but the kubelet's conditions");
    t.match(adopted.find((c) => c.type === 'KernelDeadlock'), { status: 'True', reason: 'TaskHung', message: 'hung', lastTransitionTime: seconds(since.toISOString()) });
    t.same(await second.r.whenAdopted(), adopted);

    second.r.setConditions([cond('KernelDeadlock', 'True', 'TaskHung', 'hung again')]);
    await waitFor('ReadonlyFilesystem removed', async () => ((await cluster.condition('node-d', 'ReadonlyFilesystem')) ? undefined : true));
    const kept = await until('node-d', 'KernelDeadlock', (c) => c.message === 'hung again');
    t.equal(kept.lastTransitionTime, seconds(since.toISOString()), 'still the time of the original flip');
    t.ok(await cluster.condition('node-d', 'Ready'), "the kubelet's Ready untouched");
    t.ok(second.log.matching(/removed condition types no longer owned: ReadonlyFilesystem/).length === 1);

    second.r.setConditions([]);
    await waitFor('KernelDeadlock removed at run time', async () => ((await cluster.condition('node-d', 'KernelDeadlock')) ? undefined : true));
    await second.r.stop();

    const third = await start(t, cluster.kubeletConf('node-d'), { remove_stale_conditions: false });
    third.r.setConditions([cond('CorruptDockerOverlay2', 'False', 'NoCorruption')]);
    await until('node-d', 'CorruptDockerOverlay2', () => true);
    third.r.setConditions([]);
    await sleep(1000);
    t.ok(await cluster.condition('node-d', 'CorruptDockerOverlay2'), 'kept when removal is off');
  });

  t.test("start() returns at once; an owner that takes the Node's conditions in onAdopted keeps them, with their transition time", async (t) => {
    const first = await start(t, cluster.kubeletConf('node-f'));
    const since = new Date(Date.now() - 60_000);
    first.r.setConditions([cond('KernelDeadlock', 'True', 'TaskHung', 'hung', since)]);
    await until('node-f', 'KernelDeadlock', (c) => c.status === 'True');
    await first.r.stop();

    // As the agent does at start: its defaults are published before the Node has been read.
    const began = Date.now();
    const r: NodeReporter = NodeReporter.start(kubernetesConfig({ kubeconfig_paths: [cluster.kubeletConf('node-f')], ...fast }), recordingLogger(), {
      onAdopted: (conditions) => r.setConditions(conditions.filter((c) => c.type === 'KernelDeadlock')),
    });
    t.teardown(() => r.stop());
    t.ok(Date.now() - began < 100, 'start() does not wait for the API server');
    r.setConditions([cond('KernelDeadlock', 'False', 'KernelHasNoDeadlock', 'kernel has no deadlock')]);
    await r.whenAdopted();
    await sleep(1000);
    const c = await until('node-f', 'KernelDeadlock', () => true);
    t.match(c, { status: 'True', reason: 'TaskHung', lastTransitionTime: seconds(since.toISOString()) }, 'the True condition and its transition time are kept');
  });

  t.test("the kubelet's condition types are never written", async (t) => {
    const { r, log } = await start(t, cluster.kubeletConf('node-a'));
    await cluster.asNode('node-a', 'PATCH', '/api/v1/nodes/node-a/status', { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok' }] } }, 'application/strategic-merge-patch+json');
    r.setConditions([cond('Ready', 'False', 'AgentSaysNo'), cond('DiskPressure', 'True', 'X'), cond('KernelDeadlock', 'False', 'KernelHasNoDeadlock', 'fine')]);
    r.setConditions([cond('Ready', 'False', 'AgentSaysNo'), cond('KernelDeadlock', 'False', 'KernelHasNoDeadlock', 'fine again')]);
    await until('node-a', 'KernelDeadlock', (c) => c.message === 'fine again');
    t.match(await cluster.condition('node-a', 'Ready'), { status: 'True', reason: 'KubeletReady' });
    t.equal(await cluster.condition('node-a', 'DiskPressure'), undefined);
    t.equal(log.matching(/condition type Ready belongs to the kubelet/, 'error').length, 1, 'said once');
    t.equal(log.matching(/condition type DiskPressure belongs to the kubelet/, 'error').length, 1);
  });

  t.test('events: about the Node with its UID, merged when repeated, rate limited per reason with a suppressed summary', async (t) => {
    const { r } = await start(t, cluster.kubeletConf('node-e'), { event_burst: 3, event_refill: 2000 });
    const uid = (await cluster.node('node-e')).metadata.uid;
    r.event({ source: 'journal/kernel', severity: 'Warning', reason: 'OOMKilling', message: 'Killed process 1012 (java)' });
    r.event({ source: 'journal/kernel', severity: 'Warning', reason: 'OOMKilling', message: 'Killed process 1012 (java)', count: 4 });
    const merged = await waitFor('the merged OOMKilling event', async () => (await cluster.events('node-e')).find((e) => e.reason === 'OOMKilling' && e.count === 5));
    t.match(merged, {
      metadata: { namespace: 'default' },
      involvedObject: { kind: 'Node', apiVersion: 'v1', name: 'node-e', uid },
      type: 'Warning',
      message: 'Killed process 1012 (java)',
      source: { component: 'node-health-agent', host: 'node-e' },
      reportingComponent: 'node-health-agent',
      reportingInstance: 'node-e',
    });
    t.equal((await cluster.events('node-e')).length, 1, 'one Event with count 5');

    for (let i = 0; i < 10; i++) r.event({ source: 'journal/kernel', severity: 'Warning', reason: 'TaskHung', message: `task ${i} blocked` });
    const summary = await waitFor('the suppressed summary', async () => (await cluster.events('node-e')).find((e) => /suppressed/.test(e.message)), 10_000);
    t.match(summary, { reason: 'TaskHung', type: 'Warning', count: 7 });
    t.match(summary.message, /^7 TaskHung events suppressed since \S+ \(rate limit per reason: 3 at once, then one every 2s\); the last one: task 9 blocked$/);
    const taskHung = (await cluster.events('node-e')).filter((e) => e.reason === 'TaskHung');
    t.same(taskHung.filter((e) => e !== summary && e.metadata.name !== summary.metadata.name).map((e) => e.message).sort(), ['task 0 blocked', 'task 1 blocked', 'task 2 blocked']);
    t.equal(taskHung.length, 4, 'three sent, seven summed up in one');
    t.match(r.status().events, { suppressed: 7, failed: 0 });
  });

  t.test('an exec credential plugin: its token is used until it expires, the node name comes from the server', async (t) => {
    const dir = tmp(t);
    const calls = join(dir, 'calls');
    const plugin = join(dir, 'token-plugin');
    writeFileSync(
      plugin,
      expiringTokenPlugin({ tokenFile: join(dir, 'token'), callsFile: calls, ttlSeconds: 12 }),
    );
    chmodSync(plugin, 0o755);
    writeFileSync(join(dir, 'token'), cluster.token('node-x'));
    const ca = readFileSync(cluster.caFile).toString('base64');
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      execKubeconfig({ server: cluster.server, command: './token-plugin', caData: ca }),
    );
    const { r } = await start(t, kubeconfig, {}, {});
    t.match(r.status(), { connected: true, nodeName: 'node-x', nodeNameSource: 'server', identity: 'system:node:node-x', credentials: `exec plugin ${plugin}` });
    r.setConditions([cond('KernelDeadlock', 'False', 'KernelHasNoDeadlock')]);
    await until('node-x', 'KernelDeadlock', () => true);
    const runs = () => readFileSync(calls, 'utf8').trim().split('\n').length;
    t.equal(runs(), 1, 'one run for SelfSubjectReview, GET and PATCH');
    await sleep(3000); // into the renewal margin (10 s before expiry)
    r.setConditions([cond('KernelDeadlock', 'True', 'TaskHung')]);
    await until('node-x', 'KernelDeadlock', (c) => c.status === 'True');
    t.equal(runs(), 2, 'run again once the credential neared expiry');
  });

  t.test('a client certificate rotated mid-run (symlink swap) is used without a restart', async (t) => {
    await cluster.addNode('node-r', 20);
    const pemPath = join(cluster.nodeRoot('node-r'), 'var/lib/kubelet/pki/kubelet-client-current.pem');
    const oldPem = readFileSync(pemPath);
    const expires = new Date(execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', pemPath]).toString().replace('notAfter=', '').trim()).getTime();
    const { r } = await start(t, cluster.kubeletConf('node-r'));
    r.setConditions([cond('KernelDeadlock', 'False', 'KernelHasNoDeadlock', 'before rotation')]);
    await until('node-r', 'KernelDeadlock', (c) => c.message === 'before rotation');
    const newFile = await cluster.rotate('node-r');
    t.match(newFile, /^kubelet-client-[\d-]+\.pem$/);
    await sleep(Math.max(0, expires - Date.now()) + 1500);

    const direct = await rawWithPem(cluster, oldPem);
    t.equal(direct, 401, 'the first certificate has expired: the server rejects it');
    r.setConditions([cond('KernelDeadlock', 'True', 'TaskHung', 'after rotation')]);
    await until('node-r', 'KernelDeadlock', (c) => c.message === 'after rotation');
    t.equal(r.status().lastError, null);
  });

  t.test('malformed kubeconfig, no kubeconfig yet, unreachable server, wrong CA: clear errors, then recovery', async (t) => {
    const dir = tmp(t);
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, 'apiVersion: v1\nclusters: [\n');
    const malformed = await start(t, bad);
    t.match(malformed.r.status().lastError, new RegExp(`^${bad}: not valid YAML \\(line \\d+, column \\d+: `));
    t.equal(malformed.log.matching(/not valid YAML/, 'warning').length, 1);

    const later = join(dir, 'kubelet.conf');
    const waiting = await start(t, later);
    t.equal(waiting.r.status().lastError, `no kubelet kubeconfig found (looked for ${later}); the kubelet writes it when the node joins the cluster, or set [kubernetes] kubeconfig_paths`);
    const conf = readFileSync(cluster.kubeletConf('node-a'), 'utf8').replace(/\.\.\/\.\.\/var/g, join(cluster.nodeRoot('node-a'), 'var'));
    writeFileSync(later, conf);
    await waitFor('connected once the kubeconfig appears', async () => (waiting.r.status().connected ? true : undefined));
    t.equal(waiting.r.status().lastError, null);
    t.equal(waiting.log.matching(/connecting to the API server succeeds again/, 'info').length, 1);

    const port = await closedPort();
    const unreachable = join(dir, 'unreachable.conf');
    writeFileSync(unreachable, conf.replace(cluster.server, `https://127.0.0.1:${port}`));
    const down = await start(t, unreachable);
    t.match(down.r.status().lastError, new RegExp(`^cannot read Node node-a: cannot reach the API server https://127\\.0\\.0\\.1:${port} \\(GET /api/v1/nodes/node-a: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\); check that it is up and that this node can reach the server in ${unreachable}$`));

    const otherCa = join(dir, 'other-ca');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=other', '-keyout', `${otherCa}.key`, '-out', `${otherCa}.crt`], { stdio: 'ignore' });
    const wrong = join(dir, 'wrong-ca.conf');
    writeFileSync(wrong, conf.replace(/certificate-authority-data: \S+/, `certificate-authority-data: ${readFileSync(`${otherCa}.crt`).toString('base64')}`));
    const tls = await start(t, wrong);
    t.match(
      tls.r.status().lastError,
      new RegExp(`^cannot read Node node-a: the API server ${cluster.server.replace(/\./g, '\\.')} presented a certificate that certificate-authority-data in ${wrong} does not verify \\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY): .+\\); check the CA and server in ${wrong}$`),
    );
  });
});

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function rawWithPem(cluster: Cluster, pem: Buffer): Promise<number> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(new URL(`${cluster.server}/api/v1/nodes/node-r`), { ca: readFileSync(cluster.caFile), cert: pem, key: pem, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}
