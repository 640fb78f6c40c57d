import t from 'tap';
import { CheckTable } from '../../../src/engine/check-table';
import type { CheckResult, CheckStatus } from '../../../src/types';

const result = (subject: string, status: CheckStatus, reason: string): CheckResult => ({
  component: 'host',
  check: 'disk',
  subject,
  status,
  reason,
  message: `${subject} ${reason}`,
  severity: 'info',
  durationMs: 1,
});

t.test('only changes are reported: a finding turning bad, then recovering', async (t) => {
  const table = new CheckTable();
  t.same(table.record('host/disk', [result('/', 'ok', 'DiskSpaceOK')]), { appeared: [], cleared: [] });

  const low = result('/', 'warning', 'DiskSpaceLow');
  t.same(table.record('host/disk', [low]).appeared, [low]);
  t.same(table.record('host/disk', [low]), { appeared: [], cleared: [] }, 'a repeated finding is not news');

  const critical = result('/', 'problem', 'DiskSpaceCritical');
  t.match(table.record('host/disk', [critical]), { appeared: [critical], cleared: [low] }, 'escalation is a change');
  t.match(table.record('host/disk', [result('/', 'ok', 'DiskSpaceOK')]).cleared, [critical]);
});

t.test('results are kept per check; checks no longer configured are forgotten', async (t) => {
  const table = new CheckTable();
  table.record('host/disk', [result('/', 'ok', 'DiskSpaceOK'), result('/var', 'ok', 'DiskSpaceOK')], new Date(0));
  table.record('host/pids', [result('', 'ok', 'PidsOK')]);
  t.equal(table.all().length, 3);
  t.equal(table.all()[0]?.at, '1970-01-01T00:00:00.000Z');
  table.retain(['host/pids']);
  t.same(table.all().map((r) => r.reason), ['PidsOK']);
});
