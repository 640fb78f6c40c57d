// The agent's native addon (src/native): sd_notify, the watchdog interval and structured journal entries.
// In the packages the addon sits beside the bundle; running from source it is the build's
// dist/node_health_native.node (npm run build:native).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, resolve } from 'node:path';
import { AgentError, messageOf } from '../errors';

export interface Native {
  /** sd_notify(3): true when NOTIFY_SOCKET was set and the message sent; throws when sending failed. */
  notify(state: string): boolean;
  /** The watchdog interval the service manager set for this process in µs, or 0 when it is off. */
  watchdogUsec(): number;
  /** One journal entry; names are journald field names (MESSAGE, PRIORITY, NODE_HEALTH_CHECK, ...). */
  journalSend(fields: Record<string, string>): void;
}

const ADDON = 'node_health_native.node';
const EXPORTS = ['notify', 'watchdogUsec', 'journalSend'] as const;

let cached: Native | undefined;

/** Where the addon may be, in order: beside the running bundle, then (running from source) the build output. */
function addonCandidates(): string[] {
  const paths = [join(__dirname, ADDON)];
  // From source this file is src/system/native.ts; the bundle is a .js file.
  if (extname(__filename) === '.ts') paths.push(resolve(__dirname, '../../dist', ADDON));
  return paths;
}

export function loadNative(): Native {
  if (cached) return cached;
  // createRequire keeps the bundler from resolving the path at build time (the addon is not bundled).
  const load = createRequire(__filename);
  const tried: string[] = [];
  for (const path of addonCandidates()) {
    if (!existsSync(path)) {
      tried.push(`${path} (not found)`);
      continue;
    }
    let mod: Record<string, unknown>;
    try {
      mod = load(path) as Record<string, unknown>;
    } catch (err) {
      tried.push(`${path} (${messageOf(err).split('\n')[0]})`);
      continue;
    }
    const missing = EXPORTS.filter((name) => typeof mod[name] !== 'function');
    if (missing.length > 0) {
      tried.push(`${path} (not this agent's addon: no ${missing.join(', ')})`);
      continue;
    }
    cached = mod as unknown as Native;
    return cached;
  }
  throw new AgentError(
    'NATIVE_UNAVAILABLE',
    `native addon could not be loaded from ${tried.join('; ')}; run \`npm run build:native\` (from source) or reinstall the package`,
  );
}
