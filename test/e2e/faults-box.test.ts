// The fault matrix through the installed package (docs/reliability.md): the .deb in a node in a box with
// the kubelet's credentials, reporting to the test cluster's real API server, its journal, D-Bus and
// systemd the box's own. Each fault is injected while the daemon runs; afterwards the same process is
// still running (MainPID and NRestarts unchanged, so the watchdog was petted), `status` said what was
// degraded, and a kernel line written after the fault still reaches the Node. The rows share one box and
// run in order: the SIGKILL row changes the process and the state-directory row swaps its directory.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { writeKernelLine } from '../helpers/box';
import { Cluster, waitFor } from '../helpers/cluster';
import { InstalledAgent, STATE, UNIT } from '../helpers/installed-agent';
import { installedNode } from '../helpers/node';

interface Snapshot {
  conditions: Array<{ type: string; status: string }>;
}

t.test('faults injected into the installed daemon in a box', async (t) => {
  const node = `fault-node-${process.pid}`;
  const cluster = await Cluster.up(t, [node]);
  const box = await installedNode(t, cluster, node);
  const agent = new InstalledAgent(box);

  const onNode = (type: string, ms = 30_000): Promise<number> => {
    const from = Date.now();
    return waitFor(`${type}=True on the Node`, async () => ((await cluster.condition(node, type))?.status === 'True' ? Date.now() - from : undefined), ms, 50).catch(
      async (err: unknown) => {
        throw new Error(`${String(err)}\n${await agent.evidence()}`);
      },
    );
  };

  await agent.healthy();
  await waitFor('KernelDeadlock=False written by the agent', async () => ((await cluster.condition(node, 'KernelDeadlock'))?.status === 'False' ? true : undefined), 60_000);
  const pid = await agent.show('MainPID');
  const restarts = await agent.show('NRestarts');

  // While journald is stopped the agent logs (a reload logs its outcome): journald refuses the entries, and
  // it has closed the agent's stdout and stderr, so the fallback write to stderr fails with EPIPE. That
  // was an uncaught 'error' on process.stderr that ended the daemon (exit 70): any entry logged in that
  // window cost a restart (a loaded run once saw one here without a reload).
  const reloadWhileJournaldStopped = async (t: Test): Promise<void> => {
    const before = (await agent.status())?.config.generation ?? 0;
    const r = await box.exec(['systemctl', 'reload', UNIT]);
    if (!t.equal(r.code, 0, `systemctl reload with journald stopped ${r.stderr.trim()}`)) return;
    await waitFor('the reload applied with journald stopped', async () => (((await agent.status())?.config.generation ?? 0) > before ? true : undefined), 30_000);
    // Time for the failed writes' EPIPE to reach the process.
    await new Promise((r) => setTimeout(r, 1_000));
  };

  t.test('journald stopped and restarted, D-Bus restarted, systemctl daemon-reexec', async (t) => {
    const run = (cmd: string[]): Promise<string> => box.check(cmd, { timeoutMs: 90_000 });
    const faults: Array<{ what: string; inject: () => Promise<unknown>; line: string; condition: string }> = [
      {
        what: 'journald stopped (the agent logging meanwhile) and started again',
        inject: async () => {
          await run(['systemctl', 'stop', 'systemd-journald.service', 'systemd-journald.socket', 'systemd-journald-dev-log.socket']);
          try {
            await reloadWhileJournaldStopped(t);
          } finally {
            await run(['systemctl', 'start', 'systemd-journald.service']);
          }
        },
        line: 'INFO: task docker:7 blocked for more than 300 seconds.',
        condition: 'KernelDeadlock',
      },
      {
        what: 'D-Bus restarted',
        inject: () => run(['systemctl', 'restart', 'dbus.service']),
        line: 'XFS (sdb1): Filesystem has been shut down due to log error (0x2).',
        condition: 'XfsShutdown',
      },
      {
        what: 'systemctl daemon-reexec',
        inject: () => run(['systemctl', 'daemon-reexec']),
        line: 'sd 2:0:0:0: rejecting I/O to offline device',
        condition: 'StorageDeviceFailed',
      },
    ];
    for (const f of faults) {
      await f.inject();
      const written = Date.now();
      await writeKernelLine(box, f.line);
      const ms = await onNode(f.condition);
      t.pass(`${f.what}: a kernel line written after it set ${f.condition} on the Node in ${ms} ms (${Date.now() - written} ms with the write)`);
      await agent.sameProcess(t, pid, restarts);
    }
    // The entries journald refused were counted and the count logged once it took entries again.
    const unsent = await waitFor('the count of log entries journald refused', async () => (await run(['journalctl', '-u', UNIT, '-o', 'cat', '--no-pager', 'NODE_HEALTH_CODE=LOG_UNSENT'])).trim() || undefined, 30_000);
    t.comment(unsent);
    t.match(unsent, /^\d+ log entries could not be sent to journald \(first: .*Connection refused\)/, 'the entries logged while journald was stopped were counted');
    const s = await agent.healthy();
    t.same(s.degraded, [], 'nothing degraded');
  });

  t.test('the API server stopped and started again', async (t) => {
    await cluster.stopApiserver();
    let restarted = false;
    t.teardown(() => (restarted ? undefined : cluster.startApiserver()));
    const stoppedAt = Date.now();
    await writeKernelLine(box, 'NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.');
    // `connected` says the Node was read once; a write failing after that shows as lastError and pending.
    const down = await waitFor('status shows the reporter error and the change pending', async () => {
      const s = await agent.status();
      return s?.kubernetes?.lastError && s.kubernetes.pending > 0 ? s : undefined;
    }, 60_000);
    t.comment(`while stopped: ${down.kubernetes?.lastError ?? ''}`);
    t.ok(down.conditions.some((c) => c.type === 'GPUUnhealthy' && c.status === 'True'), 'the condition is set in the agent meanwhile');
    await new Promise((r) => setTimeout(r, Math.max(0, 5_000 - (Date.now() - stoppedAt))));
    const startedAt = Date.now();
    await cluster.startApiserver();
    restarted = true;
    const ms = await onNode('GPUUnhealthy', 120_000);
    t.pass(`GPUUnhealthy set while the API server was down reached the Node ${Date.now() - startedAt} ms after it was started (${ms} ms after it answered again)`);
    const s = await agent.healthy();
    t.equal(s.kubernetes?.connected, true, 'connected again');
    await agent.sameProcess(t, pid, restarts);
  });

  t.test('SIGKILL while conditions are being written', async (t) => {
    const eventsBefore = (await cluster.events(node)).length;
    // A condition change and an event; the process is killed as soon as it has read them, while the
    // condition is being saved and written to the Node.
    await writeKernelLine(box, 'Buffer I/O error on dev sdc1, logical block 7, async page read');
    await writeKernelLine(box, 'nfs: server 10.0.0.1 not responding, still trying');
    await waitFor('the agent read the line', async () => ((await agent.status())?.conditions.some((c) => c.type === 'NFSServerUnresponsive' && c.status === 'True') ? true : undefined), 30_000, 20);
    await box.check(['systemctl', 'kill', '--signal=SIGKILL', UNIT]);
    const killedAt = Date.now();
    // The state as the killed process left it (systemd restarts it after RestartSec=10s): whole files, and
    // a position past the line only if the condition it set was saved first.
    // Either file may not exist yet (nothing saved so far): no saved condition, no position.
    const left = JSON.parse(await box.check(['sh', '-c', `cat ${STATE}/conditions.json 2>/dev/null || echo '{"conditions":[]}'`])) as Snapshot;
    const leftCursor = (await box.check(['sh', '-c', `cat ${STATE}/journal/kernel.cursor 2>/dev/null || true`])).trim();
    if (leftCursor) t.match(leftCursor, /^s=[0-9a-f]{32};i=[0-9a-f]+;b=[0-9a-f]{32};m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+$/, 'the kernel cursor is a whole journal cursor');
    const unread = leftCursor
      ? await box.check(['journalctl', '--after-cursor', leftCursor, '-o', 'cat', '--no-pager', '_TRANSPORT=kernel'])
      : 'not responding (no position saved)';
    const kept = left.conditions.some((c) => c.type === 'NFSServerUnresponsive' && c.status === 'True');
    t.comment(`at the kill: cursor ${unread.includes('not responding') ? 'before' : 'past'} the line, condition ${kept ? '' : 'not '}in conditions.json`);
    t.ok(unread.includes('not responding') || kept, 'the line is either still ahead of the cursor or its condition was saved');
    const newPid = await waitFor('systemd restarted the agent', async () => {
      const p = await agent.show('MainPID');
      return p !== '0' && p !== pid ? p : undefined;
    }, 60_000);
    const s = await agent.healthy();
    t.comment(`restarted and healthy ${Date.now() - killedAt} ms after SIGKILL (RestartSec=10s)`);
    t.equal(await agent.show('NRestarts'), String(Number(restarts) + 1), 'one restart');
    t.same(s.degraded, [], 'nothing degraded after the restart');
    await onNode('NFSServerUnresponsive').catch(async (err: unknown) => {
      const now = await agent.status();
      const log = await box.check(['journalctl', '-u', UNIT, '-o', 'cat', '--no-pager', '-n', '60']);
      throw new Error(`${String(err)}\nagent conditions: ${JSON.stringify(now?.conditions)}\nkernel.cursor: ${await box.check(['cat', `${STATE}/journal/kernel.cursor`])}\n${log}`);
    });
    const io = await waitFor('the IOError Event', async () => (await cluster.events(node)).find((e) => e.reason === 'IOError'), 30_000);
    // Time for a replay to reach the API server, were there one.
    await new Promise((r) => setTimeout(r, 5_000));
    const events = await cluster.events(node);
    t.equal(events.find((e) => e.reason === 'IOError')?.count, 1, 'the line before the kill was not replayed as new');
    t.ok(events.length >= eventsBefore + 1 && io.count === 1, 'the event was sent once');
    // A line after the restart is read: the server answers again.
    await writeKernelLine(box, 'nfs: server 10.0.0.1 OK');
    await waitFor('NFSServerUnresponsive=False again', async () => ((await cluster.condition(node, 'NFSServerUnresponsive'))?.status === 'False' ? true : undefined), 30_000);
    t.equal(await agent.show('MainPID'), newPid, 'the restarted process keeps running');
  });

  t.test('the API server black-holed: connections accepted, never answered', async (t) => {
    // SIGSTOP: the kernel still completes the TCP handshake on its listening socket; nothing answers.
    const apiserver = Number(readFileSync(join(cluster.dir, 'apiserver.pid'), 'utf8').split(' ')[0]);
    const pid = await agent.show('MainPID');
    const restarts = await agent.show('NRestarts');
    process.kill(apiserver, 'SIGSTOP');
    let resumed = false;
    t.teardown(() => (resumed ? undefined : process.kill(apiserver, 'SIGCONT')));
    const stoppedAt = Date.now();
    await writeKernelLine(box, 'nfs: server 10.0.0.2 not responding, timed out');
    const hung = await waitFor('status answers, the condition set in the agent and pending', async () => {
      const s = await agent.status();
      return s?.conditions.some((c) => c.type === 'NFSServerUnresponsive' && c.status === 'True') && (s.kubernetes?.pending ?? 0) > 0 ? s : undefined;
    }, 30_000);
    t.comment(`while black-holed: lastError ${hung.kubernetes?.lastError ?? 'none yet'}`);
    // Longer than WatchdogSec=30s: a daemon blocked on the server would be killed by now.
    await new Promise((r) => setTimeout(r, Math.max(0, 40_000 - (Date.now() - stoppedAt))));
    t.ok((await agent.status()) !== undefined, '`status` still answers after 40 s');
    await agent.sameProcess(t, pid, restarts);
    process.kill(apiserver, 'SIGCONT');
    resumed = true;
    const ms = await onNode('NFSServerUnresponsive', 120_000);
    t.pass(`the condition set while black-holed reached the Node ${ms} ms after the server answered again`);
    await agent.sameProcess(t, pid, restarts);
  });

  t.test('the state directory full (ENOSPC), then read-only (EROFS)', async (t) => {
    const pid = await agent.show('MainPID');
    const restarts = await agent.show('NRestarts');
    // A 1 MiB tmpfs over the state directory in the daemon's own namespace (its sandbox bind-mounts the
    // directory, so a mount made outside would be hidden beneath it), holding the state so far, then filled.
    await agent.inUnit(
      `set -e; mkdir /tmp/nh-saved; cp -a ${STATE}/. /tmp/nh-saved/; mount -t tmpfs -o size=1m,mode=0700 nh-state ${STATE}; cp -a /tmp/nh-saved/. ${STATE}/; ` +
        `dd if=/dev/zero of=${STATE}/filler bs=4k 2>/dev/null || true`,
    );
    await writeKernelLine(box, 'Aborting journal on device sda1-8.');
    const full = await waitFor('conditions degraded by ENOSPC', async () => {
      const s = await agent.status();
      return s?.degraded.some((d) => d.component === 'conditions' && d.reason === 'ENOSPC') ? s : undefined;
    }, 30_000);
    t.comment(`degraded: ${JSON.stringify(full.degraded)}`);
    const human = await box.check(['node-health-agent', 'status']);
    t.match(human, /DEGRADED conditions \(ENOSPC\)/, '`status` says what is degraded');
    const ms = await onNode('ReadonlyFilesystem');
    t.pass(`a kernel line written while the disk was full set the condition on the Node in ${ms} ms`);
    const onDisk = (): Promise<Snapshot> => agent.inUnit(`cat ${STATE}/conditions.json`).then((x) => JSON.parse(x) as Snapshot);
    t.notOk((await onDisk()).conditions.some((c) => c.type === 'ReadonlyFilesystem' && c.status === 'True'), 'not on disk while full');
    const metrics = await agent.metrics();
    t.match(metrics, /node_health_degraded\{component="conditions",reason="ENOSPC"\} 1/, 'the metric names it');

    await agent.inUnit(`rm ${STATE}/filler`);
    const freed = Date.now();
    await waitFor('the latest conditions on disk', async () => ((await onDisk()).conditions.some((c) => c.type === 'ReadonlyFilesystem' && c.status === 'True') ? true : undefined), 30_000);
    t.pass(`the latest conditions reached conditions.json ${Date.now() - freed} ms after space returned`);
    await waitFor('degraded cleared', async () => ((await agent.status())?.degraded.length === 0 ? true : undefined), 30_000);

    await agent.inUnit(`mount -o remount,ro ${STATE}`);
    await writeKernelLine(box, '{1}[Hardware Error]: event severity: fatal');
    await waitFor('conditions degraded by EROFS', async () => ((await agent.status())?.degraded.some((d) => d.component === 'conditions' && d.reason === 'EROFS') ? true : undefined), 30_000);
    t.pass(`read-only: ${JSON.stringify((await agent.status())?.degraded)}`);
    await onNode('CperHardwareErrorFatal');
    await agent.inUnit(`mount -o remount,rw ${STATE}`);
    const writable = Date.now();
    await waitFor('the latest conditions on disk', async () => ((await onDisk()).conditions.some((c) => c.type === 'CperHardwareErrorFatal' && c.status === 'True') ? true : undefined), 30_000);
    t.pass(`saved ${Date.now() - writable} ms after the remount read-write`);
    await waitFor('degraded cleared', async () => ((await agent.status())?.degraded.length === 0 ? true : undefined), 30_000);
    await agent.sameProcess(t, pid, restarts);
  });
});
