// The log under systemd: entries journald does not take (stopped, restarting) go to stderr instead and are
// counted; the count is logged once journald takes entries again, since a stopped journald has closed
// stderr too and the lines written there are lost.
import { fstatSync } from 'node:fs';
import t from 'tap';
import { createLogger } from '../../../src/outputs/log';
import type { Native } from '../../../src/system/native';

t.test('entries journald refused are written to stderr, counted, and the count logged when it is back', async (t) => {
  // The logger sends to journald only when JOURNAL_STREAM names its stderr, as systemd sets it.
  const st = fstatSync(2);
  const saved = process.env.JOURNAL_STREAM;
  process.env.JOURNAL_STREAM = `${st.dev}:${st.ino}`;
  t.teardown(() => {
    if (saved === undefined) delete process.env.JOURNAL_STREAM;
    else process.env.JOURNAL_STREAM = saved;
  });
  const stderr: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => stderr.push(chunk) > 0) as typeof process.stderr.write;
  t.teardown(() => {
    process.stderr.write = write;
  });

  // A fake of the addon's journalSend: a journald that is down refuses with ECONNREFUSED, as libsystemd does.
  let down = true;
  const sent: Array<Record<string, string>> = [];
  const native = {
    journalSend(fields: Record<string, string>) {
      if (down) throw new Error('sd_journal_sendv to /run/systemd/journal/socket: Connection refused');
      sent.push(fields);
    },
  } as unknown as Native;
  const log = createLogger('info', () => native);
  const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

  log.info('configuration reloaded (generation 2)');
  log.warning('journal: files changed');
  log.error('a check failed', { check: 'disk' });
  await settle();
  t.same(sent, [], 'nothing reached journald while it was down');
  t.same(stderr.map((l) => (JSON.parse(l) as { MESSAGE: string }).MESSAGE), ['configuration reloaded (generation 2)', 'journal: files changed', 'a check failed'], 'each entry went to stderr');

  down = false;
  log.info('journald is back');
  log.info('and another');
  await settle();
  t.same(
    sent.map((f) => [f.MESSAGE, f.NODE_HEALTH_CODE, f.NODE_HEALTH_COUNT, f.PRIORITY]),
    [
      ['journald is back', undefined, undefined, '6'],
      [
        '3 log entries could not be sent to journald (first: Error: sd_journal_sendv to /run/systemd/journal/socket: Connection refused); they went to stderr, which a stopped journald closes, so they may be lost',
        'LOG_UNSENT',
        '3',
        '4',
      ],
      ['and another', undefined, undefined, '6'],
    ],
    'the count is logged once, with the first entry journald took',
  );
  t.equal(stderr.length, 3, 'nothing more on stderr');
});
