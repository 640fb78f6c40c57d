// The ladder's real reboot, through the product: the .deb installed in a node in a box with the node's
// kubelet credentials, configured by /etc/node-health/*.ini with [ladder], a [remediate "KernelDeadlock"]
// section and the coordination identity (the ServiceAccount of the shipped manifest). A kernel hung-task
// line sets KernelDeadlock through the shipped journal rules; after `after` the daemon takes a slot
// Lease, cordons, drains and calls logind's Reboot over D-Bus. The box really reboots (systemd-nspawn
// exits with 133) and is booted again on the same overlay, as a machine's firmware would; the enabled
// unit starts the daemon, which finds the reboot intent in its ledger, takes its Lease back, waits for
// Ready (the test plays the kubelet: nothing else sets Ready here) and KernelDeadlock False (a new boot
// clears it), uncordons and gives the slot back. Evicted pods are ended by the test, as the kubelet
// would. Everything is observed from outside the daemon: the Node, its Events and the Lease as the
// admin reads them, the box's console, and the daemon's `status` and `diagnose` in the box.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RunEntry } from '../../src/repair/ladder/ledger';
import { CORDONED_BY_AGENT } from '../../src/repair/ladder/cordon';
import { Box, runBoxScript, writeKernelLine } from '../helpers/box';
import { Cluster, waitFor } from '../helpers/cluster';
import { ensurePackages } from '../helpers/packages';
import { createPod, ensureDefaultServiceAccount, heldSlots, nodeSpec, playKubelet, podsOn, setReady, slotLeases } from './support';

const repo = join(__dirname, '../..');
const NODE = 'ladder-box';
const UNIT = 'node-health-agent.service';
const TOKEN = '/etc/node-health/coordination.token';
const COORDINATOR = 'system:serviceaccount:node-health:node-health-coordinator';
const SLOT = 'node-health-repair-0';
const LINE = 'INFO: task docker:7 blocked for more than 300 seconds.';
/** The shortest `after` the schema takes: the ladder never starts on a condition younger than a minute. */
const AFTER_MS = 60_000;

const INI = `[metrics]
; The metrics port is the host's: boxes share its network.
enabled = false

[kubelet]
; No kubelet runs in the box; the test reports the Node's Ready as the kubelet would.
enabled = false

[coordination]
enabled = true
token_file = ${TOKEN}
; The test's Node was created moments ago.
new_node_grace = 0s

[ladder]
enabled = true
drain_timeout = 30s
reboot_timeout = 2m
after_boot_timeout = 3m

[remediate "KernelDeadlock"]
after = 1m
steps = cordon, drain, reboot
`;

async function reasons(cluster: Cluster): Promise<string[]> {
  return (await cluster.events(NODE)).map((e) => e.reason);
}

/** The box's boot ID in the journal's form, read inside the box (its own, mounted by systemd-nspawn). */
async function bootIdOf(box: Box): Promise<string> {
  return (await box.check(['cat', '/proc/sys/kernel/random/boot_id'])).trim().replace(/-/g, '');
}

interface DaemonView {
  startedAt: string;
  ladder: { active: { step: string | null } | null; lastRuns: RunEntry[] } | null;
  coordination: { ready: boolean; held: string | null } | null;
}

