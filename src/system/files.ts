// File system helpers with the failure modes a daemon needs.
import { mkdirSync } from 'node:fs';
import { resolve, sep } from 'node:path';

/**
 * mkdir -p that fails on the first component it cannot create. Node's own recursive mkdir loops
 * forever when a parent exists but refuses new entries with ENOENT (e.g. under /proc).
 */
export function makeDirs(path: string, mode: number): void {
  const parts = resolve(path).split(sep).filter(Boolean);
  let current = '';
  for (const part of parts) {
    current += `${sep}${part}`;
    try {
      mkdirSync(current, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
