// This boot's identity and start time, as the journal records them.
import { readFileSync } from 'node:fs';

/** The boot ID in the journal's _BOOT_ID form (32 hex digits, no dashes). */
export function currentBootId(path = '/proc/sys/kernel/random/boot_id'): string {
  return readFileSync(path, 'utf8').trim().replace(/-/g, '');
}
