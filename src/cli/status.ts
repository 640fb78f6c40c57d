// `status`: asks the running daemon for its live state and prints it.
import { join } from 'node:path';
import { runtimeDirOf } from '../config/load';
import { fetchStatus } from '../outputs/status/client';
import type { AgentStatus } from '../types';
import { colourStatus, formatTable, paint } from './table';

export interface StatusOptions {
  configDir?: string;
  socket?: string;
  json?: boolean;
}

export async function status(options: StatusOptions, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  // A config the daemon rejected still names the socket: the daemon runs on with its last good one.
  const socket = options.socket ?? join(runtimeDirOf(options.configDir, { required: options.configDir !== undefined }), 'agent.sock');
  const state = await fetchStatus(socket);
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
    // What cannot write to the state directory: shown first, it is what an operator must fix.
    ...(state.degraded ?? []).map((d) => paint(`DEGRADED ${d.component} (${d.reason}) since ${d.since}: ${d.message}; kept in memory, retrying`, 'problem', colour)),
    '',
    formatTable(
      ['STATUS', 'CHECK', 'SUBJECT', 'REASON', 'SINCE', 'MESSAGE'],
      state.checks.map((r) => [colourStatus(r.status, colour), `${r.component}/${r.check}`, r.subject ?? '', r.reason, r.at, r.message]),
    ),
  ];
  const k = state.kubernetes;
  if (k) {
    lines.push(
      '',
      `Kubernetes: ${k.connected ? 'connected to' : 'not connected to'} ${k.apiServer || '(no API server yet)'} as ${k.identity || '(unknown identity)'}` +
        ` using ${k.credentials || '(no credentials yet)'}`,
      `  node ${k.nodeName || '?'} (from ${k.nodeNameSource || '?'}); last write ${k.lastWriteAt ?? 'never'}; ${k.pending} changes pending; ` +
        `events sent ${k.events.sent}, suppressed ${k.events.suppressed}, failed ${k.events.failed}`,
    );
    if (k.lastError) lines.push(`  last error: ${k.lastError}`);
  }
  if (state.conditions.length > 0) {
    lines.push(
      '',
      formatTable(
        ['CONDITION', 'STATUS', 'REASON', 'SINCE', 'MESSAGE'],
        state.conditions.map((c) => [c.type, paint(c.status, c.status === 'False' ? 'ok' : 'problem', colour), c.reason, c.lastTransitionTime, c.message]),
      ),
    );
  }
  if (state.journal.length > 0) {
    lines.push(
      '',
      formatTable(
        ['JOURNAL SOURCE', 'ALIVE', 'ENTRIES', 'LAST ENTRY', 'LAG', 'WAKE-UPS', 'LAST ERROR'],
        state.journal.map((j) => [
          j.source,
          j.alive ? 'yes' : 'no',
          String(j.entriesRead),
          j.lastEntryUs === null ? '-' : new Date(j.lastEntryUs / 1000).toISOString(),
          j.lagMs === null ? '-' : `${j.lagMs} ms`,
          j.waitMode,
          j.lastError ?? '',
        ]),
      ),
    );
  }
  const rt = state.runtime;
  if (rt) {
    lines.push(
      '',
      `Runtime health (repair mode ${rt.mode}; systemd bus ${rt.bus.connected ? 'connected' : `not connected: ${rt.bus.lastError}`})`,
      formatTable(
        ['COMPONENT', 'UNIT', 'HEALTH', 'REASON', 'REPAIRS', 'MESSAGE'],
        rt.components.map((c) => [
          c.name,
          c.unit ?? '',
          c.health.state,
          c.health.reason,
          c.repair ? `${c.repair.used}/${c.repair.max}${c.repair.exhausted ? ' exhausted' : ''}` : 'off',
          c.health.message,
        ]),
      ),
    );
    if (rt.lastActions.length > 0) {
      lines.push('Last actions:');
      for (const a of rt.lastActions) {
        const result = a.outcome ? `${a.outcome.result} in ${a.outcome.durationMs} ms` : 'in progress';
        lines.push(`  ${a.at}  ${a.dryRun ? '(dry run) ' : ''}${a.action} ${a.unit}: ${result} (${a.reason})`);
      }
    }
  }
  lines.push('', ...disruption(state));
  if (state.recentEvents.length > 0) {
    lines.push('', 'Recent events:');
    for (const e of state.recentEvents.slice(-10)) lines.push(`  ${e.at}  ${e.reason}${e.count && e.count > 1 ? ` ×${e.count}` : ''}: ${e.message}`);
  }
  out.write(`${lines.join('\n')}\n`);
  return 0;
}

/** The ladder (cordon, drain, reboot) and its coordination: on or off, and why not when it cannot act. */
function disruption(state: AgentStatus): string[] {
  const l = state.ladder;
  if (!l) return ['Disruptive repair: off (no [ladder] run, or the Node is not known yet)'];
  const c = state.coordination;
  const lines = [
    `Disruptive repair: ladder ${l.enabled ? 'on' : 'off'}${l.dryRun ? ' (dry run)' : ''} for ${l.conditions.join(', ') || 'no condition'}; ` +
      (c?.ready ? `coordination ready as ${c.identity} (${c.namespace}, ${c.slots} slots${c.held ? `, holding ${c.held}` : ''})` : `coordination not ready: ${c?.reason ?? 'not started'}`),
  ];
  if (l.active) lines.push(`  running ${l.active.run} for ${l.active.condition}: step ${l.active.step ?? '-'} since ${l.active.stepSince ?? '-'} (Lease ${l.active.lease})`);
  for (const w of l.waiting) lines.push(`  waiting ${w.condition}: ${w.reason}: ${w.message}${w.retryAt ? ` (next try ${w.retryAt})` : ''}`);
  return lines;
}

function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d}d${h}h` : h > 0 ? `${h}h${m}m` : `${m}m${seconds % 60}s`;
}
