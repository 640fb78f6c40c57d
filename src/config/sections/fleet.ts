// Cluster-wide coordination of disruptive repairs: the optional coordination identity and the Lease
// semaphore that bounds how many nodes are disrupted at once. Why the defaults: docs/fleet.md.
import { key } from '../key';
import {
  absolutePath,
  boolean,
  conditionType,
  duration,
  integer,
  listOf,
  optional,
  percent,
  ValueError,
  type ValueType,
} from '../values';

/** A Kubernetes namespace name: an RFC 1123 label. */
const namespaceName: ValueType<string> = {
  expects: 'a namespace name like node-health',
  parse(raw) {
    const v = raw.trim();
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v)) {
      throw new ValueError(`"${raw}" is not a namespace name (lowercase letters, digits and '-', at most 63)`);
    }
    return v;
  },
};

/** The API server's https:// URL. */
const httpsUrl: ValueType<string> = {
  expects: 'an https:// URL like https://10.0.0.1:6443',
  parse(raw) {
    const v = raw.trim();
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      throw new ValueError(`"${raw}" is not a URL (e.g. https://10.0.0.1:6443)`);
    }
    if (url.protocol !== 'https:') throw new ValueError(`"${raw}" is not an https:// URL; the token is sent only over TLS`);
    return v.replace(/\/+$/, '');
  },
};

const DAY = 86_400_000;

export const fleetSections = {
  coordination: {
    enabled: key(
      boolean,
      'false',
      'Coordinate disruptive repairs (cordon, drain, reboot) with the other nodes through Leases; without it they stay disabled.',
    ),
    kubeconfig: key(
      optional(absolutePath),
      '',
      'Kubeconfig of the coordination identity (the ServiceAccount of coordination.yaml); set this or token_file.',
    ),
    token_file: key(
      optional(absolutePath),
      '',
      "A ServiceAccount token for the coordination identity, re-read when it changes; server and CA from server and ca_file, else from the kubelet's kubeconfig.",
    ),
    server: key(optional(httpsUrl), '', "API server for token_file; empty: the kubelet kubeconfig's."),
    ca_file: key(optional(absolutePath), '', "CA bundle that verifies the API server for token_file; empty: the kubelet kubeconfig's."),
    namespace: key(namespaceName, 'node-health', 'Namespace of the slot, gap, breaker and lockout Leases.'),
    slots: key(integer({ min: 1, max: 100 }), '1', 'Nodes that may be disrupted at the same time across the cluster (k).'),
    lease_ttl: key(
      duration({ min: 60_000, max: DAY }),
      '15m',
      'A slot not renewed for this long is free again (its holder died); must cover a reboot, as a rebooting holder cannot renew.',
    ),
    max_clock_skew: key(
      duration({ min: 0, max: 15_000 }),
      '5s',
      'Margin for clocks that disagree: a holder gives up this long before its Lease ends, others take it this long after.',
    ),
    retry_interval: key(
      duration({ min: 5_000, max: 3_600_000 }),
      '30s',
      'A node refused because all slots are busy asks again after about this long (randomized ±50%).',
    ),
    min_gap: key(
      duration({ min: 0, max: DAY }),
      '5m',
      'Least time between one repair starting or finishing anywhere in the cluster and the next one starting.',
    ),
    new_node_grace: key(
      duration({ min: 0, max: DAY }),
      '10m',
      'A node younger than this (from its creationTimestamp) takes no slot and is not counted by the breaker.',
    ),
    reboot_lockout: key(
      duration({ min: 0, max: 30 * DAY }),
      '3h',
      'After a reboot that did not help, the node takes no slot for this long (kept in a Lease, survives restarts).',
    ),
    breaker_max_nodes: key(
      integer({ min: 0, max: 1_000_000 }),
      '2',
      'The breaker halts repairs when more nodes than max(breaker_max_nodes, breaker_max_percent) are unhealthy; this floor lets small pools heal.',
    ),
    breaker_max_percent: key(percent, '10%', 'Share of the nodes that may be unhealthy before the breaker halts repairs.'),
    breaker_conditions: key(
      listOf(conditionType),
      '',
      'Conditions that make a node unhealthy for the breaker besides Ready not True and the condition being repaired.',
    ),
    storm_cooldown: key(
      duration({ min: 0, max: DAY }),
      '30m',
      'Once the breaker has tripped, no node starts a repair for this long, even if fewer nodes are unhealthy.',
    ),
  },
} as const;
