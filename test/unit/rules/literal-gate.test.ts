// The table gate of LogMonitor against its definition: a line passes when it contains one of the
// literals (String.prototype.includes), on chosen edge cases and on seeded random lines.
import t from 'tap';
import { literalGate } from '../../../src/sources/rules/literal-gate';
import { seededRandom } from '../../helpers/random';

const contains = (literals: string[], text: string): boolean => literals.some((l) => text.includes(l.slice(0, 12)));

t.test('edge cases: overlaps, a literal inside another, at the end, non-ASCII text', async (t) => {
  const literals = ['BUG: soft lockup', 'BUG: ', 'lock', 'Killed process ', 'aab', 'NETDEV WATCHDOG: '];
  const gate = literalGate(literals);
  if (!gate) throw new Error('no gate for ASCII literals');
  const cases: Array<[string, boolean]> = [
    ['', false],
    ['BUG:', false],
    ['watchdog: BUG: soft lockup - CPU#3 stuck', true],
    ['xBUG: y', true],
    ['spinlock', true],
    ['aaab', true], // the failure link of "aa" must lead back into "aab"
    ['aaa', false],
    ['Out of memory: Killed process 12 (x)', true],
    ['Killed proc', false], // 'Killed process ' is gated on its first 12 characters
    ['ünïcode ✓ NETDEV WATCHDOG: eth0', true],
    ['ünïcode ✓ only', false],
    ['BUG:\u00a0soft', false],
  ];
  for (const [text, want] of cases) t.equal(gate(text), want, JSON.stringify(text));
});

t.test('undefined when a literal is empty or not ASCII: the caller then tests each rule', async (t) => {
  t.equal(literalGate([]), undefined);
  t.equal(literalGate(['ok', '']), undefined);
  t.equal(literalGate(['ok', 'Größe']), undefined);
});

t.test('agrees with includes() on random lines', async (t) => {
  const rnd = seededRandom(7);
  const alphabet = 'abcBUG: -#()[]0123456789é';
  const word = (n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
  for (let round = 0; round < 20; round++) {
    const literals = Array.from({ length: 1 + Math.floor(rnd() * 60) }, () => word(1 + Math.floor(rnd() * 16))).filter((l) => !/[^\x00-\x7f]/.test(l));
    if (literals.length === 0) continue;
    const gate = literalGate(literals);
    if (!gate) throw new Error('no gate');
    let disagreements = 0;
    for (let i = 0; i < 500; i++) {
      const text = word(Math.floor(rnd() * 80));
      if (gate(text) !== contains(literals, text)) disagreements++;
    }
    t.equal(disagreements, 0, `round ${round}: ${literals.length} literals`);
  }
});
