// Temporary config directories for tests, created with safe permissions like a real /etc/node-health.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-config-'));
  chmodSync(dir, 0o755);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), content, { mode: 0o644 });
  }
  return dir;
}
