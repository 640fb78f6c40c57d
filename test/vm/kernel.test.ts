// The installed .deb on a real kernel (a Debian 12 VM, scripts/vm): the shipped unit under cgroup v2
// with its memory limits in force, and detection from the kernel's own lines — a real memory-cgroup OOM
// kill, real hung tasks (a hung journal thread, then after a reboot a hung containerd thread, set
// KernelDeadlock) — while a line a user-space process writes to /dev/kmsg is not the kernel's.
// One VM serves every subtest; they run in order and each waits for its own evidence.
import { basename } from 'node:path';
import t from 'tap';
import { waitFor } from '../helpers/cluster';
import { ensurePackages } from '../helpers/packages';
import { bootId, hangFilesystem, nextBoot, Vm } from '../helpers/vm';
import type { AgentStatus } from '../../src/types';

const AGENT_UNIT = 'node-health-agent.service';
/** Kernel line → event on the agent under TCG, which runs code 5–20× slower than the host. */
const DETECT_TIMEOUT_MS = 120_000;
/** The agent's event aggregation window ([journal] event_window, 1m by default). */
const AGGREGATION_WINDOW_MS = 60_000;
/** How many hung-task reports the kernel prints before it goes quiet (kernel.hung_task_warnings). */
const HUNG_TASK_WARNINGS = 10;
/** Where containerd's content store writes what it ingests, before the rename into blobs/ (content/local). */
const CONTAINERD_INGEST = '/var/lib/containerd/io.containerd.content.v1.content/ingest';
/** A reboot under TCG until the agent answers again. */
const REBOOT_TIMEOUT_MS = 300_000;


// Longer than the runner's default: a cold image build, a boot and a package install under TCG on a loaded 2-core machine.
t.setTimeout(40 * 60_000);

