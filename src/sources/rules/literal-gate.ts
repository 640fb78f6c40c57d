// The one pass over a line that decides which of a source's rules may match it: which of their required
// literals does it contain? An Aho–Corasick automaton turned into a table (one lookup per character), so
// its cost does not grow with the number of rules, as an alternation of the literals in a V8 RegExp does
// (145 literals: 0.79 s per million kernel lines against 0.29 s; docs/rules.md). It lists every literal
// it finds, so a line that contains one rule's literal is checked against that rule only, and without a
// walk over the whole library's rules.

const ASCII = 128;
const PREFIX = 12;

/**
 * Appends to `found` (once each, in the order they end in `text`) the index `i` of every literal
 * `required[i]` whose first PREFIX characters occur in `text`; the caller checks each candidate's whole
 * literal next. `seen[i] = mark` records that `i` is in `found`: with a fresh mark per line, `seen` need not
 * be cleared between lines.
 */
export type LiteralScan = (text: string, seen: Uint32Array, mark: number, found: number[]) => void;

/**
 * The scan for `required`, or undefined when one is empty (every line would be a candidate) or not ASCII
 * (the table covers ASCII).
 */
export function literalGate(required: readonly string[]): LiteralScan | undefined {
  if (required.length === 0 || required.some((l) => l === '' || /[^\x00-\x7f]/.test(l))) return undefined;
  return scanOf(automaton(required.map((l) => l.slice(0, PREFIX))));
}

/** The automaton as flat typed arrays: all the scan keeps. */
interface Automaton {
  /** The next state: table[state * columns + column[char]]. */
  table: Uint16Array | Uint32Array;
  column: Uint8Array;
  columns: number;
  /** What state s reports: list[start[s] .. start[s + 1]). */
  start: Uint32Array;
  list: Uint32Array;
  /** 1 where a state reports anything. */
  reports: Uint8Array;
}

// Built apart from the scan so that the trie's maps and lists (about a megabyte for the shipped library) are
// garbage once the table exists: a closure would keep every variable of its function's scope that any closure
// there uses.
function automaton(literals: readonly string[]): Automaton {
  // A prefix of each literal (PREFIX characters) decides as well as the whole on real lines (the rules check
  // their whole literal next) and keeps the table small: ~4,000 states for the shipped kernel rules.
  // Characters that occur in no literal all behave alike: one column of the table for all of them.
  const column = new Uint8Array(ASCII);
  let columns = 1;
  for (const l of literals) for (let i = 0; i < l.length; i++) if (column[l.charCodeAt(i)] === 0) column[l.charCodeAt(i)] = columns++;

  // The trie of the literals; `ends[s]`: the literals whose prefix ends at state s.
  const next: Array<Map<number, number>> = [new Map()];
  const ends: number[][] = [[]];
  literals.forEach((l, index) => {
    let s = 0;
    for (let i = 0; i < l.length; i++) {
      const c = column[l.charCodeAt(i)] as number;
      let n = next[s]?.get(c);
      if (n === undefined) {
        n = next.length;
        next.push(new Map());
        ends.push([]);
        next[s]?.set(c, n);
      }
      s = n;
    }
    ends[s]?.push(index);
  });

  // Breadth first, each state's missing transitions are those of its longest proper suffix in the trie,
  // and it reports what that suffix reports as well as its own literals.
  const states = next.length;
  const table = states < 0x10000 ? new Uint16Array(states * columns) : new Uint32Array(states * columns);
  const suffix = new Uint32Array(states);
  const reportsOf: number[][] = ends.map((e) => [...e]);
  const queue: number[] = [];
  for (let c = 0; c < columns; c++) {
    const n = next[0]?.get(c) ?? 0;
    table[c] = n;
    if (n !== 0) queue.push(n);
  }
  for (let q = 0; q < queue.length; q++) {
    const s = queue[q] as number;
    const f = suffix[s] as number;
    if (f !== 0) reportsOf[s]?.push(...(reportsOf[f] ?? []));
    for (let c = 0; c < columns; c++) {
      const n = next[s]?.get(c);
      if (n === undefined) {
        table[s * columns + c] = table[f * columns + c] as number;
      } else {
        suffix[n] = table[f * columns + c] as number;
        table[s * columns + c] = n;
        queue.push(n);
      }
    }
  }
  // What each state reports, flattened: reportsOf[s] is list[start[s] .. start[s + 1]).
  const start = new Uint32Array(states + 1);
  for (let s = 0; s < states; s++) start[s + 1] = (start[s] as number) + (reportsOf[s]?.length ?? 0);
  const list = Uint32Array.from(reportsOf.flat());
  // One byte per state for the common case, a state that reports nothing: most characters of most lines.
  const reports = Uint8Array.from(reportsOf, (f) => (f.length > 0 ? 1 : 0));
  return { table, column, columns, start, list, reports };
}

function scanOf({ table, column, columns, start, list, reports }: Automaton): LiteralScan {

  // From the first state that reports on, lists what each state reports. Kept apart so that the loop below,
  // all that runs for a line without any literal (most lines), stays tight.
  const listFrom = (text: string, from: number, state: number, seen: Uint32Array, mark: number, found: number[]): void => {
    let s = state;
    for (let i = from; ; ) {
      for (let k = start[s] as number, to = start[s + 1] as number; k < to; k++) {
        const l = list[k] as number;
        if (seen[l] === mark) continue;
        seen[l] = mark;
        found.push(l);
      }
      if (++i >= text.length) return;
      const code = text.charCodeAt(i);
      s = table[s * columns + (code < ASCII ? (column[code] as number) : 0)] as number;
    }
  };
  return (text, seen, mark, found) => {
    let s = 0;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      s = table[s * columns + (code < ASCII ? (column[code] as number) : 0)] as number;
      if (reports[s] === 1) {
        listFrom(text, i, s, seen, mark, found);
        return;
      }
    }
  };
}
