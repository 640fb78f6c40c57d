// The boot ID as the journal records it: /proc when the journal holds entries of that boot, else the
// newest entry's boot (a container's journal seen through a /proc without its boot ID), else /proc.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { currentBootId, resolveBootId } from '../../../src/system/boot';
import { loadNative } from '../../../src/system/native';
import { writeJournal } from '../../helpers/journal-files';

const PROC = '11111111-2222-4333-8444-555555555555';
const PROC_ID = PROC.replace(/-/g, '');
const OTHER = 'aaaaaaaabbbbccccddddeeeeeeeeeeee';
const OLDER = '0123456789abcdef0123456789abcdef';
const T0 = 1_760_000_000_000_000;
const BOOT_MS = T0 / 1000 - 60_000;

function setup(t: { teardown(fn: () => unknown): void }): { dir: string; procPath: string } {
  const root = mkdtempSync(join(tmpdir(), 'nha-boot-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const procPath = join(root, 'boot_id');
  writeFileSync(procPath, `${PROC}\n`);
  return { dir: join(root, 'journal'), procPath };
}

const entry = (bootId: string, realtimeUs: number, message: string) => ({ bootId, realtimeUs, fields: { MESSAGE: message } });

t.test('the journal holds entries of the boot /proc shows: /proc it is', async (t) => {
  const { dir, procPath } = setup(t);
  // A newer entry of another boot does not outvote it (a clock that went back across a reboot).
  await writeJournal(dir, 'j', [entry(PROC_ID, T0, 'this boot'), entry(OTHER, T0 + 1000, 'other')]);
  t.same(resolveBootId({ native: loadNative, procPath, directory: dir, bootTimeMs: BOOT_MS }), { id: PROC_ID, source: 'proc', procId: PROC_ID });
});

t.test('no entry of /proc\'s boot: the newest entry of this boot names it', async (t) => {
  const { dir, procPath } = setup(t);
  await writeJournal(dir, 'j', [entry(OLDER, T0 - 120_000_000, 'an earlier boot'), entry(OTHER, T0, 'journald started'), entry(OTHER, T0 + 5000, 'later')]);
  t.same(resolveBootId({ native: loadNative, procPath, directory: dir, bootTimeMs: BOOT_MS }), { id: OTHER, source: 'journal', procId: PROC_ID });
});

t.test('the newest entry predates this boot (journald stopped storing): /proc', async (t) => {
  const { dir, procPath } = setup(t);
  await writeJournal(dir, 'j', [entry(OTHER, T0, 'before this boot')]);
  t.same(resolveBootId({ native: loadNative, procPath, directory: dir, bootTimeMs: T0 / 1000 + 1000 }), { id: PROC_ID, source: 'proc-only', procId: PROC_ID });
});

t.test('an empty or missing journal: /proc', async (t) => {
  const { dir, procPath } = setup(t);
  t.same(resolveBootId({ native: loadNative, procPath, directory: dir, bootTimeMs: BOOT_MS }), { id: PROC_ID, source: 'proc-only', procId: PROC_ID }, 'missing directory');
  await writeJournal(dir, 'j', []);
  t.same(resolveBootId({ native: loadNative, procPath, directory: dir, bootTimeMs: BOOT_MS }), { id: PROC_ID, source: 'proc-only', procId: PROC_ID }, 'no entries');
});

t.test('an unreadable /proc file is an error naming it', async (t) => {
  t.throws(() => resolveBootId({ native: loadNative, procPath: '/nonexistent/boot_id' }), /\/nonexistent\/boot_id/);
});

t.test('this host: the 32-hex form of a boot this machine has', async (t) => {
  const id = currentBootId(loadNative);
  t.match(id, /^[0-9a-f]{32}$/);
  const proc = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '');
  const viaJournal = resolveBootId({ native: loadNative });
  t.equal(id, viaJournal.id, 'cached answer is the resolved one');
  if (viaJournal.source !== 'journal') t.equal(id, proc, 'from /proc unless the journal says otherwise');
});