t.test('the .deb on a real kernel', async (t) => {
  const { deb } = ensurePackages();
  const vm = await Vm.up(t, 'vm-kernel');
  t.comment(`qemu start → systemd running: ${vm.info.bootMs} ms`);
  await vm.copyIn(deb, '/var/tmp/');
  const installed = Date.now();
  await vm.check(['dpkg', '-i', `/var/tmp/${basename(deb)}`], { timeoutMs: 600_000 });
  t.comment(`dpkg -i (the package starts the agent): ${Date.now() - installed} ms`);

  const status = async (): Promise<AgentStatus> => JSON.parse(await vm.check(['node-health-agent', 'status', '--json'])) as AgentStatus;
  const events = async (reason: string): Promise<AgentStatus['recentEvents']> => (await status()).recentEvents.filter((e) => e.reason === reason);
  /**
   * How many kernel lines the events stand for: the agent sends the first event of a reason at once and
   * the repeats within its window (1 min) as one event with their count (src/sources/rules/event-aggregator.ts).
   */
  const counted = (list: AgentStatus['recentEvents']): number => list.reduce((n, e) => n + (e.count ?? 1), 0);
  /** The kernel's own lines of this boot (facility 0, read from /dev/kmsg by journald; the journal is persistent) matching `grep`. */
  const kernelLines = async (grep: string): Promise<string[]> =>
    (await vm.check(['journalctl', '--no-pager', '-b', '-o', 'cat', '_TRANSPORT=kernel', 'SYSLOG_FACILITY=0', '--grep', grep], { timeoutMs: 60_000 }).catch(() => ''))
      .split('\n')
      .filter((l) => l !== '');
  /** Runs `tail /dev/zero` (it keeps a growing line in memory) in a scope capped at 32 MB: the kernel kills it. */
  const oomKill = async (): Promise<void> => {
    const res = await vm.exec(['systemd-run', '--scope', '--quiet', '-p', 'MemoryMax=32M', '-p', 'MemorySwapMax=0', 'tail', '/dev/zero'], { timeoutMs: 300_000 });
    if (res.code !== 137) throw new Error(`the capped tail was not OOM-killed: exit ${res.code}: ${res.stderr}`);
  };

  t.test('the shipped unit runs under cgroup v2 with its memory limits in force', async (t) => {
    t.equal((await vm.check(['stat', '-f', '-c', '%T', '/sys/fs/cgroup'])).trim(), 'cgroup2fs');
    await waitFor('the agent active', async () => (await vm.exec(['systemctl', 'is-active', AGENT_UNIT])).stdout.trim() === 'active' || undefined, 300_000, 1000);
    const s = await waitFor('status --json', async () => {
      const r = await vm.exec(['node-health-agent', 'status', '--json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as AgentStatus) : undefined;
    }, 120_000, 1000);
    t.ok(Array.isArray(s.conditions), 'status --json answers with the conditions');
    const cg = `/sys/fs/cgroup/system.slice/${AGENT_UNIT}`;
    const limits = await vm.sh(`cat ${cg}/memory.high ${cg}/memory.max`);
    t.same(limits.trim().split('\n'), [String(192 << 20), String(256 << 20)], 'memory.high = 192M and memory.max = 256M as the unit says');
  });

  t.test('a real OOM kill is one OOMKilling event however many lines the kernel prints', async (t) => {
    const before = (await events('OOMKilling')).length;
    const killsBefore = (await kernelLines('Killed process')).length;
    await oomKill();
    await oomKill();
    const killed = (await kernelLines('Killed process')).slice(killsBefore);
    t.equal(killed.length, 2, 'the kernel reports two kills');
    const invoked = await kernelLines('invoked oom-killer');
    const constraint = await kernelLines('oom-kill:constraint=CONSTRAINT_MEMCG');
    t.ok(invoked.length >= 2 && constraint.length >= 2, 'and prints more than one line for each');
    const seen = await waitFor('OOMKilling events for both kills', async () => {
      const e = (await events('OOMKilling')).slice(before);
      return counted(e) >= 2 ? e : undefined;
    }, DETECT_TIMEOUT_MS, 1000);
    // One aggregation window later: an event per kernel line would have come by now.
    await new Promise((r) => setTimeout(r, AGGREGATION_WINDOW_MS + 5_000));
    const after = (await events('OOMKilling')).slice(before);
    t.equal(counted(after), 2, `two kills, two OOMKilling (events: ${after.map((e) => e.message).join(' | ')})`);
    const first = /Killed process (\d+) \(tail\)/.exec(killed[0] ?? '')?.[1];
    t.ok(first && seen[0]?.message.includes(`Killed process ${first} (tail)`), `the first event names the first kill (pid ${first})`);
  });

  t.test('a line a process writes to /dev/kmsg is not the kernel\'s', async (t) => {
    const forged = 'INFO: task kubelet:1 blocked for more than 120 seconds.';
    await vm.sh(`echo '<3>${forged}' > /dev/kmsg`);
    // journald reads a user-space record as syslog: "INFO:" becomes SYSLOG_IDENTIFIER, the rest MESSAGE.
    const stored = await waitFor('journald to store the forged line', async () => {
      const out = await vm.check(['journalctl', '--no-pager', '-o', 'export', '_TRANSPORT=kernel', '--grep', 'task kubelet:1 blocked']);
      return out.trim() !== '' ? out : undefined;
    }, 60_000, 500);
    t.match(stored, /^SYSLOG_FACILITY=1$/m, 'journald keeps it as facility 1 (user), not 0');
    // A real kernel line after it: once the agent has raised that, it has read the forged one too.
    const before = (await events('OOMKilling')).length;
    await oomKill();
    await waitFor('the OOMKilling event after the forged line', async () => (await events('OOMKilling')).length > before || undefined, DETECT_TIMEOUT_MS, 1000);
    const s = await status();
    t.same(s.recentEvents.filter((e) => e.message.includes('kubelet:1')), [], 'no event from the forged line');
    const deadlock = s.conditions.find((c) => c.type === 'KernelDeadlock');
    t.not(deadlock?.status, 'True', `KernelDeadlock not raised (${deadlock?.reason ?? 'absent'})`);
  });

  t.test('real hung tasks on a suspended device-mapper target are TaskHung events, a hung jbd2 KernelDeadlock', async (t) => {
    const before = (await events('TaskHung')).length;
    // An ext4 with dirty data on a suspended target: `sync` waits in D state, and so does the
    // filesystem's journal thread; the kernel reports both after the timeout.
    await vm.check(['sysctl', '-q', '-w', 'kernel.hung_task_timeout_secs=5', `kernel.hung_task_warnings=${HUNG_TASK_WARNINGS}`]);
    await hangFilesystem(t, vm, { mountpoint: '/mnt/hung', journal: true, dirtyMiB: 8 });
    await vm.check(['systemd-run', '--quiet', '--unit=nha-hung-sync', 'sync']);
    // The kernel reports sync, and the journal thread of the filesystem (jbd2/dm-N-8) once it commits,
    // every 5 s, 10 reports at most (kernel.hung_task_warnings).
    const hung = await waitFor('the kernel\'s hung-task lines for sync and jbd2', async () => {
      const lines = await kernelLines('blocked for more than');
      const tasks = new Set(lines.map((l) => /task (\S+?):\d+ blocked/.exec(l)?.[1] ?? ''));
      return tasks.has('sync') && [...tasks].some((n) => n.startsWith('jbd2/')) ? lines : undefined;
    }, DETECT_TIMEOUT_MS, 2000);
    t.comment(`the kernel's first hung-task lines: ${hung.join(' | ')}`);
    // A hung journal thread is also KernelDeadlock (rule FilesystemJournalHung): every writer of that
    // filesystem waits behind it. A hung sync is not: it is one of those writers.
    const deadlock = await waitFor('KernelDeadlock True from the hung journal thread', async () => {
      const c = (await status()).conditions.find((x) => x.type === 'KernelDeadlock');
      return c?.status === 'True' ? c : undefined;
    }, DETECT_TIMEOUT_MS, 2000);
    t.equal(deadlock.reason, 'FilesystemJournalHung');
    t.match(deadlock.message, /task jbd2\/dm-\d+-8:\d+ blocked for more than \d+ seconds\./, "carrying the kernel's line for jbd2");
    // Every report is also one TaskHung, the journal thread's too. Once the kernel has stopped reporting
    // and the last window closed, the events stand for exactly the kernel's lines.
    const settled = await waitFor('TaskHung events for every hung-task line', async () => {
      const lines = await kernelLines('blocked for more than');
      const e = (await events('TaskHung')).slice(before);
      return lines.length >= HUNG_TASK_WARNINGS && counted(e) === lines.length ? e : undefined;
    }, HUNG_TASK_WARNINGS * 5_000 + AGGREGATION_WINDOW_MS + DETECT_TIMEOUT_MS, 2000);
    t.ok(settled.every((e) => /task \S+:\d+ blocked for more than \d+ seconds\.$/.test(e.message)), 'every TaskHung names a hung task');
    t.ok(settled.some((e) => /task (sync|jbd2\/\S+):\d+ blocked/.test(e.message)), 'sync or jbd2 is named');
  });

  t.test('a reboot clears KernelDeadlock; a real containerd thread hung in D state sets it again as ContainerdHung', async (t) => {
    // The first True report of a condition keeps its reason, and only a reboot clears KernelDeadlock
    // (clear_on_reboot): the hung journal thread's must go before containerd's can show.
    const before = await bootId(vm);
    await vm.check(['systemd-run', '--quiet', '--on-active=1', 'systemctl', 'reboot']);
    const rebootAt = Date.now();
    await nextBoot(vm, before, REBOOT_TIMEOUT_MS);
    const fresh = await waitFor('the agent answering in the new boot', async () => {
      const r = await vm.exec(['node-health-agent', 'status', '--json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as AgentStatus) : undefined;
    }, REBOOT_TIMEOUT_MS, 2000);
    t.comment(`reboot → the agent answering: ${Date.now() - rebootAt} ms`);
    t.match(fresh.conditions.find((c) => c.type === 'KernelDeadlock'), { status: 'False', reason: 'KernelHasNoDeadlock' }, 'the new boot cleared KernelDeadlock');

    // containerd's content store writes an ingest's start time with O_SYNC before any of its data
    // (content/local): with the ingest directory on the suspended target, the thread serving the
    // ingest waits for the device in D state. No journal, so nothing else of that filesystem hangs.
    const containerd = (await vm.check(['systemctl', 'show', '--property=MainPID', '--value', 'containerd.service'])).trim();
    await vm.check(['bash', '-c', 'head -c 1M /dev/urandom > /var/tmp/blob']);
    const digest = (await vm.check(['sha256sum', '/var/tmp/blob'])).split(' ')[0] ?? '';
    await vm.check(['sysctl', '-q', '-w', 'kernel.hung_task_timeout_secs=5', `kernel.hung_task_warnings=${HUNG_TASK_WARNINGS}`]);
    const resume = await hangFilesystem(t, vm, { mountpoint: CONTAINERD_INGEST, journal: false });
    await vm.check(['systemd-run', '--quiet', '--unit=nha-ingest', 'bash', '-c', 'ctr content ingest nha-hung < /var/tmp/blob']);
    const hungAt = Date.now();
    const line = await waitFor('the kernel\'s hung-task line for containerd', async () => (await kernelLines('task containerd:')).at(0), DETECT_TIMEOUT_MS, 2000);
    const thread = /task containerd:(\d+) blocked for more than \d+ seconds\./.exec(line)?.[1] ?? '';
    t.equal((await vm.exec(['test', '-d', `/proc/${containerd}/task/${thread}`])).code, 0, `${line}: thread ${thread} of containerd's main process ${containerd}, the real runtime`);
    t.match(await vm.check(['cat', `/proc/${containerd}/task/${thread}/stat`]), /^\d+ \(containerd\) D /, 'in D state');

    const deadlock = await waitFor('KernelDeadlock True from the hung containerd thread', async () => {
      const c = (await status()).conditions.find((x) => x.type === 'KernelDeadlock');
      return c?.status === 'True' ? c : undefined;
    }, DETECT_TIMEOUT_MS, 2000);
    t.comment(`ingest started → KernelDeadlock True: ${Date.now() - hungAt} ms`);
    t.equal(deadlock.reason, 'ContainerdHung', 'reason ContainerdHung (rule ContainerdHung)');
    t.match(deadlock.message, new RegExp(`task containerd:${thread} blocked for more than \\d+ seconds\\.`), "carrying the kernel's line for containerd's thread");
    const named = await waitFor('a TaskHung event naming containerd', async () => (await events('TaskHung')).find((e) => e.message.includes(`task containerd:${thread} blocked`)), DETECT_TIMEOUT_MS, 2000);
    t.equal(named.message, line.replace(/^INFO: /, ''), 'a TaskHung event too, carrying the same line');

    // The device back: the thread's write completes and containerd goes on under the same PID. The
    // hung ingest itself then fails at its rename into blobs/, which the test's mount made cross-device.
    await resume();
    await waitFor('the hung ingest to end', async () => ((await vm.exec(['systemctl', 'is-active', 'nha-ingest'])).stdout.trim() === 'active' ? undefined : true), 60_000, 1000);
    const after = (await vm.check(['systemctl', 'show', '--property=MainPID', '--value', 'containerd.service'])).trim();
    t.equal(after, containerd, 'containerd runs on under the same PID');
    await vm.check(['bash', '-c', 'ctr content ingest nha-hung < /var/tmp/blob']);
    t.match(await vm.check(['ctr', 'content', 'ls', '-q']), new RegExp(`^sha256:${digest}$`, 'm'), 'an ingest of the same blob then commits');
    t.equal((await status()).conditions.find((c) => c.type === 'KernelDeadlock')?.status, 'True', 'KernelDeadlock stays True: only a reboot clears it');
  });
});
