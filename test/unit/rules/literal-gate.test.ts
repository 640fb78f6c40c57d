// The table scan of LogMonitor against its definition: it reports exactly the literals whose first 12
// characters a line contains (String.prototype.includes), on chosen edge cases and on seeded random lines.
import t from 'tap';
import { literalGate, type LiteralScan } from '../../../src/sources/rules/literal-gate';
import { seededRandom } from '../../helpers/random';

const expected = (literals: string[], text: string): number[] =>
  literals.flatMap((l, i) => (text.includes(l.slice(0, 12)) ? [i] : []));

// One `seen` array across calls, as LogMonitor keeps it: marks of earlier lines must not leak into a later one.
function scanner(literals: string[]): (text: string) => { any: boolean; found: number[] } {
  const scan: LiteralScan | undefined = literalGate(literals);
  if (!scan) throw new Error('no scan for ASCII literals');
  const seen = new Uint32Array(literals.length);
  let mark = 0;
  return (text) => {
    mark++;
    const found: number[] = [];
    scan(text, seen, mark, found);
    // Their order is where they end in the line; sorted, a literal listed twice still shows against `expected`.
    return { any: found.length > 0, found: found.sort((a, b) => a - b) };
  };
}

t.test('edge cases: overlaps, a literal inside another, at the end, non-ASCII text, shared prefixes', async (t) => {
  const literals = ['BUG: soft lockup', 'BUG: ', 'lock', 'Killed process ', 'aab', 'NETDEV WATCHDOG: ', 'Killed process 1 (x)', 'ab'];
  const scan = scanner(literals);
  const cases = [
    '',
    'BUG:',
    'watchdog: BUG: soft lockup - CPU#3 stuck',
    'xBUG: y',
    'spinlock',
    'aaab', // the failure link of "aa" must lead back into "aab", which reports "ab" too
    'aaa',
    'Out of memory: Killed process 12 (x)', // two literals with the same first 12 characters
    'Killed proc', // 'Killed process ' is found by its first 12 characters
    'ünïcode ✓ NETDEV WATCHDOG: eth0',
    'ünïcode ✓ only',
    'BUG:\u00a0soft',
    'lock BUG: soft lockup lock', // the same literal twice, and one ending inside another
  ];
  for (const text of cases) {
    const want = expected(literals, text);
    t.same(scan(text), { any: want.length > 0, found: want }, JSON.stringify(text));
  }
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
    const scan = scanner(literals);
    let disagreements = 0;
    for (let i = 0; i < 500; i++) {
      const text = word(Math.floor(rnd() * 80));
      const want = expected(literals, text);
      const got = scan(text);
      if (got.any !== want.length > 0 || got.found.join() !== want.join()) disagreements++;
    }
    t.equal(disagreements, 0, `round ${round}: ${literals.length} literals`);
  }
});
