// RuntimeHealth built from the config (condition declarations per enabled component), and the one-shot
// diagnose checks against a real containerd and a real HTTP server, with and without a system bus.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../../src/sections';
import type { Logger } from '../../../src/types';
import { runtimeChecks } from '../../../src/repair/checks';
import { RuntimeHealth } from '../../../src/repair/health';
import { runCheck } from '../../../src/engine/run-check';
import { runtimeProbes } from '../../../src/sources/runtime/probes';
import { configDir as tempConfigDir } from '../../helpers/tmp';
import { ContainerdDaemon } from '../runtime/containerd-daemon';

const quiet: Logger = {
  error: () => undefined,
  warning: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  setLevel: () => undefined,
  close: () => undefined,
};
const sink = { condition: () => undefined, event: () => undefined };
/** A bus address where nothing listens: unit state stays unknown. */
const NO_BUS = 'unix:path=/run/nha-test-no-bus/socket';

/** A config directory removed when the test process ends. */
function configDir(files: Record<string, string>): string {
  const dir = tempConfigDir(files);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function stateDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-health-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('condition declarations follow the enabled components and avoid the types EKS reserves', async (t) => {
  const all = loadAgentConfig(configDir({ 'a.ini': '[kube_proxy]\nenabled = true\n' })).config;
  const declared = RuntimeHealth.conditionDeclarations(all);
  t.same(
    declared.map((d) => `${d.type}${d.shared ? ' (shared)' : ''}`),
    [
      'ContainerRuntimeUnhealthy',
      'FrequentContainerdRestart (shared)',
      'KubeletUnhealthy',
      'FrequentKubeletRestart (shared)',
      'KubeProxyUnhealthy',
    ],
  );
  t.match(declared[0], { owner: 'repair', reason: 'ContainerRuntimeIsHealthy', message: 'Container runtime on the node is functioning properly' });
  // On EKS these types make the node monitoring agent replace the node.
  const reserved = ['ContainerRuntimeReady', 'StorageReady', 'NetworkingReady', 'KernelReady', 'AcceleratedHardwareReady'];
  for (const d of declared) t.notOk(reserved.includes(d.type), d.type);

  const kubeletOnly = loadAgentConfig(configDir({ 'a.ini': '[containerd]\nenabled = false\n' })).config;
  t.same(RuntimeHealth.conditionDeclarations(kubeletOnly).map((d) => d.type), ['KubeletUnhealthy', 'FrequentKubeletRestart']);
});

t.test('a ledger that cannot be read is an error naming the file', async (t) => {
  const dir = stateDir(t);
  const { config } = loadAgentConfig(configDir({}));
  mkdirSync(join(dir, 'repair-ledger.jsonl'));
  await t.rejects(RuntimeHealth.create(config, quiet, sink, dir, runtimeProbes(config)), { name: 'LedgerError', message: /repair-ledger\.jsonl: cannot read the repair ledger/ });
});

t.test('diagnose checks against a real containerd and a real healthz server, without a system bus', async (t) => {
  const daemon = await ContainerdDaemon.start(t);
  let healthy = true;
  const server = createServer((_req, res) => {
    res.statusCode = healthy ? 200 : 500;
    res.end(healthy ? 'ok' : '[-]syncloop failed');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;
  const { config } = loadAgentConfig(
    configDir({
      'a.ini': `[containerd]\nsocket = ${daemon.socket}\n[kubelet]\nhealthz_url = http://127.0.0.1:${port}/healthz\n`,
    }),
  );
  const results = async () => (await Promise.all(runtimeChecks(config, () => runtimeProbes(config), NO_BUS).map((c) => runCheck(c)))).flat();

  let r = await results();
  const containerd = r.filter((x) => x.component === 'containerd');
  t.match(containerd[0], { check: 'health', subject: 'containerd.service', status: 'ok', reason: 'ContainerRuntimeIsHealthy' });
  t.ok(containerd.some((x) => x.reason === 'UnitStateUnknown' && x.status === 'unknown'), 'the unit state is unknown without a bus, and says so');
  t.ok(containerd.some((x) => x.subject === 'NetworkReady' && x.status === 'warning' && x.reason === 'NetworkNotReady'), 'no CNI: a warning');
  t.ok(containerd.some((x) => x.subject === 'ListImages' && x.status === 'ok'));
  t.match(r.find((x) => x.component === 'kubelet'), { status: 'ok', reason: 'KubeletIsHealthy' });
  t.match(r.find((x) => x.component === 'systemd'), { check: 'legacy-monitors', status: 'unknown', reason: 'UnitStateUnknown' });

  healthy = false;
  await daemon.stop();
  t.teardown(() => daemon.signal('SIGCONT'));
  const fast = loadAgentConfig(
    configDir({
      'a.ini': `[containerd]\nsocket = ${daemon.socket}\ntimeout = 300ms\n[kubelet]\nhealthz_url = http://127.0.0.1:${port}/healthz\n`,
    }),
  ).config;
  r = (await Promise.all(runtimeChecks(fast, () => runtimeProbes(fast), NO_BUS).map((c) => runCheck(c)))).flat();
  const hung = r.filter((x) => x.component === 'containerd');
  t.match(hung[0], { status: 'problem', reason: 'ContainerdUnresponsive', message: /did not answer Version\(\) .* within 0\.3s/ });
  t.notOk(hung.slice(1).some((x) => x.reason === 'ContainerdUnresponsive'), 'the failure is stated once');
  t.match(r.find((x) => x.component === 'kubelet'), { status: 'problem', reason: 'KubeletUnhealthy', message: /HTTP 500: \[-\]syncloop failed/ });
  daemon.signal('SIGCONT');
});
