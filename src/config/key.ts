// Building blocks of the schema: a key's type, default and meaning. Sections live in schema.ts or, for
// larger areas, in sections/<area>.ts spread into it.
import { boolean, conditionType, duration, integer, optional, type ValueType } from './values';

export interface KeySpec<T> {
  readonly type: ValueType<T>;
  /** The default as it would be written in the ini file; undefined when the key must be set. */
  readonly default: string | undefined;
  readonly doc: string;
}

export function key<T>(type: ValueType<T>, def: string, doc: string): KeySpec<T> {
  return { type, default: def, doc };
}

/** A key without a default, for named sections such as [rule "OOMKilling"]: each must set it. */
export function required<T>(type: ValueType<T>, doc: string): KeySpec<T> {
  return { type, default: undefined, doc };
}

/**
 * The keys every periodic check's section starts with. `condition` is the NodeCondition the check's
 * problems set (empty: none); the check's warnings never set it.
 */
export function probe(what: string, interval: string, condition = '') {
  return {
    enabled: key(boolean, 'true', what),
    interval: key(duration({ min: 1000 }), interval, 'How often the daemon checks.'),
    condition: key(
      optional(conditionType),
      condition,
      'NodeCondition set True while the check finds a problem (empty: none; findings still show in status, metrics and the log).',
    ),
    set_after: key(integer({ min: 1, max: 100 }), '2', 'Runs in a row with a problem before the condition turns True.'),
    clear_after: key(integer({ min: 1, max: 100 }), '2', 'Runs in a row without one before the condition turns False again.'),
  };
}
