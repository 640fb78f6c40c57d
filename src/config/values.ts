// Value types of the config schema: each parses one ini string into a typed value or says why not.
import { MAX_TIMER_MS } from '../system/scheduler';

export interface ValueType<T> {
  /** Human description used in error messages, e.g. "a duration like 30s". */
  readonly expects: string;
  parse(raw: string): T;
}

/** Thrown by a ValueType; the loader adds file:line and the key. */
export class ValueError extends Error {
  override name = 'ValueError';
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses "500ms", "30s", "2m", "1h30m" (systemd style) into milliseconds. */
export function parseDuration(raw: string): number {
  const text = raw.trim();
  const part = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(text); match; match = part.exec(text)) {
    total += Number(match[1]) * (DURATION_UNITS[match[2] as string] as number);
    consumed = part.lastIndex;
    while (text[consumed] === ' ') consumed++;
    part.lastIndex = consumed;
  }
  if (text === '' || consumed !== text.length) {
    throw new ValueError(`"${raw}" is not a duration (use e.g. 500ms, 30s, 2m, 1h30m)`);
  }
  return Math.round(total);
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** Parses "512Mi", "2G", "4096" into bytes (Kubernetes quantity suffixes). */
export function parseBytes(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(raw.trim());
  if (!match) throw new ValueError(`"${raw}" is not a size (use e.g. 4096, 512Mi, 2G)`);
  return Math.round(Number(match[1]) * (BYTE_UNITS[match[2] ?? ''] as number));
}

/** The bound for a duration no timer waits on: any span a date can be computed from. */
export const NO_TIMER_MAX = Number.MAX_SAFE_INTEGER;

/**
 * Bounded by MAX_TIMER_MS unless `max` says otherwise: pass a larger `max` only for a value no timer waits on
 * (e.g. NO_TIMER_MAX for a span of time looked back over).
 */
export function duration(opts: { min?: number; max?: number } = {}): ValueType<number> {
  return {
    expects: 'a duration like 30s',
    parse(raw) {
      const ms = parseDuration(raw);
      if (opts.max === undefined) checkTimerLimit(ms);
      checkRange(ms, opts.min, opts.max, formatDuration);
      return ms;
    },
  };
}

/** Refuses a duration no timer can wait for, naming the maximum. */
export function checkTimerLimit(ms: number): void {
  if (ms > MAX_TIMER_MS) {
    throw new ValueError(`${formatDuration(ms)} is above the maximum ${MAX_TIMER_MS}ms (about 24.8 days, the longest a timer can wait)`);
  }
}

export function bytes(opts: { min?: number } = {}): ValueType<number> {
  return {
    expects: 'a size like 512Mi',
    parse(raw) {
      const n = parseBytes(raw);
      checkRange(n, opts.min, undefined, String);
      return n;
    },
  };
}

export const percent: ValueType<number> = {
  expects: 'a percentage like 85%',
  parse(raw) {
    const match = /^(\d+(?:\.\d+)?)\s*%$/.exec(raw.trim());
    if (!match) throw new ValueError(`"${raw}" is not a percentage (use e.g. 85%)`);
    const n = Number(match[1]);
    checkRange(n, 0, 100, (v) => `${v}%`);
    return n;
  },
};

export function integer(opts: { min?: number; max?: number } = {}): ValueType<number> {
  return {
    expects: 'a whole number',
    parse(raw) {
      if (!/^-?\d+$/.test(raw.trim())) throw new ValueError(`"${raw}" is not a whole number`);
      const n = Number(raw);
      checkRange(n, opts.min, opts.max, String);
      return n;
    },
  };
}

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

export const boolean: ValueType<boolean> = {
  expects: 'true or false',
  parse(raw) {
    const v = raw.trim().toLowerCase();
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
    throw new ValueError(`"${raw}" is not a boolean (use true or false)`);
  },
};

export function oneOf<const T extends string>(choices: readonly T[]): ValueType<T> {
  return {
    expects: `one of ${choices.join(', ')}`,
    parse(raw) {
      const v = raw.trim();
      if ((choices as readonly string[]).includes(v)) return v as T;
      throw new ValueError(`"${raw}" is not one of ${choices.join(', ')}`);
    },
  };
}

export const absolutePath: ValueType<string> = {
  expects: 'an absolute path',
  parse(raw) {
    const v = raw.trim();
    if (!v.startsWith('/')) throw new ValueError(`"${raw}" is not an absolute path`);
    return v;
  },
};

export const text: ValueType<string> = {
  expects: 'text',
  parse: (raw) => raw.trim(),
};

/** A value that may be left empty ("" means unset). */
export function optional<T>(inner: ValueType<T>): ValueType<T | undefined> {
  return {
    expects: `${inner.expects}, or nothing`,
    parse: (raw) => (raw.trim() === '' ? undefined : inner.parse(raw)),
  };
}

/** A NodeCondition type such as DiskFull: a letter, then letters and digits. */
export const conditionType: ValueType<string> = {
  expects: 'a condition type like DiskFull',
  parse(raw) {
    const v = raw.trim();
    if (!/^[A-Za-z][A-Za-z0-9]{0,62}$/.test(v)) throw new ValueError(`"${raw}" is not a condition type (letters and digits, e.g. DiskFull)`);
    return v;
  },
};

/** A journal match "FIELD=value" (journald field names: upper case, digits, underscores). */
export const journalMatch: ValueType<string> = {
  expects: 'a journal match like _TRANSPORT=kernel',
  parse(raw) {
    const v = raw.trim();
    if (!/^[A-Z0-9_]+=./.test(v)) throw new ValueError(`"${raw}" is not a journal match FIELD=value (e.g. SYSLOG_IDENTIFIER=kubelet)`);
    return v;
  },
};

/** A comma-separated list; an empty value is an empty list. */
export function listOf<T>(item: ValueType<T>): ValueType<T[]> {
  return {
    expects: `a comma-separated list of ${item.expects}`,
    parse(raw) {
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) => item.parse(s));
    },
  };
}

function checkRange(n: number, min: number | undefined, max: number | undefined, show: (v: number) => string): void {
  if (min !== undefined && n < min) throw new ValueError(`${show(n)} is below the minimum ${show(min)}`);
  if (max !== undefined && n > max) throw new ValueError(`${show(n)} is above the maximum ${show(max)}`);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
