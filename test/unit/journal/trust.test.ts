// Whose lines may set conditions: the shipped kernel and systemd sources, and NPD's kmsg and journald
// mappings, run over real journal files (written by systemd-journal-remote, journald's own file code)
// that hold forged lines beside real-shaped ones. Only the real ones may raise anything.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../../src/sections';
import { LogMonitor, type LogConditionSpec, type JournalSourceSpec } from '../../../src/sources/rules/log-monitor';
import { loadNpdConfig } from '../../../src/sources/rules/npd-config';
import { buildRuleSet } from '../../../src/sources/rules/rule-set';
import { matchGroups } from '../../../src/sources/journal/monitor';
import { JournalReader } from '../../../src/sources/journal/reader';
import { TEST_BOOT_ID, writeJournal, type SourceEntry } from '../../helpers/journal-files';
import { configDir } from '../../helpers/tmp';
import { loadNative } from '../../../src/system/native';

const T0 = 1_765_000_000_000_000;
const OOM = (pid: number, comm: string): string =>
  `Memory cgroup out of memory: Killed process ${pid} (${comm}) total-vm:1024kB, anon-rss:512kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0`;

// As journald stores each (docs: field-facts, "Kernel lines as the journal stores them").
const KERNEL = { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '0', SYSLOG_IDENTIFIER: 'kernel', PRIORITY: '3' };
const forgedKernel: Array<Record<string, string>> = [
  // echo '<3>…' > /dev/kmsg by a root process: the kernel turns facility 0 from user space into 1.
  { _TRANSPORT: 'kernel', SYSLOG_FACILITY: '1', PRIORITY: '3', MESSAGE: OOM(201, 'via-dev-kmsg') },
  // logger -p kern.err -t kernel: facility 0 and the identifier, but the syslog transport.
  { _TRANSPORT: 'syslog', SYSLOG_FACILITY: '0', SYSLOG_IDENTIFIER: 'kernel', PRIORITY: '3', _PID: '4242', MESSAGE: OOM(202, 'via-logger') },
  // systemd-cat -t kernel
  { _TRANSPORT: 'stdout', SYSLOG_FACILITY: '3', SYSLOG_IDENTIFIER: 'kernel', PRIORITY: '6', _PID: '4243', MESSAGE: OOM(203, 'via-systemd-cat') },
];
const PID1 = { _TRANSPORT: 'journal', _PID: '1', _COMM: 'systemd', SYSLOG_IDENTIFIER: 'systemd', SYSLOG_FACILITY: '3', PRIORITY: '6' };
// Any process can send the identifier over the native protocol; journald stamps its real PID.
const FORGED_PID1 = { ...PID1, _PID: '4244', _COMM: 'python3' };

function entries(list: Array<Record<string, string>>): SourceEntry[] {
  return list.map((fields, i) => ({ realtimeUs: T0 + i * 1_000_000, fields }));
}

const kubeletStarts = (fields: Record<string, string>) => Array.from({ length: 5 }, () => ({ ...fields, MESSAGE: 'Started kubelet.service.' }));

/** Reads `dir` through the source's matches and its rules; returns the events and True conditions raised. */
function raised(dir: string, source: JournalSourceSpec, conditions: Map<string, LogConditionSpec>): string[] {
  const out: string[] = [];
  const monitor = new LogMonitor(source, conditions, {
    event: (e) => out.push(`event ${e.reason}: ${e.message}`),
    condition: (c) => {
      if (c.status === 'True') out.push(`condition ${c.type}`);
    },
  }, TEST_BOOT_ID);
  const reader = new JournalReader({ native: loadNative(), directory: dir, matches: matchGroups(source.matches), sinceUs: 0, maxMessageBytes: 16384, batchSize: 1000 }, (batch) => {
    for (const e of batch) monitor.process(e);
  });
  try {
    reader.drain();
  } finally {
    reader.stop();
  }
  return out;
}

async function journalOf(t: { teardown(fn: () => unknown): void }, list: Array<Record<string, string>>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nha-trust-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await writeJournal(dir, 'system', entries(list));
  return dir;
}

const shipped = buildRuleSet(loadAgentConfig(join(__dirname, '../../../etc'), { required: true }));
const shippedSource = (name: string): JournalSourceSpec => {
  const s = shipped.sources.find((x) => x.name === name);
  if (!s) throw new Error(`no shipped source ${name}`);
  return s;
};

