// A node in a box set up for the repair tests: the agent's .deb installed and configured as an operator
// does it (an ini file in /etc/node-health/, systemctl), against the box's own systemd, D-Bus and
// containerd; a kubelet stand-in can play kubelet.service on a port of the test's own (boxes share the
// host's network, so each test needs its own port). Only what an operator sees is observed:
// `node-health-agent status --json` and the agent's journal.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AgentStatus, NodeCondition, RuntimeHealthStatus } from '../../src/types';
import { Box, type TeardownHost } from '../helpers/box';
import { ensurePackages } from '../helpers/packages';

const repo = resolve(__dirname, '../..');
export const AGENT_UNIT = 'node-health-agent.service';
const CONFIG_FILE = '/etc/node-health/50-repair-test.ini';
export const STATE_DIR = '/var/lib/node-health';
const STANDIN = '/usr/local/lib/kubelet-standin/standin.js';
const MODE_FILE = '/run/kubelet-standin/mode';

/**
 * Settings every repair test adds to its own unless it has a [metrics] section: the metrics port is the
 * host's (boxes share its network), so an agent serving the default port would collide with the agents
 * of other boxes and of other tests; a test that scrapes sets a free port of its own.
 */
const COMMON_INI = '[metrics]\nenabled = false\n';

export { freePort } from '../helpers/net';

/** A condition change or an event, as the agent logged it to the journal. */
export interface Rec {
  /** When journald received the entry (__REALTIME_TIMESTAMP), in ms since the epoch. */
  t: number;
  /** The agent process that logged it. */
  pid: string;
  kind: 'condition' | 'event';
  type?: string;
  status?: string;
  reason: string;
  message: string;
  source?: string;
}

export interface UnitShow {
  [property: string]: string;
}

/** A journal entry's fields; journalctl -o json prints a value that is not printable UTF-8 as bytes. */
export type JournalEntry = Record<string, string>;

/**
 * Condition changes ("condition T is now S: R (M)", NODE_HEALTH_CONDITION) and events ("R: M",
 * NODE_HEALTH_EVENT) from the agent's journal entries (src/agent.ts conditionChanged, recordEvent).
 * Other entries carry NODE_HEALTH_CONDITION too (a component's own verdict), so the text decides.
 */
function toRec(e: JournalEntry): Rec | undefined {
  const t = Math.floor(Number(e.__REALTIME_TIMESTAMP) / 1000);
  const pid = e._PID ?? '';
  const message = e.MESSAGE ?? '';
  const m = /^condition (\S+) is now (\S+): (\S+)(?: \(([\s\S]*)\))?$/.exec(message);
  if (m && e.NODE_HEALTH_CONDITION === m[1]) {
    return { t, pid, kind: 'condition', type: m[1], status: m[2], reason: m[3] as string, message: m[4] ?? '' };
  }
  if (e.NODE_HEALTH_EVENT !== undefined && message.startsWith(`${e.NODE_HEALTH_EVENT}: `)) {
    const reason = e.NODE_HEALTH_EVENT;
    return { t, pid, kind: 'event', reason, message: message.slice(reason.length + 2), source: e.NODE_HEALTH_SOURCE ?? '' };
  }
  return undefined;
}

export class RepairNode {
  private constructor(
    readonly box: Box,
    private readonly deb: string,
  ) {}

  static async up(t: TeardownHost, prefix: string): Promise<RepairNode> {
    const { deb } = ensurePackages();
    const box = await Box.up(t, prefix);
    await box.check(['mkdir', '-p', '/usr/local/lib/kubelet-standin', '/run/kubelet-standin']);
    await box.copyIn(join(repo, 'test/fixtures/kubelet-standin/standin.js'), STANDIN);
    await box.copyIn(deb, '/var/tmp/agent.deb');
    return new RepairNode(box, deb);
  }

  async sh(script: string, timeoutMs?: number): Promise<string> {
    return this.box.check(['sh', '-c', script], timeoutMs ? { timeoutMs } : {});
  }

  /**
   * Writes the test's ini file (root-owned, 0644, as the loader requires) next to the shipped ones.
   * The [repair] and component sections are read at start only: a change needs a restart of the agent.
   */
  async writeConfig(ini: string): Promise<void> {
    await this.box.check(['sh', '-c', `umask 022; mkdir -p /etc/node-health && cat > ${CONFIG_FILE}`], { input: /^\[metrics\]$/m.test(ini) ? ini : `${COMMON_INI}${ini}` });
  }

  /** Installs the agent's .deb with `ini` in place; the package enables and starts the service. */
  async install(ini: string): Promise<void> {
    await this.writeConfig(ini);
    const res = await this.box.exec(['dpkg', '-i', '/var/tmp/agent.deb'], { timeoutMs: 120_000 });
    if (res.code !== 0) throw new Error(`${this.box.name}: dpkg -i ${this.deb} exited ${res.code}: ${res.stderr}`);
    await this.until('the agent to be active', async () => (await this.show(AGENT_UNIT, 'ActiveState')).ActiveState === 'active', 30_000);
  }

  /** Installs the stand-in as kubelet.service listening on `port`, and starts it. */
  async installKubelet(port: number, restart: 'always' | 'no' = 'always'): Promise<void> {
    const unit = readFileSync(join(repo, 'test/fixtures/kubelet-standin/kubelet.service'), 'utf8')
      .replaceAll('@NODE@', process.execPath)
      .replaceAll('@SCRIPT@', STANDIN)
      .replaceAll('@PORT@', String(port))
      .replaceAll('@RESTART@', restart);
    await this.box.check(['sh', '-c', 'cat > /etc/systemd/system/kubelet.service'], { input: unit });
    await this.box.check(['systemctl', 'daemon-reload']);
    await this.box.check(['systemctl', 'start', 'kubelet.service']);
  }

