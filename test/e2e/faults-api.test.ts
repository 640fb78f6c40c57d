// The fault matrix's API-server rows through the installed package (docs/reliability.md): the .deb in a
// node in a box, reporting through a loopback proxy (test/helpers/api-proxy.ts) in front of the test
// cluster's real API server, so the server can be made slow or made to answer 429 or 500 while the
// daemon runs; then the kubelet's client certificate rotated past the old one's expiry, and an exec
// credential plugin whose tokens expire. After each: the same process (MainPID and NRestarts unchanged,
// no watchdog timeout), `status` said what was wrong while it was, the condition a kernel line set
// meanwhile is on the Node, and the Event the fault delayed is on the API server exactly once. Each row's
// Event has a reason of its own: a second one of a reason within the daemon's aggregation window would
// be held back by the daemon itself, not by the fault.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { ApiProxy } from '../helpers/api-proxy';
import { writeKernelLine } from '../helpers/box';
import { Cluster, waitFor } from '../helpers/cluster';
import { execKubeconfig, expiringTokenPlugin } from '../helpers/exec-kubeconfig';
import { InstalledAgent, UNIT } from '../helpers/installed-agent';
import { installedNode } from '../helpers/node';

const KUBECONFIG = '/etc/kubernetes/kubelet.conf';
const PKI = '/var/lib/kubelet/pki';

