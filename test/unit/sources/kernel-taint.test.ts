import t from 'tap';
import { decodeTaint, judgeTaint, kernelTaintCheck, kernelTaintSection } from '../../../src/sources/probes/kernel-taint';
import { defaultsOf, fakeFs } from './fake-fs';

const cfg = defaultsOf(kernelTaintSection);
const bit = (n: number) => 2 ** n;

t.test('decodes the bit mask into letters in bit order, unknown bits by number', async (t) => {
  t.same(decodeTaint(0), []);
  t.same(decodeTaint(bit(0) + bit(12)).map((x) => x.flag), ['P', 'O']);
  t.same(decodeTaint(bit(7) + bit(9)).map((x) => x.flag), ['D', 'W']);
  t.same(decodeTaint(bit(19)).map((x) => x.flag), ['J']);
  t.same(decodeTaint(bit(23)), [{ flag: 'bit 23', meaning: 'not known to this agent' }]);
});

t.test('informational flags are ok, W a warning, D/M/B problems (with what to do)', async (t) => {
  t.same(judgeTaint(0, cfg), { subject: '', status: 'ok', reason: 'KernelNotTainted', message: 'kernel not tainted' });

  // A node with an out-of-tree, unsigned GPU driver.
  const gpu = judgeTaint(bit(0) + bit(12) + bit(13), cfg);
  t.same([gpu.status, gpu.reason], ['ok', 'KernelTaintedBenign']);
  t.match(gpu.message, /^kernel tainted 12289: P \(proprietary module loaded\), O \(out-of-tree module loaded\), E \(unsigned module loaded\); informational only$/);

  const warned = judgeTaint(bit(9), cfg);
  t.same([warned.status, warned.reason], ['warning', 'KernelTaintedWarning']);
  t.match(warned.message, "grep -A20 'WARNING:'");

  const died = judgeTaint(bit(7) + bit(9), cfg);
  t.same([died.status, died.reason], ['problem', 'KernelTaintedFault']);
  t.match(died.message, /D \(the kernel died recently: an oops or BUG\), W .* — read the oops .*drain and reboot the node; read the warning/);
  t.equal(judgeTaint(bit(4), cfg).status, 'problem', 'M: machine check');
  t.equal(judgeTaint(bit(5), cfg).status, 'problem', 'B: bad page');
});

t.test('the lists are configurable', async (t) => {
  t.equal(judgeTaint(bit(9), { ...cfg, warning_flags: [] }).status, 'ok');
  const f = judgeTaint(bit(12), { ...cfg, problem_flags: ['O'] });
  t.same([f.status, f.reason], ['problem', 'KernelTaintedFault']);
  t.match(f.message, 'find the event in the kernel log', 'a flag without specific advice still says where to look');
});

t.test('the check reads /proc/sys/kernel/tainted; the live host is well formed', async (t) => {
  const [f] = await kernelTaintCheck(cfg, fakeFs({ '/proc/sys/kernel/tainted': '128\n' })).run();
  t.equal(f?.reason, 'KernelTaintedFault');
  await t.rejects(kernelTaintCheck(cfg, fakeFs({ '/proc/sys/kernel/tainted': 'x\n' })).run(), /tainted: expected a number, got "x"/);
  const live = await kernelTaintCheck(cfg).run();
  t.equal(live.length, 1);
  t.match(live[0], { subject: '', status: /^(ok|warning|problem)$/, reason: /^Kernel/ });
});
