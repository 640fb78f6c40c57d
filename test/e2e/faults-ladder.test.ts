// The fault matrix's ladder row through the installed package (docs/reliability.md): SIGKILL while the
// ladder writes its ledger. The .deb in a node in a box with the kubelet's credentials and the
// coordination identity of the shipped manifest, reporting to the test cluster's real API server, with
// `[remediate "KernelDeadlock"]` walking cordon → drain → reboot. A pod whose PodDisruptionBudget allows
// no eviction keeps the drain going while the agent is killed (`systemctl kill --signal=SIGKILL`) the
// moment a drain intent is on disk, three times, a torn line left in the ledger once while it is down;
// then logind is frozen so the reboot it is asked for waits, and the agent is killed with the reboot
// intent open; after the real reboot of the box it is killed once more as it waits for the Node to be
// Ready. After every kill systemd starts it again and it takes the same run up at the step it was in:
// one run, one cordon, one reboot, one slot Lease held throughout and given back at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CORDONED_BY_AGENT } from '../../src/repair/ladder/cordon';
import type { RunEntry } from '../../src/repair/ladder/ledger';
import { writeKernelLine } from '../helpers/box';
import { Cluster, waitFor } from '../helpers/cluster';
import { InstalledAgent, STATE, UNIT } from '../helpers/installed-agent';
import { installedNode } from '../helpers/node';
import { createBudget, createPod, ensureDefaultServiceAccount, heldSlots, nodeSpec, playKubelet, setBudget, setReady } from '../ladder/support';

const repo = join(__dirname, '../..');
const TOKEN = '/etc/node-health/coordination.token';
const LEDGER = `${STATE}/ladder-ledger.jsonl`;
const SLOT = 'node-health-repair-0';
const LINE = 'INFO: task docker:7 blocked for more than 300 seconds.';

const INI = `[kubelet]
; No kubelet runs in the box; the test reports the Node's Ready as the kubelet would.
enabled = false

[coordination]
enabled = true
token_file = ${TOKEN}
new_node_grace = 0s

[ladder]
enabled = true
drain_timeout = 5m
reboot_timeout = 2m
after_boot_timeout = 3m
; The shortest allowed: an interrupted run undone and started again would show within the test.
retry = 1m

[remediate "KernelDeadlock"]
after = 1m
steps = cordon, drain, reboot
`;

interface LedgerRecord {
  kind: 'begin' | 'intent' | 'outcome' | 'end';
  run: string;
  step?: string;
  result?: string;
  bootId?: string;
}

interface LadderView {
  startedAt: string;
  ladder: { active: { run: string; step: string | null } | null; lastRuns: RunEntry[] } | null;
  coordination: { ready: boolean; held: string | null } | null;
}

