// Test doubles for probes: captured or hand-made kernel files served through the probes' HostFs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load';
import { settingsOf, type Keys, type SectionSpec, type Values } from '../../../src/config/schema';
import type { HostFs } from '../../../src/sources/probes/procfs';

export const fixture = (name: string): string => readFileSync(join(__dirname, '../../fixtures/proc', name), 'utf8');

/** A probe's settings at their shipped defaults. */
export function defaultsOf<K extends Keys>(section: SectionSpec<K>): Values<K> {
  return settingsOf(loadConfig('/nonexistent/node-health', { sections: [section] }).config, section);
}

function errno(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: fake, open '${path}'`), { code });
}

/**
 * A HostFs holding `files` (path → content, or an errno code like "EACCES" to fail with). Directories
 * exist when a file lies below them; anything else is ENOENT, as the kernel says for a missing file.
 */
export function fakeFs(files: Record<string, string | { errno: string }>): HostFs {
  return {
    read(path) {
      const entry = files[path];
      if (entry === undefined) throw errno('ENOENT', path);
      if (typeof entry !== 'string') throw errno(entry.errno, path);
      return entry;
    },
    list(dir) {
      const prefix = `${dir}/`;
      const names = new Set<string>();
      for (const path of Object.keys(files)) {
        if (path.startsWith(prefix)) names.add(path.slice(prefix.length).split('/')[0] as string);
      }
      if (names.size === 0) throw errno('ENOENT', dir);
      return [...names];
    },
  };
}
