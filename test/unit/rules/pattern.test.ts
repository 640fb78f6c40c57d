import t from 'tap';
import { compilePattern, PatternError, requiredLiteral } from '../../../src/sources/rules/pattern';

t.test('patterns are anchored at the end of the text, not the start (NPD semantics)', async (t) => {
  const p = compilePattern('task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\.');
  t.equal(p.matchEnd('INFO: task docker:20744 blocked for more than 120 seconds.'), 'task docker:20744 blocked for more than 120 seconds.');
  t.equal(p.matchEnd('INFO: task docker:20744 blocked for more than 120 seconds. and more'), null);
  const alt = compilePattern('a|b');
  t.equal(alt.matchEnd('xxa'), 'a', 'alternation is grouped before the end anchor');
  t.equal(alt.matchEnd('ax'), null);
});

t.test('multi-line patterns see the joined buffer; "." does not cross lines', async (t) => {
  const p = compilePattern('first line\\nsecond .*');
  t.notOk(p.singleLine);
  t.equal(p.matchEnd('zero\nfirst line\nsecond line'), 'first line\nsecond line');
  t.ok(compilePattern('EXT4-fs error .*').singleLine);
  t.equal(compilePattern('a.*b').matchEnd('a\nb'), null);
  for (const src of ['a\\sb', '[^x]+', '(?s)a.b', '\\Dx']) t.notOk(compilePattern(src).singleLine, src);
});

t.test('RE2 syntax; an invalid or non-RE2 pattern is a clear error', async (t) => {
  t.throws(() => compilePattern('(unclosed'), PatternError);
  t.throws(() => compilePattern('back(ref)\\1'), /invalid RE2 pattern "back\(ref\)\\\\1"/);
  t.throws(() => compilePattern('(?=lookahead)'), PatternError);
});

t.test('linear time: a pattern that makes a backtracking engine explode stays fast', async (t) => {
  const p = compilePattern('(a+)+b');
  const text = 'a'.repeat(5000);
  const started = performance.now();
  t.equal(p.matchEnd(text), null);
  t.ok(performance.now() - started < 2000, 'no catastrophic backtracking');
});

t.test('required literals: the longest run every match must contain', async (t) => {
  const cases: Array<[string, string]> = [
    ['Killed process \\d+ (.+) total-vm:\\d+kB, anon-rss:\\d+kB, file-rss:\\d+kB.*', 'Killed process '],
    ['.*\\[Hardware Error\\]: event severity: fatal$', '[Hardware Error]: event severity: fatal'],
    ['divide error: 0000 \\[#\\d+\\] SMP', 'divide error: 0000 [#'],
    ['XFS .* Shutting down filesystem.?', ' Shutting down filesystem'],
    ['colou?r of things', 'r of things'],
    ['ab+cdef', 'cdef'],
    ['xyzw{0,3}q', 'xyz'],
    ['a|b', ''],
    ['(?i)Killed process', ''],
    ['Killed (?i)process', ''],
    ['[abc]+', ''],
  ];
  for (const [src, lit] of cases) t.equal(requiredLiteral(src), lit, src);
});

t.test('the literal is sound: every match of sample patterns contains it', async (t) => {
  const samples: Array<[string, string[]]> = [
    ['colou?r of things', ['color of things', 'colour of things']],
    ['ab+cdef', ['abcdef', 'abbbbcdef']],
    ['x(yz)*end', ['xend', 'xyzyzend']],
    ['Started (Kubernetes kubelet|kubelet.service).', ['Started kubelet.service.', 'Started Kubernetes kubelet!']],
  ];
  for (const [src, lines] of samples) {
    const p = compilePattern(src);
    for (const line of lines) {
      t.not(p.matchEnd(line), null, `${src} matches ${line}`);
      t.ok(line.includes(p.literal), `${JSON.stringify(p.literal)} in ${line}`);
    }
  }
});
