// The disruptive ladder put together for a known Node: its own Kubernetes client (the kubelet's
// credentials), the coordination gate, logind for the reboot, and the ledger the caller opened.
import type { Config } from '../../config/schema';
import { createKubeClient, type KubeClient, type RequestRecord } from '../../outputs/kubernetes';
import type { EventReport, Logger, NodeCondition } from '../../types';
import { Coordinator } from '../fleet/coordinator';
import { Ladder } from './ladder';
import type { LadderLedger } from './ledger';
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
