// The journal reader on real journal files written by systemd-journal-remote: fields, matches, start
// points, batching, odd messages, corrupt files, event-driven wake-ups and clean shutdown.
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { JournalReader, type JournalEntry, type JournalReaderOptions } from '../../../src/sources/journal/reader';
import { TEST_BOOT_ID, writeJournal, type SourceEntry } from '../../helpers/journal-files';
import { loadNative } from '../../../src/system/native';

const T0 = 1_760_000_000_000_000;

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `n` kernel entries "line <from+i>", 1 ms apart. */
function lines(n: number, from = 0, fields: Record<string, string> = { _TRANSPORT: 'kernel', SYSLOG_IDENTIFIER: 'kernel' }): SourceEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    realtimeUs: T0 + (from + i) * 1000,
    fields: { ...fields, MESSAGE: `line ${from + i}` },
  }));
}

interface Collected {
  entries: JournalEntry[];
  batches: number[];
  cursors: string[];
  warnings: string[];
}

function reader(opts: Partial<JournalReaderOptions>, onEach?: () => void): { r: JournalReader; got: Collected } {
  const got: Collected = { entries: [], batches: [], cursors: [], warnings: [] };
  const r = new JournalReader(
    { native: loadNative(), matches: [], maxMessageBytes: 16384, batchSize: 1000, sinceUs: 0, onWarning: (m) => got.warnings.push(m), ...opts },
    (entries, cursor) => {
      got.entries.push(...entries);
      got.batches.push(entries.length);
      got.cursors.push(cursor);
      onEach?.();
    },
  );
  return { r, got };
}

const messages = (got: Collected): string[] => got.entries.map((e) => e.message);

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('entries carry the six fields; absent ones are empty', async (t) => {
  const dir = tempDir(t);
  const files = await writeJournal(dir, 'f', [
    { realtimeUs: T0, fields: { MESSAGE: 'kubelet says hi', SYSLOG_IDENTIFIER: 'kubelet', _SYSTEMD_UNIT: 'kubelet.service', _TRANSPORT: 'stdout' } },
    { realtimeUs: T0 + 1, bootId: '00112233445566778899aabbccddeeff', fields: { PRIORITY: '3' } },
  ]);
  const { r, got } = reader({ files });
  t.equal(r.drain(), 2);
  t.same(got.entries, [
    { message: 'kubelet says hi', identifier: 'kubelet', unit: 'kubelet.service', transport: 'stdout', realtimeUs: T0, bootId: TEST_BOOT_ID },
    { message: '', identifier: '', unit: '', transport: '', realtimeUs: T0 + 1, bootId: '00112233445566778899aabbccddeeff' },
  ]);
  t.equal(r.state().entriesRead, 2);
  t.equal(r.state().lastEntryUs, T0 + 1);
  t.equal(r.state().lagMs, 0, 'caught up');
  r.stop();
});

t.test('matches: OR of groups, AND within a group, empty means everything', async (t) => {
  const dir = tempDir(t);
  const files = await writeJournal(dir, 'f', [
    ...lines(2, 0),
    ...lines(2, 10, { _TRANSPORT: 'stdout', SYSLOG_IDENTIFIER: 'kubelet', _SYSTEMD_UNIT: 'kubelet.service' }),
    ...lines(2, 20, { _TRANSPORT: 'stdout', SYSLOG_IDENTIFIER: 'containerd', _SYSTEMD_UNIT: 'containerd.service' }),
    ...lines(1, 30, { _TRANSPORT: 'syslog', SYSLOG_IDENTIFIER: 'kubelet' }),
  ]);
  const read = (matches: Array<Record<string, string>>): string[] => {
    const { r, got } = reader({ files, matches });
    r.drain();
    r.stop();
    return messages(got);
  };
  t.same(read([{ _TRANSPORT: 'kernel' }, { SYSLOG_IDENTIFIER: 'kubelet' }]), ['line 0', 'line 1', 'line 10', 'line 11', 'line 30']);
  t.same(read([{ SYSLOG_IDENTIFIER: 'kubelet', _TRANSPORT: 'stdout' }]), ['line 10', 'line 11']);
  t.same(read([{ _SYSTEMD_UNIT: 'containerd.service' }]), ['line 20', 'line 21']);
  t.equal(read([]).length, 7);
  t.equal(read([{ _TRANSPORT: 'kernel' }, {}]).length, 7, 'an empty group matches everything');
  t.same(read([{ SYSLOG_IDENTIFIER: 'nobody' }]), []);
});

