// The configuration schema: every section and key the agent accepts, with its type, default and meaning.
// docs/configuration.md and etc/node-health.ini follow this table; a test keeps them in step.
import {
  absolutePath,
  boolean,
  duration,
  listOf,
  oneOf,
  percent,
  type ValueType,
} from './values';

export interface KeySpec<T> {
  readonly type: ValueType<T>;
  /** The default as it would be written in the ini file. */
  readonly default: string;
  readonly doc: string;
}

function key<T>(type: ValueType<T>, def: string, doc: string): KeySpec<T> {
  return { type, default: def, doc };
}

export const schema = {
  agent: {
    log_level: key(oneOf(['error', 'warning', 'info', 'debug']), 'info', 'Least severe level written to the log.'),
    state_dir: key(absolutePath, '/var/lib/node-health', 'Persistent state (cursors, repair ledger).'),
    runtime_dir: key(absolutePath, '/run/node-health', 'Holds the status socket agent.sock.'),
  },
  disk: {
    enabled: key(boolean, 'true', 'Check free space and free inodes of every real filesystem.'),
    interval: key(duration({ min: 1000 }), '30s', 'How often the daemon checks.'),
    space_warning: key(percent, '85%', 'Used space (as df counts it, after reserved blocks) that is a warning.'),
    space_critical: key(percent, '95%', 'Used space that is a problem.'),
    inodes_warning: key(percent, '85%', 'Used inodes that are a warning.'),
    inodes_critical: key(percent, '95%', 'Used inodes that are a problem.'),
    paths: key(
      listOf(absolutePath),
      '/var/lib/kubelet, /var/lib/containerd',
      'Paths always checked (their filesystem), even when it is of a type otherwise skipped.',
    ),
  },
} as const;

export type Schema = typeof schema;
export type SectionName = keyof Schema;
type ValueOf<S> = S extends KeySpec<infer T> ? T : never;
export type Config = { readonly [S in SectionName]: { readonly [K in keyof Schema[S]]: ValueOf<Schema[S][K]> } };

export function sectionNames(): SectionName[] {
  return Object.keys(schema) as SectionName[];
}

export function keysOf(section: SectionName): string[] {
  return Object.keys(schema[section]);
}

export function specOf(section: SectionName, name: string): KeySpec<unknown> | undefined {
  return (schema[section] as Record<string, KeySpec<unknown>>)[name];
}