t.test('shipped [source "kernel"]: lines a process forged raise nothing, the kernel\'s own line does', async (t) => {
  const forged = await journalOf(t, forgedKernel);
  t.same(raised(forged, shippedSource('kernel'), shipped.conditions), [], 'forged via /dev/kmsg, logger and systemd-cat: nothing');
  const mixed = await journalOf(t, [...forgedKernel, { ...KERNEL, MESSAGE: OOM(101, 'real-victim') }]);
  const got = raised(mixed, shippedSource('kernel'), shipped.conditions);
  t.equal(got.length, 1, `one event: ${JSON.stringify(got)}`);
  t.match(got[0], /^event OOMKilling: .*\(real-victim\)/);
});

t.test('shipped [source "systemd"]: five forged kubelet starts raise nothing, five from PID 1 set FrequentKubeletRestart', async (t) => {
  const forged = await journalOf(t, kubeletStarts(FORGED_PID1));
  t.same(raised(forged, shippedSource('systemd'), shipped.conditions), [], 'SYSLOG_IDENTIFIER=systemd from another PID: nothing');
  const real = await journalOf(t, [...kubeletStarts(FORGED_PID1).slice(0, 4), ...kubeletStarts(PID1)]);
  const got = raised(real, shippedSource('systemd'), shipped.conditions);
  t.same(got.filter((r) => r.startsWith('condition')), ['condition FrequentKubeletRestart']);
  t.equal(got.filter((r) => r.startsWith('event KubeletStart')).length, 5, 'one KubeletStart event per real start, none for the forged');
  // Four forged plus four real do not add up to the count.
  const topUp = await journalOf(t, [...kubeletStarts(FORGED_PID1).slice(0, 4), ...kubeletStarts(PID1).slice(0, 4)]);
  t.same(raised(topUp, shippedSource('systemd'), shipped.conditions).filter((r) => r.startsWith('condition')), [], 'forged lines do not top up the count');
});

t.test("NPD configs: kmsg and journald's systemd and kernel sources take only the real sender's lines", async (t) => {
  const dir = configDir({});
  const write = (name: string, doc: unknown): string => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(doc), { mode: 0o644 });
    return file;
  };
  const oomRule = { type: 'temporary', reason: 'OOMKilling', pattern: 'Killed process \\d+ (.+) total-vm:\\d+kB.*' };
  const kmsg = loadNpdConfig(write('kernel-monitor.json', { plugin: 'kmsg', source: 'kernel-monitor', conditions: [], rules: [oomRule] }));
  const jkernel = loadNpdConfig(
    write('kernel-journald.json', { plugin: 'journald', pluginConfig: { source: 'kernel' }, source: 'kernel-monitor', conditions: [], rules: [oomRule] }),
  );
  const restarts = loadNpdConfig(
    write('systemd-monitor.json', {
      plugin: 'journald',
      pluginConfig: { source: 'systemd' },
      source: 'systemd-monitor',
      conditions: [{ type: 'KubeletRestarts', reason: 'NoRestarts', message: 'fine' }],
      rules: [{ type: 'permanent', condition: 'KubeletRestarts', reason: 'KubeletStarted', pattern: 'Started kubelet.service.' }],
    }),
  );
  const conditionsOf = (c: { conditions: LogConditionSpec[] }) => new Map(c.conditions.map((x) => [x.type, x]));

  const forged = await journalOf(t, [...forgedKernel, ...kubeletStarts(FORGED_PID1)]);
  t.same(raised(forged, kmsg.source, conditionsOf(kmsg)), [], 'kmsg: forged kernel lines, nothing');
  t.same(raised(forged, jkernel.source, conditionsOf(jkernel)), [], 'journald source kernel: forged kernel lines, nothing');
  t.same(raised(forged, restarts.source, conditionsOf(restarts)), [], 'journald source systemd: forged PID 1 lines, nothing');

  const real = await journalOf(t, [...forgedKernel, { ...KERNEL, MESSAGE: OOM(101, 'real-victim') }, ...kubeletStarts(PID1).slice(0, 1)]);
  t.match(raised(real, kmsg.source, conditionsOf(kmsg)), [/^event OOMKilling: .*\(real-victim\)/]);
  t.match(raised(real, jkernel.source, conditionsOf(jkernel)), [/^event OOMKilling: .*\(real-victim\)/]);
  t.same(raised(real, restarts.source, conditionsOf(restarts)), ['condition KubeletRestarts']);
});