  /** Sets the stand-in's mode: '' (healthy), 'unhealthy', 'hang', 'ignore-term', or several. */
  async kubeletMode(mode: string): Promise<void> {
    await this.box.check(['sh', '-c', `cat > ${MODE_FILE}`], { input: mode });
  }

  /** `systemctl start`: the unit is Type=notify, so this returns once the agent is READY. */
  async startAgent(): Promise<void> {
    await this.box.check(['systemctl', 'start', AGENT_UNIT]);
  }

  async stopAgent(): Promise<void> {
    await this.box.check(['systemctl', 'stop', AGENT_UNIT]);
  }

  /**
   * SIGKILL, as a crash or the OOM killer would; returns the killed process's PID and the unit's
   * NRestarts. The shipped unit (Restart=always) has systemd start the agent again after RestartSec.
   */
  async killAgent(): Promise<{ pid: string; nRestarts: number }> {
    const before = await this.show(AGENT_UNIT, 'MainPID', 'NRestarts');
    await this.box.check(['systemctl', 'kill', '--signal=KILL', AGENT_UNIT]);
    await this.until('the agent to be gone', async () => (await this.show(AGENT_UNIT, 'MainPID')).MainPID !== before.MainPID, 10_000);
    return { pid: before.MainPID as string, nRestarts: Number(before.NRestarts) };
  }

  /** The agent's condition changes and events since `since` (ms), oldest first. */
  async records(since = 0): Promise<Rec[]> {
    const entries = await this.journal(`--since=@${Math.floor(since / 1000)}`);
    return entries.flatMap((e) => {
      const r = toRec(e);
      return r && r.t >= since ? [r] : [];
    });
  }

  /** Polls the records from `since` (ms) on until `pred` holds. */
  async waitFor(what: string, pred: (recs: Rec[]) => boolean, timeoutMs: number, since = 0): Promise<Rec[]> {
    let recs: Rec[] = [];
    await this.until(what, async () => {
      recs = await this.records(since);
      return pred(recs);
    }, timeoutMs);
    return recs;
  }

  /** `node-health-agent status --json`, run inside the node. */
  async status(): Promise<AgentStatus> {
    return JSON.parse(await this.box.check(['node-health-agent', 'status', '--json'])) as AgentStatus;
  }

  /** The runtime health part of status (the daemon runs it whenever a component is enabled). */
  async runtime(): Promise<RuntimeHealthStatus> {
    const { runtime } = await this.status();
    if (!runtime) throw new Error(`${this.box.name}: status has no runtime part: no component is enabled`);
    return runtime;
  }

  /** The condition of `type` as the agent holds it now. */
  async condition(type: string): Promise<NodeCondition | undefined> {
    return (await this.status()).conditions.find((c) => c.type === type);
  }

  /** Waits until the agent holds condition `type` with `status`; returns it. */
  async untilCondition(type: string, status: string, timeoutMs: number): Promise<NodeCondition> {
    let c: NodeCondition | undefined;
    await this.until(`${type} ${status}`, async () => (c = await this.condition(type))?.status === status, timeoutMs);
    return c as NodeCondition;
  }

  /** Waits until the agent judges each of `components` healthy (its probe answered, the unit runs). */
  async untilHealthy(components: string[], timeoutMs: number): Promise<void> {
    await this.until(`${components.join(' and ')} healthy`, async () => {
      const runtime = (await this.status()).runtime;
      return components.every((name) => runtime?.components.find((c) => c.name === name)?.health.state === 'healthy');
    }, timeoutMs);
  }

  async show(unit: string, ...props: string[]): Promise<UnitShow> {
    const out = await this.box.check(['systemctl', 'show', unit, ...props.map((p) => `--property=${p}`)]);
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  /** The agent's own journal entries (fields as journald stores them) that match `args` too. */
  async journal(...args: string[]): Promise<JournalEntry[]> {
    const out = await this.box.check(['journalctl', '--no-pager', '-o', 'json', `_SYSTEMD_UNIT=${AGENT_UNIT}`, ...args]);
    return out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) =>
        Object.fromEntries(
          Object.entries(JSON.parse(l) as Record<string, string | number[]>).map(([k, v]) => [k, Array.isArray(v) ? Buffer.from(v).toString('utf8') : v]),
        ),
      );
  }

  /** What the agent and systemd said last, for a failure message. */
  async diagnostics(): Promise<string> {
    const journal = await this.box.exec(['journalctl', '--no-pager', '-o', 'short-precise', '-n', '30', `--unit=${AGENT_UNIT}`]);
    const systemd = await this.box.exec(['journalctl', '--no-pager', '-o', 'short-monotonic', '-n', '15', '_PID=1']);
    return `agent journal:\n${journal.stdout}${journal.stderr}\nsystemd:\n${systemd.stdout}`;
  }

  async until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await probe()) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.box.name}: timed out after ${timeoutMs} ms waiting for ${what}\n${await this.diagnostics()}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

/** The last condition record of `type`. */
export function lastCondition(recs: Rec[], type: string): Rec | undefined {
  return recs.filter((r) => r.kind === 'condition' && r.type === type).at(-1);
}

/** The event records with `reason`. */
export function events(recs: Rec[], reason: string): Rec[] {
  return recs.filter((r) => r.kind === 'event' && r.reason === reason);
}
