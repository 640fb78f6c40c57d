// The ladder's real reboot: a node in a box with the node's kubelet credentials and the coordination
// identity, the ladder wired as the daemon would wire it (reboot-harness-agent.ts, an enabled unit). A
// kernel hung-task line sets KernelDeadlock through the shipped journal rules; the ladder takes a slot
// Lease, cordons, drains, writes its reboot intent and calls logind's Reboot over D-Bus. The box really
// reboots (systemd-nspawn exits with 133) and is booted again on the same overlay, as a machine's
// firmware would; the harness starts again, finds the intent, takes its Lease back, waits for Ready
// (the test plays the kubelet: nothing else sets it here) and KernelDeadlock False (a new boot clears
// it), uncordons and gives the slot back. Evicted pods are ended by the test, as the kubelet would.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import t from 'tap';
import type { RunEntry } from '../../src/repair/ladder/ledger';
import { LADDER_LEDGER_FILE, LadderLedger } from '../../src/repair/ladder/ledger';
import { CORDONED_BY_AGENT } from '../../src/repair/ladder/cordon';
import { Box, runBoxScript } from '../helpers/box';
import { Cluster, waitFor } from '../helpers/cluster';
import { createPod, ensureDefaultServiceAccount, nodeSpec, playKubelet, podsOn, setReady } from './support';

const repo = join(__dirname, '../..');
const NODE = 'ladder-box';
const LIB = '/usr/local/lib/nha-ladder';
const CONFIG = '/etc/nha-ladder';
const STATE = '/var/lib/nha-ladder';
const OUT = `${STATE}/out.jsonl`;
const UNIT = 'nha-ladder.service';
const LINE = 'INFO: task docker:7 blocked for more than 300 seconds.';

/** Same as the journal e2e test: a kernel-transport entry, which journald in a box cannot get from /dev/kmsg. */
const WRITE_KERNEL_LINE = `
  set -e
  mid=$(cat /etc/machine-id)
  {
    echo "__REALTIME_TIMESTAMP=$(date +%s%6N)"
    echo "__MONOTONIC_TIMESTAMP=$(awk '{ printf "%.0f", $1 * 1000000 }' /proc/uptime)"
    echo "_BOOT_ID=$(tr -d - </proc/sys/kernel/random/boot_id)"
    echo "_MACHINE_ID=$mid"
    echo "_HOSTNAME=$(hostname)"
    echo "_TRANSPORT=kernel"
    echo "SYSLOG_FACILITY=0"
    echo "SYSLOG_IDENTIFIER=kernel"
    echo "PRIORITY=3"
    echo "MESSAGE=$1"
    echo
  } | /lib/systemd/systemd-journal-remote --output="/var/log/journal/$mid/system@kernel-$(date +%s%N).journal" - 2>/dev/null
`;

interface Rec {
  t: number;
  kind: string;
  bootId?: string;
  reason?: string;
  message?: string;
  type?: string;
  status?: string;
}

/** Slot Leases (not the gap or breaker markers) this node holds, as the admin reads them. */
async function heldSlots(cluster: Cluster): Promise<string[]> {
  const r = await cluster.admin<{ items: Array<{ metadata: { name: string; labels?: Record<string, string> }; spec: { holderIdentity?: string } }> }>(
    'GET',
    '/apis/coordination.k8s.io/v1/namespaces/node-health/leases',
  );
  return r.body.items.filter((l) => l.metadata.labels?.['node-health-agent/kind'] === 'slot' && l.spec.holderIdentity === NODE).map((l) => l.metadata.name);
}