t.test('bad options and unreadable journals are AgentErrors naming the thing', async (t) => {
  const bad = (opts: Partial<JournalReaderOptions>, message: RegExp): void => {
    t.throws(() => reader(opts), { name: 'AgentError', code: 'CONFIG_INVALID', message }, String(message));
  };
  bad({ matches: [{ 'syslog-identifier': 'kubelet' }] }, /journal match field "syslog-identifier" is invalid/);
  bad({ matches: [{ MESSAGE: 3 as unknown as string }] }, /journal match MESSAGE must have a string value/);
  bad({ batchSize: 0 }, /batchSize/);
  bad({ maxMessageBytes: 1.5 }, /maxMessageBytes/);
  bad({ directory: '/x', files: ['/y'] }, /directory or files, not both/);
  bad({ files: [] }, /files must be a non-empty list/);

  const missing = join(tmpdir(), `nha-no-such-dir-${process.pid}`);
  const { r } = reader({ directory: missing });
  t.throws(() => r.start(), { name: 'AgentError', message: new RegExp(`^cannot open journal directory ${missing}: .*No such file or directory$`) });
  r.stop();
  const { r: r2 } = reader({ files: [`${missing}/x.journal`] });
  t.throws(() => r2.drain(), { name: 'AgentError', message: new RegExp(`${missing}/x\\.journal`) });
  r2.stop();
});

t.test('start points', async (t) => {
  const dir = tempDir(t);
  const files = await writeJournal(dir, 'f', lines(10));

  t.test('the tail by default: old entries are not read', async (t) => {
    const { r, got } = reader({ files, sinceUs: undefined });
    t.equal(r.drain(), 0);
    r.stop();
    t.same(got.entries, []);
  });

  t.test('sinceUs: from the first entry at or after it', async (t) => {
    const { r, got } = reader({ files, sinceUs: T0 + 6500 });
    r.drain();
    r.stop();
    t.same(messages(got), ['line 7', 'line 8', 'line 9']);
  });

  t.test('a cursor: after its entry, whatever sinceUs says', async (t) => {
    const first = reader({ files, batchSize: 4 });
    first.r.drain();
    first.r.stop();
    const cursor = first.got.cursors[0]!;
    t.equal(first.got.entries[3]!.message, 'line 3');
    const { r, got } = reader({ files, cursor, sinceUs: T0 + 8000 });
    r.drain();
    r.stop();
    t.same(messages(got), ['line 4', 'line 5', 'line 6', 'line 7', 'line 8', 'line 9']);
  });

  t.test('a cursor whose entry is gone: from the first entry after where it was', async (t) => {
    // The cursor of "line 4" in a journal that lost it (vacuumed): the same entries without line 4.
    const all = reader({ files, batchSize: 5 });
    all.r.drain();
    all.r.stop();
    const dir2 = tempDir(t);
    const others = await writeJournal(dir2, 'g', lines(10).filter((_, i) => i !== 4));
    const { r, got } = reader({ files: others, cursor: all.got.cursors[0]! });
    r.drain();
    r.stop();
    t.same(messages(got), ['line 5', 'line 6', 'line 7', 'line 8', 'line 9']);
  });

  t.test('an unparsable cursor: falls back to sinceUs and says so', async (t) => {
    const { r, got } = reader({ files, cursor: 'not a cursor', sinceUs: T0 + 9000 });
    r.drain();
    r.stop();
    t.same(messages(got), ['line 9']);
    t.match(got.warnings, [/journal cursor "not a cursor" is not valid; starting at the start point/]);
  });
});

t.test('batches of batchSize, each with the cursor of its last entry', async (t) => {
  const dir = tempDir(t);
  const files = await writeJournal(dir, 'f', lines(1050));
  const { r, got } = reader({ files, batchSize: 100 });
  t.equal(r.drain(), 1050);
  r.stop();
  t.same(got.batches, [...Array(10).fill(100), 50]);
  t.same(messages(got), lines(1050).map((e) => e.fields.MESSAGE));
  t.equal(new Set(got.cursors).size, 11, 'a new cursor per batch');
  // Each batch's cursor resumes right after that batch.
  const { r: again, got: rest } = reader({ files, cursor: got.cursors[9]! });
  again.drain();
  again.stop();
  t.same(messages(rest), lines(50, 1000).map((e) => e.fields.MESSAGE));
});

