// The kernel's taint flags (/proc/sys/kernel/tainted): sticky marks, until the next boot, of events
// that make the running kernel less trustworthy. Which flags matter is a judgement (the defaults, and
// the config keys to change them, are in its section below):
// - problems: D (the kernel oopsed or hit a BUG: its state may be corrupt), M (a machine check: the
//   hardware reported an error), B (a bad page: memory corruption);
// - warnings: W (a kernel WARNING fired), L (a soft lockup), F/R (a module forced in or out),
//   S (running out of the hardware's specification);
// - everything else is informational: P/O/E (proprietary, out-of-tree, unsigned modules — normal with
//   GPU or storage drivers), K (live patched), C, I, A, U, X, T, N, J.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { listOf, oneOf } from '../../../config/values';
import type { CheckStatus, Finding, Check } from '../../../types';
import { hostFs, parseNumberFile, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

/** Letters of the kernel's taint flags (Documentation/admin-guide/tainted-kernels.rst). */
export const TAINT_LETTERS = [
  'P', 'F', 'S', 'R', 'M', 'B', 'U', 'D', 'A', 'W', 'C', 'I', 'O', 'E', 'L', 'K', 'X', 'T', 'N', 'J',
] as const;

export const kernelTaintSection = section({
  name: 'kernel_taint',
  keys: {
    ...probe('Decode the kernel taint flags.', '1m', 'KernelFault'),
    problem_flags: key(
      listOf(oneOf(TAINT_LETTERS)),
      'D, M, B',
      'Taint flags that are a problem: D died (oops/BUG), M machine check, B bad page.',
    ),
    warning_flags: key(
      listOf(oneOf(TAINT_LETTERS)),
      'W, L, F, R, S',
      'Taint flags that are a warning: W kernel warning, L soft lockup, F/R forced module load/unload, S out of spec. Other flags are informational.',
    ),
  },
  check({ problem_flags, warning_flags }) {
    const both = problem_flags.filter((f) => warning_flags.includes(f));
    if (both.length === 0) return [];
    const message = `${both.join(', ')} listed in both problem_flags and warning_flags; keep each flag in one list`;
    return [{ keys: ['warning_flags', 'problem_flags'], message }];
  },
});
export type KernelTaintSettings = Values<typeof kernelTaintSection.keys>;

type TaintLetter = (typeof TAINT_LETTERS)[number];

// Bit number → letter and meaning, in bit order (Documentation/admin-guide/tainted-kernels.rst).
const FLAGS: ReadonlyArray<readonly [TaintLetter, string]> = [
  ['P', 'proprietary module loaded'],
  ['F', 'module force-loaded'],
  ['S', 'running on out-of-specification hardware'],
  ['R', 'module force-unloaded'],
  ['M', 'machine check: the processor reported a hardware error'],
  ['B', 'bad page referenced or unexpected page flags: memory corruption'],
  ['U', 'taint requested by userspace'],
  ['D', 'the kernel died recently: an oops or BUG'],
  ['A', 'ACPI table overridden'],
  ['W', 'the kernel issued a warning'],
  ['C', 'staging driver loaded'],
  ['I', 'firmware bug workaround applied'],
  ['O', 'out-of-tree module loaded'],
  ['E', 'unsigned module loaded'],
  ['L', 'soft lockup: a CPU was stuck in the kernel'],
  ['K', 'kernel live patched'],
  ['X', 'distribution-defined taint'],
  ['T', 'built with the struct randomization plugin'],
  ['N', 'an in-kernel test has run'],
  ['J', 'userspace used a mutating fwctl debug operation'],
];

export interface Taint {
  /** A letter (or "bit N" for bits newer than this table) and what it means. */
  flag: string;
  meaning: string;
}

export function decodeTaint(value: number): Taint[] {
  const taints: Taint[] = [];
  // The mask fits in 53 bits; bit arithmetic in JS is 32-bit, so divide instead.
  for (let bit = 0, rest = value; rest > 0; bit++, rest = Math.floor(rest / 2)) {
    if (rest % 2 === 0) continue;
    const known = FLAGS[bit];
    taints.push(known ? { flag: known[0], meaning: known[1] } : { flag: `bit ${bit}`, meaning: 'not known to this agent' });
  }
  return taints;
}

const ACTION: Partial<Record<TaintLetter, string>> = {
  D: "read the oops in the kernel log (journalctl -k -b | grep -A30 -E 'Oops|BUG:'), then drain and reboot the node",
  M: "read the machine check in the kernel log (journalctl -k -b | grep -i 'machine check'); have the hardware checked and replace the node",
  B: "read the kernel log (journalctl -k -b | grep -i 'bad page'); test the memory and replace the node",
  W: "read the warning in the kernel log (journalctl -k -b | grep -A20 'WARNING:'); often harmless, but it stays until reboot",
  L: "read the kernel log (journalctl -k -b | grep -i 'soft lockup'): a CPU stuck for over 20 s points at a driver or an overloaded host",
};

export function judgeTaint(value: number, cfg: KernelTaintSettings): Finding {
  const taints = decodeTaint(value);
  const problems = taints.filter((t) => (cfg.problem_flags as readonly string[]).includes(t.flag));
  const warnings = taints.filter((t) => (cfg.warning_flags as readonly string[]).includes(t.flag));
  const status: CheckStatus = problems.length > 0 ? 'problem' : warnings.length > 0 ? 'warning' : 'ok';
  if (taints.length === 0) {
    return { subject: '', status, reason: 'KernelNotTainted', message: 'kernel not tainted' };
  }
  const list = taints.map((t) => `${t.flag} (${t.meaning})`).join(', ');
  const actions = [...problems, ...warnings]
    .map((t) => ACTION[t.flag as TaintLetter])
    .filter((a): a is string => a !== undefined);
  const advice = actions.length > 0 ? actions.join('; ') : 'find the event in the kernel log (journalctl -k -b); it stays set until reboot';
  return {
    subject: '',
    status,
    reason: status === 'problem' ? 'KernelTaintedFault' : status === 'warning' ? 'KernelTaintedWarning' : 'KernelTaintedBenign',
    message: status === 'ok' ? `kernel tainted ${value}: ${list}; informational only` : `kernel tainted ${value}: ${list} — ${advice}`,
  };
}

export function kernelTaintCheck(cfg: KernelTaintSettings, fs: HostFs = hostFs): Check {
  const path = '/proc/sys/kernel/tainted';
  return {
    component: 'host',
    name: 'kernel_taint',
    async run() {
      return [judgeTaint(parseNumberFile(fs.read(path), path), cfg)];
    },
  };
}

export const kernelTaintProbe = defineProbe({
  section: kernelTaintSection,
  healthy: { reason: 'KernelNotFaulted', message: 'no kernel oops, machine check or bad page since boot' },
  make: (cfg) => kernelTaintCheck(cfg),
});
