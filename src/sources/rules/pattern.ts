// Log rule patterns with node-problem-detector's semantics: RE2 syntax, matched against the end of a
// source's recent lines joined by "\n" (each pattern is anchored at the end of the buffer, not the start).
//
// re2js (a pure-JS port of RE2) guarantees linear-time matching, so no pattern or log line can make the
// agent backtrack for seconds (V8's RegExp can: a leading `.*` with `$` costs ~8 s per 1 M lines there).
// Most lines match no rule, so each pattern carries a literal every match must contain, and the regex
// runs only on lines that contain it.
import { createHash } from 'node:crypto';
import { RE2JS, RE2Set } from 're2js';

/**
 * The shipped patterns scripts/build.mjs checked, by SHA-256 prefix, with what analysePattern found for
 * each (its literal, whether it is single-line); none outside the bundle.
 */
declare const __CHECKED_PATTERNS__: Readonly<Record<string, readonly [string, boolean]>> | undefined;
const CHECKED: ReadonlyMap<string, readonly [string, boolean]> = new Map(
  typeof __CHECKED_PATTERNS__ === 'undefined' ? [] : Object.entries(__CHECKED_PATTERNS__),
);

/** The key of a pattern in the build's table. */
export function patternKey(source: string): string {
  return createHash('sha256').update(source).digest('hex').slice(0, 16);
}

/** What the matcher needs to know about a pattern besides the regex: its literal and whether it is single-line. */
export function analysePattern(source: string): { literal: string; singleLine: boolean } {
  return { literal: requiredLiteral(source), singleLine: !mayMatchNewline(source) };
}

export class PatternError extends Error {
  override name = 'PatternError';
}

export interface CompiledPattern {
  readonly source: string;
  /** A substring every match contains, or '' when none could be proven. */
  readonly literal: string;
  /** False when a match may span lines (the pattern can match "\n"). */
  readonly singleLine: boolean;
  /** The matched text at the end of `text`, or null. */
  matchEnd(text: string): string | null;
}

export function compilePattern(source: string): CompiledPattern {
  // `$` without the multi-line flag is the end of the text, like NPD's `\z`.
  const anchored = `(?:${source})$`;
  // Parsed and analysed now (the syntax check: re2js's compiler only fails on its own bugs after the
  // parser) unless the build already did it for this very pattern, and compiled once a line gets past the
  // literal. Most rules of a large library never match on a given node; a compiled program costs ~10 KiB
  // of heap; and parsing, or even scanning for literals, every shipped pattern at each start is enough
  // work for V8 to bring in its optimizing compiler (+4.8 MiB of resident binary pages in an idle daemon,
  // docs/benchmarks.md).
  const known = CHECKED.get(patternKey(source));
  if (!known) {
    try {
      new RE2Set().add(anchored);
    } catch (err) {
      throw new PatternError(`invalid RE2 pattern ${JSON.stringify(source)}: ${(err as Error).message}`);
    }
  }
  const { literal, singleLine } = known ? { literal: known[0], singleLine: known[1] } : analysePattern(source);
  let re: RE2JS | undefined;
  return {
    source,
    literal,
    singleLine,
    matchEnd(text) {
      re ??= RE2JS.compile(anchored);
      const m = re.matcher(text);
      return m.find() ? m.group() : null;
    },
  };
}

// Escapes that stand for themselves.
const ESCAPED_LITERAL = new Set('\\.+*?()|[]{}^$/-#&~ :,=<>!@%\'"`;'.split(''));

type Atom = { char: string | undefined; quantifier: string };

/** Splits the top level of a pattern into atoms (a literal character or anything else) with quantifiers. */
function topLevelAtoms(source: string): Atom[] | undefined {
  const atoms: Atom[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    let char: string | undefined;
    if (c === '\\') {
      const next = source[i + 1];
      char = next !== undefined && ESCAPED_LITERAL.has(next) ? next : undefined;
      i += 2;
    } else if (c === '[') {
      let j = i + 1;
      if (source[j] === '^') j++;
      if (source[j] === ']') j++;
      while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
      i = j + 1;
    } else if (c === '(') {
      let depth = 0;
      let j = i;
      for (; j < source.length; j++) {
        if (source[j] === '\\') j++;
        else if (source[j] === '(') depth++;
        else if (source[j] === ')' && --depth === 0) break;
      }
      i = j + 1;
    } else if (c === '|') {
      return undefined; // top-level alternation: no literal is required
    } else if ('*+?{'.includes(c)) {
      return undefined; // a quantifier with nothing before it: not a pattern we reason about
    } else {
      char = '.^$'.includes(c) ? undefined : c;
      i++;
    }
    const start = i;
    if ('*+?'.includes(source[i] ?? '')) i++;
    else if (source[i] === '{') {
      const close = source.indexOf('}', i);
      if (close > 0) i = close + 1;
    }
    if (i > start && source[i] === '?') i++; // lazy
    atoms.push({ char, quantifier: source.slice(start, i) });
  }
  return atoms;
}

/**
 * The longest run of plain characters in the pattern's top-level sequence: every match contains it.
 * Conservative: flags, top-level alternation or anything unusual give '' (no prefilter).
 */
export function requiredLiteral(source: string): string {
  // Case-insensitive parts (?i) make any literal unreliable.
  if (/\(\?[a-zA-Z-]*i/.test(source)) return '';
  const atoms = topLevelAtoms(source);
  if (!atoms) return '';
  let best = '';
  let run = '';
  const end = (): void => {
    if (run.length > best.length) best = run;
    run = '';
  };
  for (const { char, quantifier } of atoms) {
    if (char === undefined) {
      end();
    } else if (quantifier === '') {
      run += char;
    } else if (quantifier.startsWith('+') || /^\{[1-9]/.test(quantifier)) {
      // Required at least once, but what follows is not contiguous with the first occurrence.
      run += char;
      end();
    } else {
      end(); // optional: *, ?, {0,…}
    }
  }
  end();
  return best;
}

/** Whether a match could contain "\n": explicit \n, \s, negated classes, \D \W \S, (?s), \p, \C. */
function mayMatchNewline(source: string): boolean {
  return /\\n|\\s|\\S|\\D|\\W|\[\^|\(\?[a-zA-Z]*s|\\p|\\P|\\C|\\x0[aA]|\\012|\\x\{0*[aA]\}/.test(source);
}