t.test('odd messages: invalid UTF-8, NUL bytes, multi-line', async (t) => {
  const dir = tempDir(t);
  const files = await writeJournal(dir, 'f', [
    { realtimeUs: T0, fields: { MESSAGE: Buffer.from([0x6f, 0x6b, 0xff, 0xfe, 0x20, 0xc3, 0x28, 0x21]) } },
    { realtimeUs: T0 + 1, fields: { MESSAGE: Buffer.from('a\0b', 'latin1') } },
    { realtimeUs: T0 + 2, fields: { MESSAGE: 'first\nsecond' } },
    { realtimeUs: T0 + 3, fields: { MESSAGE: 'grüße ✓' } },
  ]);
  const { r, got } = reader({ files });
  r.drain();
  r.stop();
  t.same(messages(got), ['ok\uFFFD\uFFFD \uFFFD(!', 'a\0b', 'first\nsecond', 'grüße ✓']);
});

t.test('long messages are cut at maxMessageBytes on a character boundary and marked', async (t) => {
  const big = 'x'.repeat(99) + '€'.repeat(400_000); // 1.2 MB; "€" is 3 bytes
  const entries: SourceEntry[] = [
    { realtimeUs: T0, fields: { MESSAGE: big } },
    { realtimeUs: T0 + 1, fields: { MESSAGE: 'y'.repeat(100) } },
    { realtimeUs: T0 + 2, fields: { MESSAGE: 'z'.repeat(101) } },
    // Over 512 bytes, so stored compressed when compressing, and exactly one byte over a 600-byte limit.
    { realtimeUs: T0 + 3, fields: { MESSAGE: 'w'.repeat(601) } },
  ];
  for (const compress of [false, true]) {
    const dir = tempDir(t);
    const files = await writeJournal(dir, 'f', entries, { compress });
    const { r, got } = reader({ files, maxMessageBytes: 100 });
    r.drain();
    r.stop();
    const [m0, m1, m2, m3] = messages(got);
    // 99 x + one whole "€" would be 102 bytes: the cut backs up to 99.
    t.equal(m0, `${'x'.repeat(99)}…[truncated ${Buffer.byteLength(big) - 99} bytes]`, `compress=${compress}`);
    t.equal(m1, 'y'.repeat(100), 'exactly the limit is kept whole');
    t.equal(m2, `${'z'.repeat(100)}…[truncated 1 bytes]`, 'one byte over');
    t.equal(m3, `${'w'.repeat(100)}…[truncated 501 bytes]`);
    const at600 = reader({ files, maxMessageBytes: 600 });
    at600.r.drain();
    at600.r.stop();
    t.equal(messages(at600.got)[3], `${'w'.repeat(600)}…[truncated 1 bytes]`, 'one byte over, stored compressed or not');
  }
});

t.test('corrupt files are skipped, counted and reported once', async (t) => {
  const dir = tempDir(t);
  const [good] = await writeJournal(dir, 'good', lines(20));
  writeFileSync(join(dir, 'garbage.journal'), Buffer.alloc(100_000, 0x5a));
  // A valid header cut short: sd-journal refuses it as truncated.
  writeFileSync(join(dir, 'cut.journal'), readFileSync(good!).subarray(0, 3000));
  // Not just written: a file that fails while it is new may still be being created, and is looked at again.
  const old = new Date(Date.now() - 60_000);
  for (const name of ['garbage.journal', 'cut.journal']) utimesSync(join(dir, name), old, old);

  t.test('in a directory', async (t) => {
    const { r, got } = reader({ directory: dir });
    t.equal(r.drain(), 20);
    r.stop();
    t.equal(r.state().corruptFilesSkipped, 2);
    t.equal(got.warnings.length, 2);
    t.match(got.warnings.join('\n'), /journal file .*garbage\.journal cannot be read \(EBADMSG\); skipped/);
    t.match(got.warnings.join('\n'), /journal file .*cut\.journal cannot be read \(ENODATA\); skipped/);
  });

  t.test('as explicit files', async (t) => {
    const files = readdirSync(dir).map((n) => join(dir, n));
    const { r, got } = reader({ files });
    t.equal(r.drain(), 20);
    r.stop();
    t.equal(r.state().corruptFilesSkipped, 2);
    t.match(r.state().lastError, /cannot be read .*; skipped/);
    t.same(messages(got), lines(20).map((e) => e.fields.MESSAGE));
  });

  t.test('only corrupt files: an error naming them', async (t) => {
    const { r } = reader({ files: [join(dir, 'garbage.journal')] });
    t.throws(() => r.drain(), /none of the journal files can be read: .*garbage\.journal/);
    r.stop();
  });

  t.test('damage inside a file: the readable entries still come', async (t) => {
    const dir2 = tempDir(t);
    const [file] = await writeJournal(dir2, 'f', lines(20_000));
    const fd = openSync(file!, 'r+');
    // Past the hash tables, among the entries: 4 KB of noise.
    writeSync(fd, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) & 0xff)), 0, 4096, 5_000_000);
    closeSync(fd);
    const { r } = reader({ files: [file!] });
    const n = r.drain();
    r.stop();
    t.ok(n > 19_900 && n <= 20_000, `read ${n} of 20000 entries around the damage`);
  });
});