t.test('SIGKILL while the ladder writes its ledger: the installed daemon takes its run up where it was', async (t) => {
  const node = `fault-ladder-${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), 'nha-faults-ladder-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const cluster = await Cluster.up(t, [node]);
  await ensureDefaultServiceAccount(cluster);
  await cluster.applyManifest(join(repo, 'packaging/kubernetes/coordination.yaml'));
  writeFileSync(join(work, 'coordination.token'), await cluster.serviceAccountToken('node-health', 'node-health-coordinator'), { mode: 0o600 });
  await setReady(cluster, node, 'True');
  playKubelet(t, cluster, node);
  await createPod(cluster, node, 'web-0', { running: true });
  await createBudget(cluster, 'web', 'web-0', 0);

  const box = await installedNode(t, cluster, node, {
    before: async (b) => {
      await b.check(['mkdir', '-p', '/etc/node-health']);
      await b.copyIn(join(work, 'coordination.token'), TOKEN);
    },
    ini: { name: '50-ladder.ini', text: INI },
  });
  const agent = new InstalledAgent(box);

  /** The ledger as the killed process left it: every line but a torn last one must parse. */
  const readLedger = async (): Promise<{ records: LedgerRecord[]; torn: string }> => {
    const text = await box.check(['sh', '-c', `cat ${LEDGER} 2>/dev/null || true`]);
    const lines = text.split('\n');
    const torn = lines.pop() ?? '';
    return { records: lines.filter((l) => l !== '').map((l) => JSON.parse(l) as LedgerRecord), torn };
  };
  const count = (records: LedgerRecord[], kind: string, step?: string): number => records.filter((r) => r.kind === kind && r.step === step).length;
  const view = async (): Promise<LadderView | undefined> => {
    const r = await box.exec(['node-health-agent', 'status', '--json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as LadderView) : undefined;
  };
  const bootId = async (): Promise<string> => (await box.check(['cat', '/proc/sys/kernel/random/boot_id'])).trim().replace(/-/g, '');
  const eventCount = async (reason: string): Promise<number> => (await cluster.events(node)).filter((e) => e.reason === reason).reduce((n, e) => n + (e.count ?? 1), 0);
  const recoveries: number[] = [];

  /**
   * Kills the agent once `ready` holds for the ledger, checks what it left, optionally leaves a torn
   * line as a kill mid-write would, and waits for systemd's restart to take the run up at `step`.
   */
  const killAndResume = async (t: Test, what: string, run: string, step: string, ready: (records: LedgerRecord[]) => boolean, tear = false): Promise<LedgerRecord[]> => {
    const pid = await agent.show('MainPID');
    const restarts = Number(await agent.show('NRestarts'));
    await waitFor(`${what}: the ledger ready for the kill`, async () => (ready((await readLedger()).records) ? true : undefined), 120_000, 20);
    await box.check(['systemctl', 'kill', '--signal=SIGKILL', UNIT]);
    const killedAt = Date.now();
    const left = await readLedger();
    t.pass(`${what}: killed with ${left.records.length} ledger records, every line parses${left.torn ? ` but a torn last one (${left.torn.length} bytes)` : ''}`);
    if (tear) await box.check(['sh', '-c', `printf '%s' '{"kind":"outcome","run":"${run}","st' >> ${LEDGER}`]);
    const resumed = await waitFor(`${what}: the run taken up again`, async () => {
      const v = await view();
      return v?.ladder?.active?.run === run && v.ladder.active.step === step ? v : undefined;
    }, 60_000, 100);
    const ms = Date.now() - killedAt;
    recoveries.push(ms);
    t.not(await agent.show('MainPID'), pid, `${what}: a new process`);
    t.equal(Number(await agent.show('NRestarts')), restarts + 1, `${what}: started again by systemd, once`);
    t.equal(resumed.coordination?.held, SLOT, `${what}: status: holding ${SLOT} again`);
    t.same(await heldSlots(cluster, node), [SLOT], `${what}: one slot Lease held, by this node`);
    const after = await readLedger();
    t.equal(after.torn, '', `${what}: no torn line left after the start`);
    t.match(await box.check(['node-health-agent', 'status']), new RegExp(`^  running ${run} for KernelDeadlock: step ${step} since \\S+ \\(Lease ${SLOT}\\)$`, 'm'), `${what}: status says which step the run is in`);
    t.comment(`${what}: killed → run taken up at ${step} in ${ms} ms`);
    return after.records;
  };

  await agent.healthy();
  await waitFor('KernelDeadlock False written by the daemon', async () => ((await cluster.condition(node, 'KernelDeadlock'))?.status === 'False' ? true : undefined), 60_000);
  const firstBoot = await bootId();
  await writeKernelLine(box, LINE);
  await waitFor('KernelDeadlock True on the Node', async () => ((await cluster.condition(node, 'KernelDeadlock'))?.status === 'True' ? true : undefined), 30_000, 100);

  // After `after` (1 m) the run begins; the budget keeps its drain going.
  const begun = await waitFor('the run and its drain', async () => {
    const { records } = await readLedger();
    return count(records, 'intent', 'drain') > 0 ? records : undefined;
  }, 150_000, 20);
  const run = (begun.find((r) => r.kind === 'begin') as LedgerRecord).run;
  const mark = (await nodeSpec(cluster, node)).metadata.annotations?.[CORDONED_BY_AGENT];
  t.match(mark, `KernelDeadlock, run ${run}, `, 'cordoned by the run');

  await t.test('killed three times as a drain intent reaches the disk', async (t) => {
    for (let round = 1; round <= 3; round++) {
      // Each start of the agent takes the drain again with an intent of its own: the round's is the round-th.
      const records = await killAndResume(t, `drain ${round}`, run, 'drain', (r) => count(r, 'intent', 'drain') >= round, round === 2);
      t.equal(records.filter((r) => r.kind === 'begin').length, 1, `drain ${round}: one run`);
      t.equal(count(records, 'intent', 'cordon'), 1, `drain ${round}: one cordon`);
      t.equal(records.filter((r) => r.kind === 'end').length, 0, `drain ${round}: the run not ended (not undone)`);
      const n = await nodeSpec(cluster, node);
      t.equal(n.spec?.unschedulable, true, `drain ${round}: still cordoned`);
      t.equal(n.metadata.annotations?.[CORDONED_BY_AGENT], mark, `drain ${round}: the same cordon`);
      t.equal(count(records, 'intent', 'drain'), round + 1, `drain ${round}: the drain taken again`);
    }
    const log = await box.check(['journalctl', '-u', UNIT, '-o', 'cat', '--no-pager', 'NODE_HEALTH_CODE=LEDGER_LINE_SKIPPED']);
    t.match(log, new RegExp(`${LEDGER}: dropped an incomplete last line \\(\\d+ bytes\\) left by a crash`), 'the torn line was cut off and logged with NODE_HEALTH_CODE=LEDGER_LINE_SKIPPED');
  });

  await t.test('killed with the reboot intent open, logind not answering yet', async (t) => {
    // logind frozen: the Reboot call waits, and the intent stays open in this boot while the agent is killed.
    await box.check(['systemctl', 'kill', '--kill-whom=main', '--signal=SIGSTOP', 'systemd-logind']);
    let thawed = false;
    const thaw = async (): Promise<void> => {
      if (thawed) return;
      thawed = true;
      await box.check(['systemctl', 'kill', '--kill-whom=main', '--signal=SIGCONT', 'systemd-logind']);
    };
    t.teardown(thaw);
    await setBudget(cluster, 'web', 1);
    const records = await killAndResume(t, 'reboot', run, 'reboot', (r) => count(r, 'intent', 'reboot') === 1);
    t.equal(count(records, 'intent', 'reboot'), 1, 'reboot: the open intent stands, none written twice');
    t.equal(count(records, 'outcome', 'drain'), 1, 'reboot: one drain outcome');
    t.equal(records.find((r) => r.kind === 'intent' && r.step === 'reboot')?.bootId, firstBoot, 'reboot: the intent of this boot');
    // logind answers: the box reboots, once.
    await thaw();
    t.equal(await box.waitStopped(120_000), 'reboot', 'the box rebooted');
    await box.boot();
    t.not(await bootId(), firstBoot, 'a new boot');
  });

  await t.test('after the boot: killed as it waits for the Node to be Ready, then Ready', async (t) => {
    await waitFor('the daemon started by its enabled unit', async () => ((await agent.show('ActiveState')) === 'active' ? true : undefined), 60_000, 200);
    const records = await killAndResume(t, 'verify', run, 'verify', (r) => count(r, 'intent', 'verify') === 1);
    t.equal(count(records, 'intent', 'verify'), 1, 'verify: the wait keeps its intent (and its deadline)');
    t.equal(count(records, 'outcome', 'reboot'), 1, 'verify: the reboot recorded once');
    t.equal((await nodeSpec(cluster, node)).spec?.unschedulable, true, 'verify: still cordoned while Ready is not reported');
    await setReady(cluster, node, 'True');
    await waitFor('uncordoned and the slot given back', async () => (!(await nodeSpec(cluster, node)).spec?.unschedulable && (await heldSlots(cluster, node)).length === 0 ? true : undefined), 60_000, 100);
  });

  // What holds at the end.
  const done = await waitFor('the run ended in status', async () => {
    const v = await view();
    return v?.ladder?.active === null && v.ladder.lastRuns[0]?.id === run && v.ladder.lastRuns[0].end ? v : undefined;
  }, 30_000, 200);
  const last = done.ladder?.lastRuns[0] as RunEntry;
  t.equal(last.end?.result, 'repaired', last.end?.detail ?? '');
  t.same(
    last.done.map((s) => [s.step, s.outcome?.result]),
    [['cordon', 'done'], ['drain', undefined], ['drain', undefined], ['drain', undefined], ['drain', 'done'], ['reboot', 'done'], ['verify', 'done'], ['uncordon', 'done'], ['release', 'done']],
    'status: one cordon, the drain taken again after each kill, one reboot, then verify, uncordon, release',
  );
  const { records, torn } = await readLedger();
  t.equal(torn, '', 'the ledger ends with a whole line');
  t.equal(records.filter((r) => r.kind === 'begin').length, 1, 'one run for the occurrence');
  t.equal(count(records, 'intent', 'cordon'), 1, 'one cordon');
  t.equal(count(records, 'intent', 'reboot'), 1, 'one reboot');
  const n = await nodeSpec(cluster, node);
  t.notOk(n.spec?.unschedulable, 'uncordoned');
  t.equal(n.metadata.annotations?.[CORDONED_BY_AGENT], undefined, "the agent's mark removed");
  t.same(await heldSlots(cluster, node), [], 'no slot held');
  t.equal(done.coordination?.held ?? null, null, 'status: no slot held');
  t.equal(await agent.show('ActiveState'), 'active', 'the daemon runs');
  await waitFor('LadderRepaired on the Node', async () => ((await eventCount('LadderRepaired')) > 0 ? true : undefined), 30_000);
  t.equal(await eventCount('LadderRepaired'), 1, 'one LadderRepaired Event');
  // Events wait in memory until sent: one emitted just before a kill that came right after the next
  // intent may be lost with the process (the ledger is the record). None may be sent twice.
  for (const reason of ['LadderStarted', 'LadderCordoned', 'LadderDrained', 'LadderRebooted']) t.ok((await eventCount(reason)) <= 1, `at most one ${reason} Event`);
  t.ok((await eventCount('LadderResumed')) >= 1, 'LadderResumed on the Node');
  const reasons = ['LadderStarted', 'LadderCordoned', 'LadderResumed', 'LadderDrained', 'LadderRebooting', 'LadderRebooted', 'LadderRepaired'];
  const counts = await Promise.all(reasons.map(eventCount));
  t.comment(`Events on the Node: ${reasons.map((r, i) => `${r} ${counts[i]}`).join(', ')}`);
  t.equal(await eventCount('LadderFailed'), 0, 'no LadderFailed Event');
  t.comment(`recovery, SIGKILL → the run taken up (ms): ${recoveries.join(', ')}`);
});
