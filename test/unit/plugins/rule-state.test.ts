// A permanent rule's condition after each run, following node-problem-detector's five scenarios.
import t from 'tap';
import { nextCondition, type RuleCondition } from '../../../src/sources/plugins/rule-state';
import type { PluginStatus } from '../../../src/sources/plugins/runner';

const defaults = { reason: 'NTPIsUp', message: 'ntp service is up' };
const initial: RuleCondition = { status: 'False', ...defaults };

function walk(steps: Array<[PluginStatus, string]>, messageChangeUpdates = false): string[] {
  let c = initial;
  return steps.map(([status, output]) => {
    c = nextCondition(c, { status, output }, 'NTPIsDown', defaults, messageChangeUpdates);
    return `${c.status} ${c.reason}: ${c.message}`;
  });
}

t.test('set with the rule reason and output, cleared back to the default reason and message', async (t) => {
  t.same(walk([['problem', 'ntp down'], ['problem', 'ntp still down'], ['ok', 'fine now']]), [
    'True NTPIsDown: ntp down',
    'True NTPIsDown: ntp down',
    'False NTPIsUp: ntp service is up',
  ]);
});

t.test('with message change updates a True condition follows the output', async (t) => {
  t.same(walk([['problem', 'offset 2s'], ['problem', 'offset 5s']], true), ['True NTPIsDown: offset 2s', 'True NTPIsDown: offset 5s']);
});

t.test('Unknown keeps the default reason with the output saying what went wrong, and its first message', async (t) => {
  t.same(walk([['unknown', 'timed out'], ['unknown', 'timed out again'], ['problem', 'down'], ['unknown', 'exit 2'], ['ok', '']]), [
    'Unknown NTPIsUp: timed out',
    'Unknown NTPIsUp: timed out',
    'True NTPIsDown: down',
    'Unknown NTPIsUp: exit 2',
    'False NTPIsUp: ntp service is up',
  ]);
});

t.test('a new reason updates a True condition even without message change updates', async (t) => {
  const c = nextCondition({ status: 'True', reason: 'Other', message: 'old' }, { status: 'problem', output: 'new' }, 'NTPIsDown', defaults, false);
  t.same(c, { status: 'True', reason: 'NTPIsDown', message: 'new' });
});
