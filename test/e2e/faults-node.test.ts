// The fault matrix through the installed package, node-side rows (docs/reliability.md): the .deb in a node
// in a box with the kubelet's credentials, reporting to the test cluster's real API server. Each fault is
// injected while the daemon runs; afterwards the process is still running (or, for SIGKILL, systemd's
// restart is healthy), `status` says what is degraded, and the final state on disk and on the Node is right.
// The rows share one box and run in order: the SIGKILL row changes the process, the clock row restarts it
// under libfaketime.
import t from 'tap';
import { writeKernelLine } from '../helpers/box';
import { badValues } from '../helpers/bad-config';
import { Cluster, waitFor } from '../helpers/cluster';
import { InstalledAgent, metricSum, STATE, UNIT, writeKernelLines } from '../helpers/installed-agent';
import type { AgentStatus } from '../../src/types';
import { installedNode } from '../helpers/node';

const FAULT_INI = '/etc/node-health/90-fault.ini';
const CURSOR = /^s=[0-9a-f]{32};i=[0-9a-f]+;b=[0-9a-f]{32};m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+$/;
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('node-side faults injected into the installed daemon in a box', async (t) => {
  const node = `fault-node2-${process.pid}`;
  const cluster = await Cluster.up(t, [node]);
  // containerd hung and repaired fast, so the SIGKILL row's bursts write the repair ledger too; no kubelet
  // runs in the box, so it is not probed (nothing else in the ledger).
  const box = await installedNode(t, cluster, node, {
    before: (b) => b.check(['systemctl', 'start', 'containerd']),
    ini: {
      name: '50-faults.ini',
      text: '[repair]\nallowed_units = containerd.service\n[kubelet]\nenabled = false\n' +
        '[containerd]\ninterval = 1s\ntimeout = 1s\nfailure_duration = 1s\ncooldown = 2s\nbackoff = 1s\nbackoff_max = 2s\nmax_repairs = 100\n',
    },
  });
  const agent = new InstalledAgent(box);

  const onNode = async (type: string, status = 'True', ms = 30_000): Promise<number> => {
    const from = Date.now();
    try {
      return await waitFor(`${type}=${status} on the Node`, async () => ((await cluster.condition(node, type))?.status === status ? Date.now() - from : undefined), ms, 50);
    } catch (err) {
      const s = await agent.status();
      const log = await box.check(['journalctl', '-u', UNIT, '-o', 'cat', '--no-pager', '-n', '30']);
      throw new Error(`${String(err)}\nagent: ${conditionOf(s, type)}, kubernetes ${JSON.stringify(s?.kubernetes)}\n${log}`);
    }
  };
  const conditionOf = (s: AgentStatus | undefined, type: string): string | undefined => s?.conditions.find((c) => c.type === type)?.status;
  /** The unread kernel lines after the saved cursor (all of them when none is saved). */
  const unreadAfterCursor = async (): Promise<number> => {
    const cursor = (await box.check(['sh', '-c', `cat ${STATE}/journal/kernel.cursor 2>/dev/null || true`])).trim();
    const args = cursor ? ['--after-cursor', cursor] : [];
    const out = await box.check(['sh', '-c', `journalctl ${args.map((a) => `'${a}'`).join(' ')} -o cat --no-pager _TRANSPORT=kernel | wc -l`]);
    return Number(out.trim());
  };

  await agent.healthy();
  await waitFor('KernelDeadlock=False written by the agent', async () => ((await cluster.condition(node, 'KernelDeadlock'))?.status === 'False' ? true : undefined), 60_000);

  t.test('a reload of every section with a bad value, and a condition type changing owner', async (t) => {
    const pid = await agent.show('MainPID');
    const restarts = await agent.show('NRestarts');
    // Some state that must survive the rejected reloads: a condition set by a journal rule.
    await writeKernelLine(box, 'nfs: server 10.0.0.9 not responding, still trying');
    await onNode('NFSServerUnresponsive');
    const before = await agent.healthy();
    const generation = before.config.generation;
    const shape = (s: AgentStatus): unknown => ({
      conditions: s.conditions.map((c) => [c.type, c.status, c.reason, c.lastTransitionTime]),
      journal: s.journal.map((j) => [j.source, j.alive]),
      plugins: s.plugins.length,
      files: s.config.files,
    });
    /** Writes `text` as the fault ini (none: removes it), reloads, and returns the status with the outcome. */
    const reload = async (text?: string): Promise<AgentStatus> => {
      const last = (await agent.status())?.config.lastReload?.at;
      if (text === undefined) await box.check(['rm', '-f', FAULT_INI]);
      else await box.check(['sh', '-c', `cat > ${FAULT_INI}`], { input: text });
      const from = Date.now();
      await box.check(['systemctl', 'reload', UNIT]);
      const s = await waitFor('the reload outcome in status', async () => {
        const now = await agent.status();
        return now?.config.lastReload && now.config.lastReload.at !== last ? now : undefined;
      }, 30_000);
      t.comment(`${JSON.stringify(text ?? 'the shipped config')}: ${s.config.lastReload?.ok ? 'applied' : 'rejected'} in ${Date.now() - from} ms`);
      return s;
    };
    const cases = [
      ...badValues().map((b) => ({ what: `${b.header} ${b.key} = "${b.value}"`, text: `${b.header}\n${b.key} = ${b.value}\n`, names: b.key })),
      // [disk] would report KernelDeadlock, which the journal rule "TaskHung" already reports.
      { what: 'a condition type claimed by a second owner', text: '[disk]\ncondition = KernelDeadlock\n', names: 'KernelDeadlock' },
    ];
    t.ok(cases.length > 25, `${cases.length} bad configs, one per section and family`);
    for (const c of cases) {
      const s = await reload(c.text);
      const outcome = s.config.lastReload;
      t.equal(outcome?.ok, false, `${c.what}: rejected`);
      t.match(outcome?.error ?? '', c.names, `${c.what}: the error names ${c.names}`);
      t.equal(s.config.generation, generation, `${c.what}: generation unchanged`);
      t.same(shape(s), shape(before), `${c.what}: conditions, journal sources and plugins as they were`);
    }
    // The journal still reads after all the rejected reloads.
    await writeKernelLine(box, 'XFS (sdb1): Filesystem has been shut down due to log error (0x2).');
    t.pass(`a kernel line after the rejected reloads set XfsShutdown on the Node in ${await onNode('XfsShutdown')} ms`);

    // A good reload after them applies: a type moving to another owner keeps its state.
    const applied = await reload('[disk]\ncondition = FaultDiskFull\n[rule "FaultMoved"]\nsource = kernel\nkind = permanent\ncondition = DiskFull\nreason = FaultDisk\npattern = fault-disk-full .*\n[condition "DiskFull"]\nreason = NoFaultDisk\nmessage = no fault\n');
    t.equal(applied.config.lastReload?.ok, true, `a good reload is applied: ${applied.config.lastReload?.error ?? ''}`);
    t.equal(applied.config.generation, generation + 1, 'generation + 1');
    t.equal(conditionOf(applied, 'NFSServerUnresponsive'), 'True', 'the condition set before kept its state');
    await writeKernelLine(box, 'fault-disk-full on /var');
    t.pass(`DiskFull, now a journal rule's, set on the Node in ${await onNode('DiskFull')} ms`);
    const back = await reload();
    t.equal(back.config.lastReload?.ok, true, 'the reload back to the shipped config is applied');
    const s = await agent.healthy();
    t.same(s.degraded, [], 'nothing degraded');
    await agent.sameProcess(t, pid, restarts);
  });

  t.test('SIGKILL, three times, while conditions, the repair ledger and the journal cursor are being written', async (t) => {
    // Each burst: 1000 kernel lines a second for 6 s that set and clear NFSServerUnresponsive (a condition
    // change, so a conditions.json save, every line) and raise KernelDeadlock; the cursor moves with them.
    // The cycle ends with an I/O error, so the burst ends with NFS cleared and the deadlock set. Meanwhile
    // containerd hangs (SIGSTOP): the agent writes a repair intent, restarts it, writes the outcome.
    const LEDGER = `${STATE}/repair-ledger.jsonl`;
    interface LedgerRecord { kind: string; id: string }
    const ledger = async (): Promise<LedgerRecord[]> =>
      (await box.check(['sh', '-c', `cat ${LEDGER} 2>/dev/null || true`])).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LedgerRecord);
    const intents = async (): Promise<number> => (await ledger()).filter((r) => r.kind === 'intent').length;
    const messages = [
      'nfs: server 10.0.0.3 not responding, still trying',
      'nfs: server 10.0.0.3 OK',
      'INFO: task docker:7 blocked for more than 300 seconds.',
      'Buffer I/O error on dev sdd1, logical block 9, async page read',
    ];
    let restarts = Number(await agent.show('NRestarts'));
    for (let round = 1; round <= 3; round++) {
      const pid = await agent.show('MainPID');
      const intentsBefore = await intents();
      // Past containerd's cooldown after the last round's restart, so the hang is judged.
      await sleep(2500);
      await box.check(['systemctl', 'kill', '--kill-whom=main', '--signal=SIGSTOP', 'containerd']);
      const burst = writeKernelLines(box, 1000, 6, messages);
      // Killed as the repair intent is on disk (its outcome follows the restart) while the burst is read.
      await waitFor('a repair intent in the ledger', async () => ((await intents()) > intentsBefore ? true : undefined), 30_000, 20);
      await box.check(['systemctl', 'kill', '--signal=SIGKILL', UNIT]);
      const killedAt = Date.now();
      // As the killed process left them: every state file parses.
      const conditions = await box.check(['sh', '-c', `cat ${STATE}/conditions.json`]);
      t.doesNotThrow(() => JSON.parse(conditions) as unknown, `round ${round}: conditions.json parses`);
      await t.resolves(ledger(), `round ${round}: every line of the repair ledger parses`);
      t.comment(`round ${round}: killed with ${(await ledger()).length} ledger records`);
      const cursor = (await box.check(['sh', '-c', `cat ${STATE}/journal/kernel.cursor 2>/dev/null || true`])).trim();
      if (cursor) t.match(cursor, CURSOR, `round ${round}: kernel.cursor is a whole journal cursor`);
      // A kill in the middle of a save leaves its temporary file (replaced by the next save), never a torn state file.
      const tmp = (await box.check(['find', STATE, '-name', '*.tmp*'])).trim();
      if (tmp) t.comment(`round ${round}: left mid-save: ${tmp}`);
      await burst;
      const newPid = await waitFor('systemd restarted the agent', async () => {
        const p = await agent.show('MainPID');
        return p !== '0' && p !== pid ? p : undefined;
      }, 60_000);
      restarts++;
      t.equal(await agent.show('NRestarts'), String(restarts), `round ${round}: one restart`);
      await agent.healthy();
      t.comment(`round ${round}: ${newPid} healthy ${Date.now() - killedAt} ms after SIGKILL`);
    }
    // Everything written was read after the last restart: the final state is the burst's last line.
    const caughtUp = Date.now();
    await waitFor('the cursor at the end of the kernel lines', async () => ((await unreadAfterCursor()) === 0 ? true : undefined), 60_000, 500);
    t.comment(`the cursor reached the last kernel line ${Date.now() - caughtUp} ms after the last restart was healthy`);
    const s = await agent.healthy();
    t.equal(conditionOf(s, 'NFSServerUnresponsive'), 'False', 'NFSServerUnresponsive cleared, as the burst left it');
    t.equal(conditionOf(s, 'KernelDeadlock'), 'True', 'KernelDeadlock set, as the burst left it');
    await onNode('NFSServerUnresponsive', 'False');
    await onNode('KernelDeadlock', 'True');
    const saved = JSON.parse(await box.check(['cat', `${STATE}/conditions.json`])) as { conditions: Array<{ type: string; status: string }> };
    t.equal(saved.conditions.find((c) => c.type === 'KernelDeadlock')?.status, 'True', 'conditions.json holds the final state');
    // Every repair intent ends with exactly one outcome, written by the process that acted or resolved
    // by the next one; containerd is running again.
    await waitFor('containerd active and healthy', async () => ((await box.check(['systemctl', 'is-active', 'containerd']).catch(() => '')).trim() === 'active' && conditionOf(await agent.status(), 'ContainerRuntimeUnhealthy') === 'False' ? true : undefined), 60_000, 500);
    const records = await waitFor('an outcome for every intent', async () => {
      const r = await ledger();
      const open = r.filter((x) => x.kind === 'intent' && !r.some((o) => o.kind === 'outcome' && o.id === x.id));
      return open.length === 0 ? r : undefined;
    }, 60_000, 1000);
    const ids = records.filter((r) => r.kind === 'intent').map((r) => r.id);
    t.ok(ids.length >= 3, `${ids.length} repairs in the ledger`);
    t.equal(new Set(ids).size, ids.length, 'no intent written twice');
    for (const id of ids) t.equal(records.filter((r) => r.kind === 'outcome' && r.id === id).length, 1, `intent ${id}: one outcome`);
    t.comment(`ledger: ${records.map((r) => `${r.kind}${'result' in r ? ` ${String((r as { result?: unknown }).result)}` : ''}`).join(', ')}`);
    t.same(s.degraded, [], 'nothing degraded');
  });

  t.test('10,000 log lines a second for a minute', async (t) => {
    const pid = await agent.show('MainPID');
    const restarts = await agent.show('NRestarts');
    // RssAnon is the agent's own memory; VmRSS also counts the journal files it maps (pages the kernel can drop).
    const rss = async (): Promise<{ anon: number; all: number }> => {
      const text = await box.check(['cat', `/proc/${pid}/status`]);
      const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN) / 1024;
      return { anon: kb('RssAnon'), all: kb('VmRSS') };
    };
    const rssBefore = await rss();
    const eventsBefore = metricSum(await agent.metrics(), 'node_health_api_requests_total', 'resource="events"');
    const allBefore = metricSum(await agent.metrics(), 'node_health_api_requests_total');
    // One line in ten an OOM kill (an Event each), the rest noise no rule matches.
    const noise = Array.from({ length: 9 }, (_, i) => `eth0: link flap ${i} noise line that matches no rule`);
    const oom = 'Out of memory: Killed process 4242 (stress) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB';
    const flood = writeKernelLines(box, 10_000, 60, [oom, ...noise]);
    const samples: Array<{ anon: number; all: number }> = [];
    const started = Date.now();
    let done = false;
    void flood.finally(() => (done = true));
    while (!done) {
      samples.push(await rss());
      const s = await agent.status();
      t.ok(s !== undefined, `status answers at ${Math.round((Date.now() - started) / 1000)} s`);
      await sleep(5000);
    }
    await flood;
    t.comment(`flood written in ${Date.now() - started} ms`);
    const caught = Date.now();
    await waitFor('the agent read the whole flood', async () => ((await unreadAfterCursor()) === 0 ? true : undefined), 300_000, 1000);
    t.comment(`caught up ${Date.now() - caught} ms after the last line was written`);
    samples.push(await rss());
    const peak = Math.max(...samples.map((m) => m.anon));
    const fmt = (m: { anon: number; all: number }): string => `${m.anon.toFixed(1)}/${m.all.toFixed(1)}`;
    t.comment(`RSS anonymous/all before ${fmt(rssBefore)} MiB, every 5 s during and after: ${samples.map(fmt).join(' ')} MiB`);
    t.ok(peak < rssBefore.anon + 64, `anonymous RSS bounded: peak ${peak.toFixed(1)} MiB, ${(peak - rssBefore.anon).toFixed(1)} MiB above idle`);
    const m = await agent.metrics();
    const events = metricSum(m, 'node_health_api_requests_total', 'resource="events"') - eventsBefore;
    const all = metricSum(m, 'node_health_api_requests_total') - allBefore;
    const oomEvents = (await cluster.events(node)).filter((e) => e.reason === 'OOMKilling');
    const counted = oomEvents.reduce((n, e) => n + (e.count ?? 1), 0);
    t.comment(`60,000 OOM lines: ${oomEvents.length} OOMKilling Events with counts adding up to ${counted}; ${events} event requests, ${all} API requests in all`);
    t.ok(all < 200, `API writes bounded: ${all} requests for 600,000 lines`);
    t.ok(counted > 0, 'the OOM kills reached the Node as Events');
    await agent.sameProcess(t, pid, restarts);
    await writeKernelLine(box, 'sd 3:0:0:0: rejecting I/O to offline device');
    t.pass(`detection after the flood: StorageDeviceFailed on the Node in ${await onNode('StorageDeviceFailed')} ms`);
    t.same((await agent.status())?.degraded, [], 'nothing degraded');
  });

  t.test('the wall clock stepped +1 h, then -1 h back to the real time', async (t) => {
    // The box shares the host's CLOCK_REALTIME (time namespaces offset only the monotonic and boot-time
    // clocks) and has no CAP_SYS_TIME, so `date -s` inside fails and must never reach the host. libfaketime,
    // preloaded into the agent alone, steps the wall clock it sees while CLOCK_MONOTONIC stays real, as
    // after an operator's `date -s` or an NTP step.
    await box.check(['test', '-f', FAKETIME]).catch(() => {
      throw new Error(`${FAKETIME} is missing: run scripts/setup.sh (it installs libfaketime)`);
    });
    await box.check(['sh', '-c', 'echo +0 > /etc/node-health-faketime && mkdir -p /etc/systemd/system/node-health-agent.service.d']);
    await box.check(['sh', '-c', 'cat > /etc/systemd/system/node-health-agent.service.d/faketime.conf'], {
      input: `[Service]\nEnvironment=LD_PRELOAD=${FAKETIME} FAKETIME_TIMESTAMP_FILE=/etc/node-health-faketime FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1\n`,
    });
    // A short event window, so a held repeat is due within the test.
    await box.check(['sh', '-c', `printf '[journal]\\nevent_window = 5s\\n' > ${FAULT_INI}`]);
    await box.check(['systemctl', 'daemon-reload']);
    await box.check(['systemctl', 'restart', UNIT], { timeoutMs: 90_000 });
    await agent.healthy();
    const pid = await agent.show('MainPID');
    const restarts = await agent.show('NRestarts');
    const env = await box.check(['cat', `/proc/${pid}/environ`]);
    t.match(env, /LD_PRELOAD=\S*libfaketime/, 'the agent runs with libfaketime');

    const probeRuns = async (): Promise<number> => metricSum(await agent.metrics(), 'node_health_check_duration_seconds_count', 'memory');
    const steps = [
      { offset: '+3600', what: '+1 h', line: 'NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.', condition: 'GPUUnhealthy' },
      // Back to the real time, not below it: the test cluster's certificates are minutes old, and a clock
      // before their notBefore fails every TLS handshake (as it would for the kubelet).
      { offset: '+0', what: '-1 h', line: '{1}[Hardware Error]: event severity: fatal', condition: 'CperHardwareErrorFatal' },
    ];
    for (const step of steps) {
      const wallBefore = Date.now();
      await box.check(['sh', '-c', `echo ${step.offset} > /etc/node-health-faketime`]);
      await sleep(2000);
      const s0 = await agent.status();
      t.ok(s0 !== undefined, `${step.what}: status answers`);
      t.comment(`${step.what}: the agent's uptime ${s0?.uptimeSeconds} s`);
      t.ok((s0?.uptimeSeconds ?? -1) >= 0 && (s0?.uptimeSeconds ?? Infinity) < (Date.now() - wallBefore) / 1000 + 600, `${step.what}: uptime is sane (${s0?.uptimeSeconds} s)`);
      // Timers keep firing: the memory probe (every 10 s) runs on.
      const runs = await probeRuns();
      await waitFor(`${step.what}: the memory probe ran twice more`, async () => ((await probeRuns()) >= runs + 2 ? true : undefined), 40_000, 1000);
      // Detection, the saved position, and a held event repeat, all on time.
      const written = Date.now();
      await writeKernelLine(box, step.line);
      t.pass(`${step.what}: a kernel line set ${step.condition} on the Node in ${await onNode(step.condition)} ms`);
      await waitFor(`${step.what}: the cursor saved past the line (cursor_every 5 s)`, async () => ((await unreadAfterCursor()) === 0 ? true : undefined), 20_000, 500);
      t.pass(`${step.what}: the cursor was saved past the line ${Date.now() - written} ms after it was written`);
      const io = `Buffer I/O error on dev sde${step.offset === '+3600' ? 1 : 2}, logical block 1, async page read`;
      const countOf = async (): Promise<number> => (await cluster.events(node)).filter((e) => e.reason === 'IOError').reduce((n, e) => n + (e.count ?? 1), 0);
      const ioBefore = await countOf();
      await writeKernelLine(box, io);
      await writeKernelLine(box, io);
      const sent = Date.now();
      await waitFor(`${step.what}: both IOError lines counted on the Node (event_window 5 s)`, async () => ((await countOf()) >= ioBefore + 2 ? true : undefined), 30_000, 250);
      t.pass(`${step.what}: the held repeat reached the Node ${Date.now() - sent} ms after the lines`);
      t.equal(await countOf(), ioBefore + 2, `${step.what}: counted once each, no burst of repeats`);
    }
    const s = await agent.healthy();
    t.same(s.degraded, [], 'nothing degraded');
    await agent.sameProcess(t, pid, restarts);
  });
});
