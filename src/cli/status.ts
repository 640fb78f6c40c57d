// `status`: asks the running daemon for its live state and prints it.
import { join } from 'node:path';
import { loadConfig } from '../config/load';
import { fetchStatus } from '../outputs/status/client';
import type { RecordedResult } from '../engine/check-table';
import { colourStatus, formatTable } from './table';

export interface StatusOptions {
  configDir?: string;
  socket?: string;
  json?: boolean;
}

interface DaemonStatus {
  version: string;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  config: { generation: number; files: string[]; lastReload: { at: string; ok: boolean; error?: string } | null };
  checks: RecordedResult[];
}

export async function status(options: StatusOptions, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const socket =
    options.socket ??
    join(loadConfig(options.configDir, { required: options.configDir !== undefined }).config.agent.runtime_dir, 'agent.sock');
  const state = (await fetchStatus(socket)) as DaemonStatus;
  if (options.json) {
    out.write(`${JSON.stringify(state)}\n`);
    return 0;
  }
  const colour = out.isTTY === true;
  const reload = state.config.lastReload;
  const lines = [
    `node-health-agent ${state.version}, pid ${state.pid}, up ${formatUptime(state.uptimeSeconds)} (since ${state.startedAt})`,
    `config generation ${state.config.generation} from ${state.config.files.join(', ') || 'defaults'}` +
      (reload ? `; last reload ${reload.at} ${reload.ok ? 'applied' : `rejected: ${reload.error?.split('\n')[0]}`}` : ''),
    '',
    formatTable(
      ['STATUS', 'CHECK', 'SUBJECT', 'REASON', 'SINCE', 'MESSAGE'],
      state.checks.map((r) => [colourStatus(r.status, colour), `${r.component}/${r.check}`, r.subject ?? '', r.reason, r.at, r.message]),
    ),
  ];
  out.write(`${lines.join('\n')}\n`);
  return 0;
}

function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d}d${h}h` : h > 0 ? `${h}h${m}m` : `${m}m${seconds % 60}s`;
}