t.test('the ladder reboots a node in a box through logind and finishes after the boot', async (t) => {
  const addon = join(repo, 'dist/node_health_native.node');
  if (!existsSync(addon)) throw new Error(`${addon} is missing: run npm run build:native (npm test builds it)`);
  const work = mkdtempSync(join(tmpdir(), 'nha-ladder-box-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  buildSync({
    entryPoints: [join(__dirname, 'reboot-harness-agent.ts')],
    outfile: join(work, 'harness.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // The native addon is loaded from beside the bundle; dbus-next's X11 session lookup is never used.
    external: ['*.node', 'x11'],
    logLevel: 'error',
  });

  const cluster = await Cluster.up(t, [NODE]);
  await ensureDefaultServiceAccount(cluster);
  await cluster.applyManifest(join(repo, 'packaging/kubernetes/coordination.yaml'));
  writeFileSync(join(work, 'coordination.token'), await cluster.serviceAccountToken('node-health', 'node-health-coordinator'));
  await setReady(cluster, NODE, 'True');
  const ended = playKubelet(t, cluster, NODE);
  await createPod(cluster, NODE, 'web-0', { running: true });
  await createPod(cluster, NODE, 'fluentd-box', { daemonSet: 'fluentd', running: true });

  const box = await Box.up(t, 'ladder-reboot');
  const creds = join(work, 'creds.tar');
  execFileSync('tar', ['-C', cluster.nodeRoot(NODE), '-cf', creds, 'etc', 'var']);
  await box.copyIn(creds, '/tmp/');
  await box.check(['tar', '-C', '/', '-xf', '/tmp/creds.tar']);
  await box.check(['mkdir', '-p', LIB, CONFIG, STATE]);
  await box.copyIn(join(work, 'harness.js'), `${LIB}/harness.js`);
  await box.copyIn(addon, `${LIB}/node_health_native.node`);
  await box.copyIn(join(work, 'coordination.token'), `${CONFIG}/coordination.token`);
  await box.copyIn(join(repo, 'etc/10-journal-rules.ini'), `${CONFIG}/10-journal-rules.ini`);
  const ini = `[agent]
state_dir = ${STATE}
runtime_dir = /run/nha-ladder
[coordination]
enabled = true
token_file = ${CONFIG}/coordination.token
new_node_grace = 0s
[ladder]
enabled = true
drain_timeout = 30s
reboot_timeout = 2m
after_boot_timeout = 2m
`;
  await box.check(['sh', '-c', `umask 022; cat > ${CONFIG}/50-test.ini`], { input: ini });
  await box.check(['sh', '-c', `cat > ${CONFIG}/remediate.json`], { input: JSON.stringify({ KernelDeadlock: { after_ms: '3000', steps: 'cordon, drain, reboot' } }) });
  const unit = `[Unit]
Description=node-health-agent ladder test harness
After=dbus.service systemd-logind.service systemd-journald.service
[Service]
ExecStart=${process.execPath} ${LIB}/harness.js ${CONFIG} ${CONFIG}/remediate.json ${OUT}
[Install]
WantedBy=multi-user.target
`;
  await box.check(['sh', '-c', `cat > /etc/systemd/system/${UNIT}`], { input: unit });
  await box.check(['systemctl', 'daemon-reload']);
  await box.check(['systemctl', 'enable', '--now', UNIT]);

  // Read from the host through the overlay: it stays mounted while the box is down.
  const records = (): Rec[] => {
    const file = join(box.info.root, OUT);
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Rec) : [];
  };
  const ledger = () => LadderLedger.open(join(box.info.root, STATE));
  const started = await waitFor('the harness to start', async () => records().find((r) => r.kind === 'started'), 60_000, 200);
  const firstBoot = started.bootId as string;

  const written = Date.now();
  await box.check(['bash', '-c', WRITE_KERNEL_LINE, 'write-kernel-line', LINE]);
  await waitFor('KernelDeadlock True on the Node', async () => ((await cluster.condition(NODE, 'KernelDeadlock'))?.status === 'True' ? true : undefined), 30_000, 100);

  // The ladder runs and the box reboots.
  const how = await box.waitStopped(120_000);
  const downAt = Date.now();
  t.equal(how, 'reboot', 'systemd-nspawn ended with a reboot of the box');
  const before: RunEntry | undefined = ledger().unfinished();
  t.ok(before, `the run is open in ${LADDER_LEDGER_FILE} while the box is down`);
  t.same(before?.done.map((s) => [s.step, s.outcome?.result ?? 'open']), [['cordon', 'done'], ['drain', 'done'], ['reboot', 'open']], 'its reboot intent was on disk first');
  t.equal(before?.done[2]?.bootId, firstBoot);
  const cordoned = await nodeSpec(cluster, NODE);
  t.equal(cordoned.spec?.unschedulable, true, 'the node is cordoned through the reboot');
  t.match(cordoned.metadata.annotations?.[CORDONED_BY_AGENT], /^KernelDeadlock, run /);
  t.same(ended, ['web-0'], 'web-0 was evicted (and ended by the test as the kubelet would), the DaemonSet pod left');
  t.same(await heldSlots(cluster), ['node-health-repair-0'], 'the slot Lease is held through the reboot');

  // The machine comes back.
  const bootMs = await box.boot();
  const twice = await runBoxScript(['boot', box.name]);
  t.match({ code: twice.code, stderr: twice.stderr }, { code: 1, stderr: /is running; 'boot' starts a box whose systemd has stopped/ }, 'a running box is not booted twice');
  const again = await waitFor('the harness after the boot', async () => records().find((r) => r.kind === 'started' && r.bootId !== firstBoot), 60_000, 200);
  t.not(again.bootId, firstBoot, 'a new boot');
  // The kubelet of the new boot reports Ready.
  await setReady(cluster, NODE, 'True');
  const run = await waitFor('the run to end', async () => ledger().lastRun('KernelDeadlock')?.end ? ledger().lastRun('KernelDeadlock') : undefined, 120_000, 200);
  const doneAt = Date.now();
  t.equal(run.end?.result, 'repaired', run.end?.detail ?? '');
  t.same(run.done.map((s) => [s.step, s.outcome?.result]), [['cordon', 'done'], ['drain', 'done'], ['reboot', 'done'], ['verify', 'done'], ['uncordon', 'done'], ['release', 'done']]);
  t.match(run.done[2]?.outcome?.detail, new RegExp(`the node booted again \\(boot ${again.bootId}, was ${firstBoot}\\)`));
  t.notOk((await nodeSpec(cluster, NODE)).spec?.unschedulable, 'uncordoned');
  t.equal((await cluster.condition(NODE, 'KernelDeadlock'))?.status, 'False', 'the new boot cleared KernelDeadlock');
  t.same(await heldSlots(cluster), [], 'the slot was given back');
  t.same((await podsOn(cluster, NODE)).map((p) => p.metadata.name), ['fluentd-box']);
  const reasons = await waitFor('the ladder events on the Node', async () => {
    const r = (await cluster.events(NODE)).map((e) => e.reason);
    return r.includes('LadderRepaired') ? r : undefined;
  }, 30_000);
  for (const reason of ['LadderStarted', 'LadderCordoned', 'LadderDrained', 'LadderRebooting', 'LadderRebooted', 'LadderUncordoned', 'LadderRepaired']) {
    t.ok(reasons.includes(reason), `Event ${reason} on the Node`);
  }

  const step = (name: string) => run.done.find((s) => s.step === name)?.outcome?.durationMs;
  const rebootAsked = Date.parse(before?.done[2]?.at ?? '');
  t.comment(`timing: kernel line to reboot asked (after = 3s): ${rebootAsked - written} ms`);
  t.comment(`timing: cordon ${step('cordon')} ms, drain of 1 pod ${step('drain')} ms, uncordon ${step('uncordon')} ms, release ${step('release')} ms`);
  t.comment(`timing: reboot asked to box down: ${downAt - rebootAsked} ms; box boot: ${bootMs} ms; boot to repaired: ${doneAt - downAt - bootMs} ms`);
  t.comment(`timing: reboot step (intent to booted again, includes the test's boot): ${step('reboot')} ms; verify: ${step('verify')} ms`);
});