t.test('API server faults injected into the installed daemon in a box', async (t) => {
  const node = `api-node-${process.pid}`;
  const cluster = await Cluster.up(t, [node]);
  const proxy = await ApiProxy.start(cluster);
  t.teardown(() => proxy.close());
  const box = await installedNode(t, cluster, node);
  const agent = new InstalledAgent(box);

  const onNode = (type: string, ms = 60_000): Promise<number> => {
    const from = Date.now();
    return waitFor(`${type}=True on the Node`, async () => ((await cluster.condition(node, type))?.status === 'True' ? Date.now() - from : undefined), ms, 50);
  };
  /** The Event whose message names `dev`, once it is on the API server; its count must be 1. */
  const eventOnce = async (t: tap.Test, dev: string): Promise<void> => {
    await waitFor(`the Event about ${dev}`, async () => (await cluster.events(node)).find((e) => e.message.includes(dev)), 60_000);
    const matching = (await cluster.events(node)).filter((e) => e.message.includes(dev));
    t.equal(matching.reduce((n, e) => n + e.count, 0), 1, `the Event about ${dev} stored exactly once`);
  };
  const restartAgent = async (): Promise<void> => {
    await box.check(['systemctl', 'restart', UNIT], { timeoutMs: 90_000 });
    await agent.healthy();
  };

  // The kubelet's kubeconfig, pointed at the proxy.
  await box.check(['sed', '-i', `s#server: ${cluster.server}#server: ${proxy.url}#`, KUBECONFIG]);
  await restartAgent();
  t.match(await box.check(['node-health-agent', 'status']), new RegExp(`connected to ${proxy.url}`));
  await waitFor('KernelDeadlock=False written by the agent', async () => ((await cluster.condition(node, 'KernelDeadlock'))?.status === 'False' ? true : undefined), 60_000);
  const pid = await agent.show('MainPID');
  const restarts = await agent.show('NRestarts');

  t.test('slow: every answer held 3 s', async (t) => {
    proxy.inject(t, { kind: 'slow', ms: 3000 });
    const from = Date.now();
    await writeKernelLine(box, 'INFO: task docker:7 blocked for more than 300 seconds.');
    await writeKernelLine(box, 'Buffer I/O error on dev sdslow1, logical block 7, async page read');
    const pending = await waitFor('the change pending in the agent', async () => {
      const s = await agent.status();
      return s?.conditions.some((c) => c.type === 'KernelDeadlock' && c.status === 'True') ? s : undefined;
    }, 30_000);
    t.comment(`while slow: pending ${pending.kubernetes?.pending}, lastError ${pending.kubernetes?.lastError ?? 'none'}`);
    const ms = await onNode('KernelDeadlock');
    t.pass(`KernelDeadlock on the Node ${Date.now() - from} ms after the line (${ms} ms of polling), every answer 3 s late`);
    await eventOnce(t, 'sdslow1');
    proxy.set({ kind: 'pass' });
    await agent.healthy();
    await agent.sameProcess(t, pid, restarts);
  });

  t.test('slower than request_timeout (10 s): every answer held 12 s for 30 s', async (t) => {
    proxy.inject(t, { kind: 'slow', ms: 12_000 });
    const injected = Date.now();
    await writeKernelLine(box, '{1}[Hardware Error]: event severity: fatal');
    await writeKernelLine(box, '{2}[Hardware Error]: event severity: recoverable');
    const down = await waitFor('status shows the timeout and not connected', async () => {
      const s = await agent.status();
      return s?.kubernetes && !s.kubernetes.connected && /no answer within/.test(s.kubernetes.lastError ?? '') ? s : undefined;
    }, 40_000);
    t.comment(`while too slow: ${down.kubernetes?.lastError ?? ''}`);
    t.ok((down.kubernetes?.pending ?? 0) > 0, 'the change pending');
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - injected))));
    proxy.set({ kind: 'pass' });
    const back = Date.now();
    // The writes reached the server while their answers were late: the Node may have the condition
    // already. What recovers is the agent's view: its writes answered, nothing pending.
    await onNode('CperHardwareErrorFatal', 120_000);
    await waitFor('writes answered again, nothing pending', async () => {
      const s = await agent.status();
      return s?.kubernetes?.connected && s.kubernetes.lastError === null && s.kubernetes.pending === 0 ? s : undefined;
    }, 120_000);
    t.pass(`connected, no error, nothing pending ${Date.now() - back} ms after the server answered in time again`);
    await eventOnce(t, 'event severity: recoverable');
    await agent.healthy();
    await agent.sameProcess(t, pid, restarts);
  });

  for (const f of [
    {
      what: '429 with Retry-After: 5',
      code: 429,
      retryAfterSeconds: 5,
      line: 'XFS (sdb1): Filesystem has been shut down due to log error (0x2).',
      condition: 'XfsShutdown',
      dev: 'sd429a',
      event: 'EXT4-fs error (device sd429a): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0',
    },
    {
      what: '500 on every request',
      code: 500,
      line: 'sd 2:0:0:0: rejecting I/O to offline device',
      condition: 'StorageDeviceFailed',
      dev: 'sd500a',
      event: 'EXT4-fs warning (device sd500a): ext4_dx_add_entry:2461: Directory index full!',
    },
  ]) {
    t.test(`${f.what} for 20 s`, async (t) => {
      const since = proxy.answered.length;
      proxy.inject(t, { kind: 'status', code: f.code, ...(f.retryAfterSeconds ? { retryAfterSeconds: f.retryAfterSeconds } : {}) });
      const injected = Date.now();
      await writeKernelLine(box, f.line);
      await writeKernelLine(box, f.event);
      const down = await waitFor(`status shows the ${f.code} and not connected`, async () => {
        const s = await agent.status();
        return s?.kubernetes && !s.kubernetes.connected && s.kubernetes.lastError?.includes(String(f.code)) && s.kubernetes.pending > 0 ? s : undefined;
      }, 20_000);
      t.comment(`during ${f.code}: ${down.kubernetes?.lastError ?? ''}`);
      t.match(await box.check(['node-health-agent', 'status']), /not connected to/, '`status` says not connected');
      const metrics = await agent.metrics();
      t.match(metrics, /node_health_kubernetes_connected 0/, 'the metric says not connected');
      await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - injected))));
      const answered = proxy.answered.slice(since);
      t.comment(`${answered.length} requests answered ${f.code} in ${((Date.now() - injected) / 1000).toFixed(1)} s: ${answered.map((a) => `${a.method} ${a.path.split('?')[0]}`).join(', ')}`);
      t.ok(answered.some((a) => a.method === 'POST' && a.path.includes('/events')), `the Event was tried during the ${f.code}s`);
      if (f.retryAfterSeconds) {
        // Two writers (conditions, events), each waiting at least Retry-After between attempts (+1 each for
        // the attempt that meets the end of the window).
        t.ok(answered.length <= 2 * (20 / f.retryAfterSeconds + 2), `Retry-After honoured: ${answered.length} requests in 20 s`);
      } else {
        t.ok(answered.length <= 30, `back-off: ${answered.length} requests in 20 s`);
      }
      proxy.set({ kind: 'pass' });
      const back = Date.now();
      await onNode(f.condition, 120_000);
      t.pass(`${f.condition} on the Node ${Date.now() - back} ms after the server answered again`);
      await eventOnce(t, f.dev);
      const s = await agent.healthy();
      t.equal(s.kubernetes?.lastError ?? null, null, 'no error left');
      await agent.sameProcess(t, pid, restarts);
    });
  }

  t.test("the kubelet's client certificate rotated, the old one expiring", async (t) => {
    // As the kubelet does: a new file beside the old one, then the kubelet-client-current.pem symlink swapped.
    const swapIn = async (): Promise<void> => {
      const file = (await cluster.rotate(node, 40)).trim();
      await box.copyIn(join(cluster.nodeRoot(node), 'var/lib/kubelet/pki', file), `${PKI}/`);
      await box.check(['sh', '-c', `cd ${PKI} && chmod 600 ${file} && ln -s ${file} current.tmp && mv -T current.tmp kubelet-client-current.pem`]);
    };
    await swapIn();
    const expires = Date.parse(execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', join(cluster.nodeRoot(node), 'var/lib/kubelet/pki/kubelet-client-current.pem')]).toString().replace('notAfter=', '').trim());
    await writeKernelLine(box, 'NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.');
    await onNode('GPUUnhealthy');
    t.pass('written with the first rotated certificate');
    // A second rotation with a long-lived certificate, then past the first one's expiry.
    const file = (await cluster.rotate(node)).trim();
    await box.copyIn(join(cluster.nodeRoot(node), 'var/lib/kubelet/pki', file), `${PKI}/`);
    await box.check(['sh', '-c', `cd ${PKI} && chmod 600 ${file} && ln -s ${file} current.tmp && mv -T current.tmp kubelet-client-current.pem`]);
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now()) + 2000));
    const from = Date.now();
    await writeKernelLine(box, 'CE memory read error on DIMM sdcert1');
    await eventOnce(t, 'sdcert1');
    t.pass(`an Event after the first certificate expired reached the API server in ${Date.now() - from} ms`);
    const s = await agent.healthy();
    t.equal(s.kubernetes?.lastError ?? null, null);
    const log = await box.check(['journalctl', '-u', UNIT, '-o', 'cat', '--no-pager']);
    t.notMatch(log, /rejected the credentials/, 'no 401 from the API server');
    await agent.sameProcess(t, pid, restarts);
  });

  t.test('an exec credential plugin whose tokens expire after 20 s', async (t) => {
    // The plugin hands out the node's token with an expiry 20 s ahead and counts its runs. Root-owned,
    // not writable by others: the agent refuses a kubeconfig with exec otherwise.
    await box.check(['sh', '-c', `umask 077; mkdir -p /etc/nh-test && cat > /etc/nh-test/token`], { input: cluster.token(node) });
    await box.check(
      ['sh', '-c', 'cat > /usr/local/bin/nh-token && chmod 755 /usr/local/bin/nh-token'],
      {
        input: expiringTokenPlugin({ tokenFile: '/etc/nh-test/token', callsFile: '/run/nh-token.calls', ttlSeconds: 20 }),
      },
    );
    const ca = (await box.check(['sh', '-c', `sed -n 's/^ *certificate-authority-data: //p' ${KUBECONFIG}`])).trim();
    await box.check(['sh', '-c', `cat > ${KUBECONFIG}`], {
      input: execKubeconfig({ server: proxy.url, command: '/usr/local/bin/nh-token', caData: ca }),
    });
    await restartAgent();
    const pid = await agent.show('MainPID');
    const restarts = await agent.show('NRestarts');
    const runs = async () => (await box.check(['sh', '-c', 'wc -l < /run/nh-token.calls'])).trim();
    const first = Number(await runs());
    t.ok(first >= 1, `the plugin ran (${first})`);
    await new Promise((r) => setTimeout(r, 25_000));
    const from = Date.now();
    await writeKernelLine(box, 'nfs: server 10.0.0.1 not responding, still trying');
    await writeKernelLine(box, 'Killed process 4242 (sdexec1) total-vm:1024kB, anon-rss:512kB, file-rss:0kB, shmem-rss:0kB');
    await onNode('NFSServerUnresponsive');
    t.pass(`after the first token expired a condition reached the Node in ${Date.now() - from} ms`);
    await eventOnce(t, 'sdexec1');
    t.ok(Number(await runs()) > first, `the plugin ran again for a fresh token (${await runs()} runs)`);
    const s = await agent.healthy();
    t.equal(s.kubernetes?.lastError ?? null, null);
    await agent.sameProcess(t, pid, restarts);
  });
});