async function daemon(box: Box): Promise<DaemonView | undefined> {
  const r = await box.exec(['node-health-agent', 'status', '--json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as DaemonView) : undefined;
}

t.test('the installed daemon reboots a node in a box through logind and finishes its ladder after the boot', async (t) => {
  const { deb } = ensurePackages();
  const work = mkdtempSync(join(tmpdir(), 'nha-ladder-box-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  const cluster = await Cluster.up(t, [NODE]);
  await ensureDefaultServiceAccount(cluster);
  await cluster.applyManifest(join(repo, 'packaging/kubernetes/coordination.yaml'));
  writeFileSync(join(work, 'coordination.token'), await cluster.serviceAccountToken('node-health', 'node-health-coordinator'), { mode: 0o600 });
  await setReady(cluster, NODE, 'True');
  const ended = playKubelet(t, cluster, NODE);
  await createPod(cluster, NODE, 'web-0', { running: true });
  await createPod(cluster, NODE, 'fluentd-box', { daemonSet: 'fluentd', running: true });

  // A node: kubelet credentials under / as kubeadm lays them out, the config, then the package.
  const box = await Box.up(t, 'ladder-reboot');
  const creds = join(work, 'creds.tar');
  execFileSync('tar', ['-C', cluster.nodeRoot(NODE), '-cf', creds, 'etc', 'var']);
  await box.copyIn(creds, '/tmp/');
  await box.check(['tar', '-C', '/', '-xf', '/tmp/creds.tar']);
  await box.check(['mkdir', '-p', '/etc/node-health']);
  await box.copyIn(join(work, 'coordination.token'), TOKEN);
  await box.check(['sh', '-c', 'umask 022; cat > /etc/node-health/50-ladder.ini'], { input: INI });
  await box.copyIn(deb, '/var/tmp/agent.deb');
  const install = await box.exec(['dpkg', '-i', '/var/tmp/agent.deb'], { timeoutMs: 180_000 });
  t.equal(install.code, 0, `dpkg -i: ${install.stderr}`);
  t.equal((await box.check(['systemctl', 'is-enabled', UNIT])).trim(), 'enabled');
  await waitFor('KernelDeadlock False written by the daemon', async () => ((await cluster.condition(NODE, 'KernelDeadlock'))?.status === 'False' ? true : undefined), 60_000);
  const statusBefore = await waitFor('the ladder in status', async () => {
    const out = (await box.exec(['node-health-agent', 'status'])).stdout;
    return /^Disruptive repair: ladder on for KernelDeadlock; /m.test(out) ? out : undefined;
  }, 30_000, 500);
  t.match(statusBefore, /^Disruptive repair: ladder on for KernelDeadlock; coordination /m, 'status shows the ladder on for KernelDeadlock');
  const firstBoot = await bootIdOf(box);

  const written = Date.now();
  await writeKernelLine(box, LINE);
  const deadlock = await waitFor('KernelDeadlock True on the Node', async () => {
    const c = await cluster.condition(NODE, 'KernelDeadlock');
    return c?.status === 'True' ? c : undefined;
  }, 30_000, 100);
  t.equal(deadlock.reason, 'DockerHung');

  // Not before `after`: the Node stays schedulable and no slot is taken for a minute.
  await new Promise((r) => setTimeout(r, AFTER_MS - 10_000 - (Date.now() - written)));
  t.notOk((await nodeSpec(cluster, NODE)).spec?.unschedulable, 'not cordoned before `after` has passed');
  t.same(await heldSlots(cluster, NODE), [], 'no slot taken before `after` has passed');

  // The ladder runs and the box reboots.
  const how = await box.waitStopped(AFTER_MS + 120_000);
  const downAt = Date.now();
  t.equal(how, 'reboot', 'systemd-nspawn ended with a reboot of the box');
  t.match(readFileSync(box.info.console, 'utf8'), `Container ${box.name} is being rebooted.`, 'the console says the box is being rebooted');
  const cordoned = await nodeSpec(cluster, NODE);
  t.equal(cordoned.spec?.unschedulable, true, 'the node is cordoned through the reboot');
  t.match(cordoned.metadata.annotations?.[CORDONED_BY_AGENT], /^KernelDeadlock, run /);
  t.same(ended, ['web-0'], 'web-0 was evicted (and ended by the test as the kubelet would), the DaemonSet pod left');
  t.same(await heldSlots(cluster, NODE), [SLOT], 'the slot Lease is held through the reboot');
  const down = await reasons(cluster);
  for (const reason of ['LadderStarted', 'LadderCordoned', 'LadderDrained', 'LadderRebooting']) {
    t.ok(down.includes(reason), `Event ${reason} on the Node before the box went down`);
  }

  // The machine comes back; the enabled unit starts the daemon.
  const bootMs = await box.boot();
  const twice = await runBoxScript(['boot', box.name]);
  t.match({ code: twice.code, stderr: twice.stderr }, { code: 1, stderr: /is running; 'boot' starts a box whose systemd has stopped/ }, 'a running box is not booted twice');
  const secondBoot = await bootIdOf(box);
  t.not(secondBoot, firstBoot, 'a new boot');
  // The daemon stopped on its own when systemd stopped every unit for the reboot (not killed at its stop timeout).
  const lastBoot = await box.check(['journalctl', '-b', '-1', '-u', UNIT, '-o', 'short-iso-precise', '--no-pager'], { env: { LANG: 'C' } });
  t.match(lastBoot, /node-health-agent stopped/, 'the previous boot\'s journal: the daemon stopped for the reboot');
  if (!t.notMatch(lastBoot, /timed out|Killing process|SIGKILL/, 'the previous boot\'s journal: not killed')) t.comment(lastBoot.split('\n').slice(-30).join('\n'));
  const stamp = (what: RegExp) => Date.parse(lastBoot.split('\n').find((l) => what.test(l))?.split(' ')[0] ?? '');
  const daemonStopMs = stamp(/systemd\[1\]: Stopped node-health-agent\.service/) - stamp(/systemd\[1\]: Stopping node-health-agent\.service/);
  if (downAt - stamp(/LadderRebooting: /) > 10_000) {
    // A slow shutdown: name the units systemd had to kill on the way down.
    t.comment((await box.check(['journalctl', '-b', '-1', '--grep', 'timed out|Killing', '-o', 'short-iso-precise', '--no-pager'], { env: { LANG: 'C' } }).catch((err: unknown) => String(err))).trim());
  }
  await waitFor('the daemon started by its enabled unit', async () => ((await box.exec(['systemctl', 'is-active', UNIT])).stdout.trim() === 'active' ? true : undefined), 60_000, 200);
  const activeAt = Date.now();

  // Before Ready is reported: the daemon has taken its slot back (renewed since the boot) and waits.
  const resumed = await waitFor('the slot Lease renewed after the boot', async () => {
    const l = (await slotLeases(cluster)).find((x) => x.metadata.name === SLOT);
    return l?.spec.holderIdentity === NODE && Date.parse(l.spec.renewTime ?? '') > downAt ? l : undefined;
  }, 60_000, 200);
  const resumedAt = Date.now();
  t.ok(resumed, `${SLOT} renewed by ${NODE} after the boot`);
  const waiting = await waitFor('the daemon waiting in the verify step', async () => {
    const s = await daemon(box);
    return s?.ladder?.active?.step === 'verify' ? s : undefined;
  }, 60_000, 200);
  t.equal(waiting.coordination?.held, SLOT, 'status: the daemon holds the slot again');
  const statusWaiting = await box.check(['node-health-agent', 'status']);
  t.match(statusWaiting, new RegExp(`^Disruptive repair: ladder on for KernelDeadlock; coordination ready as ${COORDINATOR} \\(node-health, 1 slots, holding ${SLOT}\\)$`, 'm'));
  t.match(statusWaiting, new RegExp(`^  running \\S+ for KernelDeadlock: step verify since \\S+ \\(Lease ${SLOT}\\)$`, 'm'));
  t.ok((await reasons(cluster)).includes('LadderRebooted'), 'Event LadderRebooted after the boot');
  t.equal((await nodeSpec(cluster, NODE)).spec?.unschedulable, true, 'still cordoned while Ready is not reported');

  // The kubelet of the new boot reports Ready.
  const readyAt = Date.now();
  await setReady(cluster, NODE, 'True');
  await waitFor('the node uncordoned and the slot given back', async () => (!(await nodeSpec(cluster, NODE)).spec?.unschedulable && (await heldSlots(cluster, NODE)).length === 0 ? true : undefined), 60_000, 100);
  const doneAt = Date.now();
  t.equal((await cluster.condition(NODE, 'KernelDeadlock'))?.status, 'False', 'the new boot cleared KernelDeadlock');
  t.same((await podsOn(cluster, NODE)).map((p) => p.metadata.name), ['fluentd-box']);
  const all = await waitFor('LadderRepaired on the Node', async () => {
    const r = await reasons(cluster);
    return r.includes('LadderRepaired') ? r : undefined;
  }, 30_000);
  for (const reason of ['LadderUncordoned', 'LadderRepaired']) t.ok(all.includes(reason), `Event ${reason} on the Node`);
  t.notOk(all.includes('LadderFailed'), 'no LadderFailed Event');

  // What the daemon says about it, in the box.
  const after = await waitFor('the run ended in status', async () => {
    const s = await daemon(box);
    return s?.ladder?.active === null && s.ladder.lastRuns.at(-1)?.end ? s : undefined;
  }, 30_000, 200);
  const run = after.ladder?.lastRuns.at(-1) as RunEntry;
  t.equal(run.condition, 'KernelDeadlock');
  t.equal(run.end?.result, 'repaired', run.end?.detail ?? '');
  t.same(run.done.map((s) => [s.step, s.outcome?.result]), [['cordon', 'done'], ['drain', 'done'], ['reboot', 'done'], ['verify', 'done'], ['uncordon', 'done'], ['release', 'done']]);
  t.equal(run.done[2]?.bootId, firstBoot, 'the reboot intent was recorded in the first boot');
  t.match(run.done[2]?.outcome?.detail, `the node booted again (boot ${secondBoot}, was ${firstBoot})`);
  const statusAfter = await box.check(['node-health-agent', 'status']);
  t.match(statusAfter, new RegExp(`^Disruptive repair: ladder on for KernelDeadlock; coordination ready as ${COORDINATOR} \\(node-health, 1 slots\\)$`, 'm'), 'status: ladder on, coordination ready, no slot held');
  const diagnose = await box.exec(['node-health-agent', 'diagnose', '--json'], { timeoutMs: 120_000 });
  const finding = diagnose.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { component: string; check: string; status: string; reason: string; message: string })
    .find((f) => f.component === 'repair' && f.check === 'disruption');
  t.match(finding, { status: 'ok', reason: 'LadderReady', message: `ladder for KernelDeadlock: coordinated as ${COORDINATOR} in namespace node-health, 1 slot(s)` }, 'diagnose: repair/disruption LadderReady');

  const step = (name: string) => run.done.find((s) => s.step === name)?.outcome?.durationMs;
  const rebootAsked = Date.parse(run.done[2]?.at ?? '');
  const bootedAt = downAt + bootMs;
  t.comment(`timing: kernel line to reboot asked (after = 1m): ${rebootAsked - written} ms; KernelDeadlock True to the run's begin: ${Date.parse(run.at) - Date.parse(run.since)} ms`);
  t.comment(`timing: cordon ${step('cordon')} ms, drain of 1 pod ${step('drain')} ms, uncordon ${step('uncordon')} ms, release ${step('release')} ms`);
  t.comment(`timing: reboot asked to box down: ${downAt - rebootAsked} ms (the daemon's own stop: ${daemonStopMs} ms); box boot: ${bootMs} ms; booted to the unit active: ${activeAt - bootedAt} ms, to the slot taken back: ${resumedAt - bootedAt} ms`);
  t.comment(`timing: Ready set to uncordoned and slot back (the daemon reads the Node every 5 s): ${doneAt - readyAt} ms`);
});
