// The disruptive ladder put together for a known Node: its own Kubernetes client (the kubelet's
// credentials), the coordination gate, logind for the reboot, and its ledger; and when it may start.
import type { Config } from '../../config/schema';
import { createKubeClient, type KubeClient, type RequestRecord } from '../../outputs/kubernetes';
import { AgentError } from '../../errors';
import { background } from '../../system/background';
import type { CoordinationStatus, EventReport, LadderStatus, Logger, NodeCondition, ReporterStatus, WriteHealth } from '../../types';
import { Coordinator } from '../fleet/coordinator';
import { Ladder } from './ladder';
import { LadderLedger, LadderLedgerError } from './ledger';
import { Login1 } from './login1';
import { NodeApi } from './node-api';
import type { LadderSettings } from './settings';

export interface LadderAssemblyOptions {
  config: Config;
  settings: LadderSettings;
  /** The Node's name, as the reporter resolved it. */
  node: string;
  ledger: LadderLedger;
  log: Logger;
  bootId: string;
  /** Where the ladder's Events go (the agent's event path). */
  event(e: EventReport): void;
  /** Events queued for the API server and not yet sent: before a reboot they get a moment to leave. */
  eventsQueued(): number;
  /** The agent's current view of a condition it owns (the condition table). */
  condition(type: string): NodeCondition | undefined;
  /** Called after every API request of the ladder and of the coordination identity (metrics). */
  onRequest?: (r: RequestRecord) => void;
}

export interface LadderAssembly {
  ladder: Ladder;
  coordinator: Coordinator;
  /** Stops the ladder (a run in progress stays open in its ledger), then coordination and the client. */
  stop(): Promise<void>;
}

/** Builds and starts the ladder and its gate. The ledger stays the caller's to close. */
export function startLadder(o: LadderAssemblyOptions): LadderAssembly {
  const onRequest = o.onRequest ? { onRequest: o.onRequest } : {};
  const client: KubeClient = createKubeClient(o.config.kubernetes, onRequest).client;
  const coordinator = new Coordinator(o.config, o.node, { log: o.log, ...onRequest });
  coordinator.start();
  const ladder = new Ladder({
    settings: o.settings,
    gate: coordinator,
    node: new NodeApi(client, o.node, o.config.kubernetes.field_manager),
    rebooter: new Login1(),
    ledger: o.ledger,
    events: {
      event: (e) => o.event(e),
      // Before a reboot: give the step's Event a moment to reach the API server.
      flush: async (ms) => {
        const until = Date.now() + ms;
        while (Date.now() < until && o.eventsQueued() > 0) await new Promise((r) => setTimeout(r, 50));
      },
    },
    condition: (type) => o.condition(type),
    log: o.log,
    bootId: o.bootId,
  });
  ladder.start();
  return {
    ladder,
    coordinator,
    async stop() {
      await ladder.stop();
      coordinator.stop();
      client.close();
    },
  };
}

export interface DisruptiveRepairOptions extends Omit<LadderAssemblyOptions, 'node' | 'ledger' | 'eventsQueued'> {
  /** Where failed writes of the ladder's ledger are reported. */
  ledgerHealth: WriteHealth;
  /** The Kubernetes reporter; undefined when [kubernetes] is off. */
  reporter: { whenAdopted(): Promise<unknown>; status(): ReporterStatus } | undefined;
  /** The agent is stopping: a ladder whose Node is read only now does not start. */
  stopping(): boolean;
  /** The ladder started (metrics watch it). */
  started?(ladder: Ladder): void;
}

/** The ladder's ledger; one that cannot be read fails the start, as the state directory's problem. */
function openLedger(stateDir: string, health: WriteHealth): LadderLedger {
  try {
    return LadderLedger.open(stateDir, health);
  } catch (err) {
    if (err instanceof LadderLedgerError) throw new AgentError('STATE_DIR_UNWRITABLE', err.message, { cause: err });
    throw err;
  }
}

/**
 * The ladder and its gate, started once the Node is known (after the reporter adopted it). It also
 * starts when disabled if its ledger holds an unfinished run: a reboot it asked for must still be
 * followed up. Throws AgentError (STATE_DIR_UNWRITABLE) when the ledger cannot be read.
 */
export class DisruptiveRepair {
  private readonly ledger: LadderLedger;
  private assembly: LadderAssembly | undefined;

  constructor(o: DisruptiveRepairOptions) {
    const { config, settings, log, reporter } = o;
    const ledger = openLedger(config.agent.state_dir, o.ledgerHealth);
    this.ledger = ledger;
    for (const w of ledger.warnings) log.warning(w, { code: 'LEDGER_LINE_SKIPPED', file: ledger.path });
    if (!settings.enabled && !ledger.unfinished()) return;
    if (!reporter) {
      log.warning('[ladder] is enabled but [kubernetes] is not: the ladder needs the Node, so it does not run');
      return;
    }
    for (const type of settings.conditions.keys()) {
      if (!o.condition(type)) log.warning(`[remediate "${type}"]: this agent reports no condition ${type}, so it never starts a ladder`, { condition: type });
    }
    void background('starting the ladder', async () => {
      await reporter.whenAdopted();
      if (o.stopping()) return;
      this.assembly = startLadder({
        ...o,
        node: reporter.status().nodeName,
        ledger,
        eventsQueued: () => reporter.status().events.queued,
      });
      o.started?.(this.assembly.ladder);
    });
  }

  conditionChanged(c: NodeCondition): void {
    this.assembly?.ladder.conditionChanged(c);
  }

  ladderStatus(): LadderStatus | null {
    return this.assembly?.ladder.status() ?? null;
  }

  coordinationStatus(): CoordinationStatus | null {
    return this.assembly?.coordinator.status() ?? null;
  }

  /** A run in progress stays open in the ledger and the slot is kept: both must outlive our reboot. */
  async stop(): Promise<void> {
    await this.assembly?.stop();
    this.ledger.close();
  }
}
