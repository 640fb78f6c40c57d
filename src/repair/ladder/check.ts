// For `diagnose`: whether this node could be cordoned, drained and rebooted by the ladder now, and if
// not, why. Informational: a ladder that cannot run is a warning, never a reason for exit code 1.
import { hostname } from 'node:os';
import type { Config } from '../../config/schema';
import { messageOf } from '../../errors';
import { createKubeClient, resolveNodeName, whoAmI } from '../../outputs/kubernetes';
import type { Logger, Finding, Check } from '../../types';
import { coordinationReadiness } from '../fleet/coordinator';

export function disruptionCheck(config: Config, log: Logger, nodeName?: string): Check {
  return {
    component: 'repair',
    name: 'disruption',
    async run(): Promise<Finding[]> {
      if (!config.ladder.enabled) {
        return [{ status: 'ok', reason: 'LadderOff', message: '[ladder] enabled = false: the agent never cordons, drains or reboots this node' }];
      }
      const types = [...config.named.remediate].filter(([, r]) => r.enabled).map(([type]) => type);
      const client = (() => {
        try {
          return createKubeClient(config.kubernetes).client;
        } catch (err) {
          return messageOf(err);
        }
      })();
      if (typeof client === 'string') {
        return [{ status: 'warning', reason: 'LadderUnavailable', message: `[ladder] is enabled but the ladder needs the node's kubelet credentials: ${client}` }];
      }
      let node: string;
      try {
        await client.credentials.get();
        node = (
          await resolveNodeName({
            flag: nodeName,
            configured: config.kubernetes.node_name,
            env: process.env,
            certificateCN: client.credentials.certificateCommonName(),
            whoAmI: () => whoAmI(client),
            hostname,
          })
        ).name;
      } catch (err) {
        return [{ status: 'warning', reason: 'LadderUnavailable', message: `[ladder] is enabled but this node's name cannot be told: ${messageOf(err)}` }];
      } finally {
        client.close();
      }
      const s = await coordinationReadiness(config, node, { log });
      const ladder = `ladder for ${types.join(', ') || 'no condition (no [remediate] section)'}${config.ladder.dry_run ? ' (dry run)' : ''}`;
      if (s.ready) {
        return [{ status: 'ok', reason: 'LadderReady', message: `${ladder}: coordinated as ${s.identity} in namespace ${s.namespace}, ${s.slots} slot(s)` }];
      }
      return [{ status: 'warning', reason: 'CoordinationUnavailable', message: `${ladder} cannot disrupt node ${node}: ${s.reason}` }];
    },
  };
}
