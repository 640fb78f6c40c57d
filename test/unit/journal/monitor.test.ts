// The journal monitor on real journal files with its state directory on a small tmpfs: when the disk
// fills, saving the read position must neither throw (it runs from setImmediate, where a throw ends the
// process) nor stop the rules; the latest position is saved once there is space again.
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadAgentConfig } from '../../../src/sections';
import { buildRuleSet } from '../../../src/sources/rules/rule-set';
import { createLogger } from '../../../src/outputs/log';
import { JournalMonitor } from '../../../src/sources/journal/monitor';
import { DegradedState } from '../../../src/system/degraded';
import { writeJournal, type SourceEntry } from '../../helpers/journal-files';
import { configDir } from '../../helpers/tmp';
import { Tmpfs } from '../../helpers/tmpfs';
import { loadNative } from '../../../src/system/native';

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('a full state directory: the rules go on, the cursor waits in memory and is saved when space returns', async (t) => {
  const fs = Tmpfs.mount(t, 256);
  const journalDir = mkdtempSync(join(tmpdir(), 'nha-journal-'));
  t.teardown(() => rmSync(journalDir, { recursive: true, force: true }));
  const loaded = loadAgentConfig(
    configDir({
      'a.ini': '[journal]\ncursor_every_entries = 1\ncursor_every = 100ms\n[source "kernel"]\nmatches = _TRANSPORT=kernel\n[rule "Oops"]\nsource = kernel\nreason = Oops\npattern = oops \\d+\n',
    }),
  );
  const now = Date.now() * 1000;
  const oops = (i: number): SourceEntry => ({ realtimeUs: now - 60_000_000 + i * 1000, fields: { _TRANSPORT: 'kernel', MESSAGE: `oops ${i}` } });
  await writeJournal(journalDir, 'k', [oops(0)]);

  const events: string[] = [];
  const degraded = new DegradedState({ error() {}, info() {} });
  const monitor = new JournalMonitor(
    buildRuleSet(loaded),
    loaded.config.journal,
    {
      stateDir: fs.path,
      sink: { condition() {}, event: (e) => void events.push(e.message) },
      log: createLogger('error', undefined),
      native: loadNative,
      cursorHealth: degraded.for('journal-cursor'),
      directory: journalDir,
    },
  );
  t.teardown(() => monitor.stop());
  const cursorFile = join(fs.path, 'journal', 'kernel.cursor');
  const savedCursor = (): string => {
    try {
      return readFileSync(cursorFile, 'utf8').trim();
    } catch {
      return '';
    }
  };
  monitor.start();
  await until('the first cursor saved', () => savedCursor() !== '');
  const first = savedCursor();

  fs.fill();
  await writeJournal(journalDir, 'k', [oops(1), oops(2)]);
  const read = (): number => monitor.status()[0]?.entriesRead ?? 0;
  await until('the new lines read', () => read() === 3);
  await until('the cursor store degraded by ENOSPC', () => degraded.list().some((d) => d.component === 'journal-cursor' && d.reason === 'ENOSPC'));
  t.equal(savedCursor(), first, 'the disk still holds the old position');
  await writeJournal(journalDir, 'k', [oops(3)]);
  await until('reading goes on while degraded', () => read() === 4);
  t.match(events, ['oops 0'], 'the rule reported the first line (repeats are aggregated)');

  fs.free();
  await until('degraded cleared', () => degraded.list().length === 0, 5000);
  // The cursor's i= is the entry's sequence number in the file: the fourth line.
  t.match(first, /;i=1;/);
  t.match(savedCursor(), /;i=4;/, 'the latest position reached the disk');
});