t.test('event-driven: entries written later arrive through inotify, in batches that yield', async (t) => {
  const dir = tempDir(t);
  await writeJournal(dir, 'live', lines(5));
  let ticks = 0;
  const ticksAt: number[] = [];
  const { r, got } = reader({ directory: dir, sinceUs: undefined, batchSize: 500 }, () => ticksAt.push(ticks));
  r.start();
  t.teardown(() => r.stop());
  t.equal(r.state().waitMode, 'inotify');
  t.equal(r.state().alive, true);
  await new Promise((res) => setTimeout(res, 100));
  t.same(got.entries, [], 'started at the tail');

  await writeJournal(dir, 'live', lines(3, 5));
  await until('3 appended entries', () => got.entries.length === 3);
  t.same(messages(got), ['line 5', 'line 6', 'line 7']);

  // A file with a backlog of 5000 moved into the directory (as a rotation does): read in batches of
  // 500, and the event loop runs between them.
  const aside = tempDir(t);
  const [backlog] = await writeJournal(aside, 'second', lines(5000, 100));
  // A tick per event-loop turn: each batch must come in a turn of its own.
  let ticking = true;
  const tick = (): void => {
    ticks++;
    if (ticking) setImmediate(tick);
  };
  tick();
  t.teardown(() => (ticking = false));
  const batchesBefore = got.batches.length;
  ticksAt.length = 0;
  renameSync(backlog!, join(dir, 'second.journal'));
  await until('5000 entries from a new file', () => got.entries.length === 5003, 10_000);
  ticking = false;
  t.same(got.batches.slice(batchesBefore), Array(10).fill(500));
  t.equal(new Set(ticksAt).size, 10, `one batch per event-loop turn (turn of each batch: ${ticksAt.join(',')})`);
  t.equal(r.state().waitMode, 'inotify');
  t.equal(r.state().lastError, null);

  // A corrupt file appearing beside them: skipped, counted and reported once; reading goes on.
  const garbage = join(aside, 'bad.journal');
  writeFileSync(garbage, Buffer.alloc(50_000, 0x5a));
  const old = new Date(Date.now() - 60_000);
  utimesSync(garbage, old, old);
  renameSync(garbage, join(dir, 'bad.journal'));
  await writeJournal(dir, 'live', lines(1, 9000));
  await until('an entry after the corrupt file', () => got.entries.length === 5004);
  await writeJournal(dir, 'live', lines(1, 9001));
  await until('one more', () => got.entries.length === 5005);
  t.equal(r.state().corruptFilesSkipped, 1);
  t.same(got.warnings, [`journal file ${join(dir, 'bad.journal')} cannot be read (EBADMSG); skipped`]);
});

t.test('stop() leaves no fds and nothing that keeps the process alive', async (t) => {
  const dir = tempDir(t);
  await writeJournal(dir, 'f', lines(3));
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  const { r } = reader({ directory: dir });
  r.start();
  r.drain();
  t.ok(fds() > before, 'journal files and inotify fd open while running');
  r.stop();
  t.equal(fds(), before, 'all closed');
  t.equal(r.state().alive, false);
  t.throws(() => r.start(), /start\(\) after stop\(\)/);
});
