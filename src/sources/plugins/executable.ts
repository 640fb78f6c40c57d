// Whether a plugin executable may be run: it exists, is a regular executable file, and nobody but root
// could have written it or swapped it in its directory (the agent runs it as root).
import { statSync, type Stats } from 'node:fs';
import { checkFileOwnership } from '../../config/load';
import { AgentError, messageOf } from '../../errors';

export interface ExecutableProblem {
  /** missing: not there (yet); insecure: refused for its owner or mode; unusable: there but cannot run. */
  kind: 'missing' | 'insecure' | 'unusable';
  message: string;
}

export function inspectExecutable(path: string): ExecutableProblem | undefined {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing', message: `plugin ${path} not found; install it or fix the path` };
    return { kind: 'unusable', message: `plugin ${path}: ${messageOf(err)}` };
  }
  if (!st.isFile()) return { kind: 'unusable', message: `plugin ${path} is not a regular file` };
  try {
    checkFileOwnership(path, st);
  } catch (err) {
    if (err instanceof AgentError) return { kind: 'insecure', message: `plugin ${err.message}` };
    return { kind: 'unusable', message: `plugin ${path}: ${messageOf(err)}` };
  }
  if ((st.mode & 0o111) === 0) {
    return { kind: 'unusable', message: `plugin ${path} is not executable (mode ${(st.mode & 0o777).toString(8)}; chmod 755 ${path})` };
  }
  return undefined;
}
