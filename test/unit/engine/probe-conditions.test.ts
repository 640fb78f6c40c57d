import t from 'tap';
import { ConditionTable } from '../../../src/engine/conditions';
import { probeConditionReport } from '../../../src/engine/probe-conditions';
import type { CheckResult, CheckStatus } from '../../../src/types';
import { severityOf } from '../../../src/types';

const result = (status: CheckStatus, reason: string, subject = '', message = `${reason} on ${subject}`): CheckResult => ({
  component: 'host',
  check: 'disk',
  status,
  reason,
  subject,
  message,
  severity: severityOf(status),
  durationMs: 1,
});

const probe = { checkId: 'host/disk', type: 'DiskFull' };

t.test('a problem sets the condition, naming its subject; warnings do not', async (t) => {
  t.match(probeConditionReport(probe, [result('ok', 'DiskSpaceOK', '/'), result('warning', 'DiskSpaceLow', '/var')]), {
    source: 'probe/host/disk',
    type: 'DiskFull',
    status: 'False',
  });
  t.same(probeConditionReport(probe, [result('warning', 'DiskSpaceLow', '/var'), result('problem', 'InodesCritical', '/data', '97% of inodes used')]), {
    source: 'probe/host/disk',
    type: 'DiskFull',
    status: 'True',
    reason: 'InodesCritical',
    message: '/data: 97% of inodes used',
  });
});

t.test('many problems: the first three are named, the rest counted', async (t) => {
  const many = ['/a', '/b', '/c', '/d', '/e'].map((m) => result('problem', 'DiskSpaceCritical', m, 'full'));
  t.equal(probeConditionReport(probe, many).message, '/a: full; /b: full; /c: full; and 2 more');
});

t.test('a probe that could not run makes the condition Unknown, not False', async (t) => {
  t.match(probeConditionReport(probe, [result('unknown', 'CheckFailed', '', 'check could not run: EACCES')]), {
    status: 'Unknown',
    reason: 'CheckFailed',
    message: 'check could not run: EACCES',
  });
  // A probe that hung is as undecided as one that threw.
  t.match(probeConditionReport(probe, [result('unknown', 'CheckTimedOut', '', 'check did not finish within 20s')]), {
    status: 'Unknown',
    reason: 'CheckTimedOut',
  });
  // An unknown finding about one subject is not the whole probe failing.
  t.match(probeConditionReport(probe, [result('unknown', 'StatfsFailed', '/mnt')]), { status: 'False' });
});

t.test('with the condition table: set after N runs in a row, cleared after M', async (t) => {
  const table = new ConditionTable();
  table.declare({ type: 'DiskFull', owner: '[disk]', reason: 'DiskSpaceOK', message: 'fine', setAfter: 2, clearAfter: 3 });
  const run = (status: CheckStatus) =>
    table.report(probeConditionReport(probe, [result(status, status === 'problem' ? 'DiskSpaceCritical' : 'DiskSpaceOK', '/var')]));
  const seen: string[] = [];
  for (const s of ['problem', 'ok', 'problem', 'problem', 'ok', 'ok', 'problem', 'ok', 'ok', 'ok'] as const) {
    run(s);
    seen.push(table.get('DiskFull')?.status as string);
  }
  t.same(seen, ['False', 'False', 'False', 'True', 'True', 'True', 'True', 'True', 'True', 'False']);
  t.match(table.get('DiskFull'), { reason: 'DiskSpaceOK', message: 'fine' });
});
