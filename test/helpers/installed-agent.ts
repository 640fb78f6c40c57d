// The installed agent in a node in a box, as the fault-matrix tests look at it: its unit's properties,
// `status --json`, its own mount namespace, and the checks every fault row ends with.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { waitFor } from './cluster';
import type { Box } from './box';
import type { NodeBox } from './node';
import type { AgentStatus } from '../../src/types';

export const UNIT = 'node-health-agent';
export const STATE = '/var/lib/node-health';

const kernelLinesScript = join(__dirname, '../../scripts/box/kernel-lines.sh');

export class InstalledAgent {
  constructor(readonly box: NodeBox) {}

  async show(prop: string): Promise<string> {
    return (await this.box.check(['systemctl', 'show', '-P', prop, UNIT])).trim();
  }

  async status(): Promise<AgentStatus | undefined> {
    const r = await this.box.exec(['node-health-agent', 'status', '--json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as AgentStatus) : undefined;
  }

  /** Runs a shell command in the daemon's own mount namespace (its sandbox's view of the state directory). */
  async inUnit(script: string): Promise<string> {
    return this.box.check(['nsenter', '-t', await this.show('MainPID'), '-m', 'sh', '-c', script]);
  }

  healthy(): Promise<AgentStatus> {
    return waitFor('the agent connected with its journal sources alive', async () => {
      const s = await this.status();
      return s?.kubernetes?.connected && s.journal.length > 0 && s.journal.every((j) => j.alive) ? s : undefined;
    }, 60_000);
  }

  /** The same process, never restarted, never killed by its watchdog; if not, why (evidence()) in the output. */
  async sameProcess(t: Test, pid: string, restarts: string): Promise<void> {
    const same = [
      t.equal(await this.show('MainPID'), pid, 'same MainPID'),
      t.equal(await this.show('NRestarts'), restarts, 'NRestarts unchanged'),
      t.equal(await this.show('ActiveState'), 'active'),
    ].every(Boolean);
    const log = await this.box.check(['journalctl', '-u', UNIT, '-o', 'cat', '--no-pager']);
    if (!t.notMatch(log, /Watchdog timeout/, 'the watchdog never fired') || !same) t.comment(await this.evidence());
  }

  /**
   * Why the daemon ended, for a failing test's output: how its last process exited (systemd's Result,
   * exit code or signal) and the unit's last 100 journal lines, systemd's own ("Main process exited",
   * "Watchdog timeout") among them.
   */
  async evidence(): Promise<string> {
    const props = await this.box.exec(['systemctl', 'show', '-p', 'MainPID,NRestarts,ActiveState,Result,ExecMainCode,ExecMainStatus,ExecMainExitTimestamp', UNIT]);
    const log = await this.box.exec(['journalctl', '-u', UNIT, '-o', 'short-precise', '--no-pager', '-n', '100']);
    return `systemctl show ${UNIT}:\n${props.stdout}${props.stderr}\njournalctl -u ${UNIT} -n 100:\n${log.stdout}${log.stderr}`;
  }

  /** The agent's Prometheus metrics, as text. */
  metrics(): Promise<string> {
    return this.box.check(['curl', '-sf', `http://127.0.0.1:${this.box.metricsPort}/metrics`]);
  }

  /** The unit's journal since `since` (a journalctl --since value), one message a line. */
  log(since: string): Promise<string> {
    return this.box.check(['journalctl', '-u', UNIT, '-o', 'cat', '--no-pager', '--since', since]);
  }
}

/** Sums a metric's samples whose labels contain `labels` (e.g. `check="memory/available"`). */
export function metricSum(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Writes `rate` kernel lines a second for `seconds` seconds into the box's journal, cycling through
 * `messages` (scripts/box/kernel-lines.sh).
 */
export async function writeKernelLines(box: Box, rate: number, seconds: number, messages: string[]): Promise<void> {
  await box.check(['bash', '-s', '--', String(rate), String(seconds), ...messages], {
    input: readFileSync(kernelLinesScript),
    timeoutMs: seconds * 1000 + 60_000,
  });
}
