// Reporting to Kubernetes with the kubelet's own credentials, and the Prometheus metrics endpoint.
// What the keys do and why their defaults are what they are: docs/kubernetes.md, docs/metrics.md.
import { isIP } from 'node:net';
import { key } from '../key';
import { absolutePath, boolean, duration, integer, listOf, text, ValueError, type ValueType } from '../values';

/** A Kubernetes field manager name: printable ASCII without spaces, at most 128 characters (API limit). */
const fieldManager: ValueType<string> = {
  expects: 'a name like node-health-agent',
  parse(raw) {
    const v = raw.trim();
    if (!/^[\x21-\x7e]{1,128}$/.test(v)) {
      throw new ValueError(`"${raw}" is not a field manager name (1-128 printable characters, no spaces)`);
    }
    return v;
  },
};

/** An IPv4 or IPv6 address to listen on. */
const ipAddress: ValueType<string> = {
  expects: 'an IP address like 127.0.0.1',
  parse(raw) {
    const v = raw.trim();
    if (isIP(v) === 0) throw new ValueError(`"${raw}" is not an IP address (use e.g. 127.0.0.1 or ::1)`);
    return v;
  },
};

export const kubernetesSections = {
  kubernetes: {
    enabled: key(boolean, 'true', "Report conditions and events on this node's Node object with the kubelet's credentials."),
    kubeconfig_paths: key(
      listOf(absolutePath),
      '/etc/kubernetes/kubelet.conf, /var/lib/kubelet/kubeconfig, /var/lib/rancher/k3s/agent/kubelet.kubeconfig, /var/lib/rancher/rke2/agent/kubelet.kubeconfig',
      "The kubelet's kubeconfig: the first of these files that exists is used (kubeadm, GKE/AKS/EKS, k3s, rke2).",
    ),
    node_name: key(
      text,
      '',
      "The Node to report on. Empty: $NODE_NAME, else the kubelet certificate's system:node:<name>, else the node the API server knows the credentials as, else the hostname.",
    ),
    heartbeat: key(
      duration({ min: 10_000, max: 3_600_000 }),
      '5m',
      'Conditions are written when they change and at least this often (consumers judge staleness by lastHeartbeatTime).',
    ),
    status_burst: key(integer({ min: 1, max: 100 }), '5', 'Condition writes allowed back to back after a quiet period.'),
    status_refill: key(
      duration({ min: 100, max: 3_600_000 }),
      '10s',
      'After the burst, at most one condition write per this interval; changes in between are merged into the next write.',
    ),
    event_burst: key(integer({ min: 1, max: 1000 }), '10', 'Events of one reason sent back to back before the rate limit applies.'),
    event_refill: key(
      duration({ min: 1000 }),
      '1m',
      'After the burst, at most one event of that reason per this interval; the rest are counted and reported in one "suppressed" event.',
    ),
    remove_stale_conditions: key(
      boolean,
      'true',
      'Delete condition types this agent wrote earlier but no longer owns (e.g. a rule removed from the config).',
    ),
    field_manager: key(fieldManager, 'node-health-agent', 'fieldManager of every write and the product in the User-Agent header.'),
    request_timeout: key(duration({ min: 1000, max: 300_000 }), '10s', 'An API request that takes longer is abandoned and retried.'),
    retry_max: key(
      duration({ min: 1000, max: 3_600_000 }),
      '2m',
      'Longest wait between retries after API errors (exponential back-off with jitter, from 1s).',
    ),
  },
  metrics: {
    enabled: key(boolean, 'true', 'Serve Prometheus metrics over HTTP.'),
    address: key(ipAddress, '127.0.0.1', 'Address to listen on; only local scrapers can reach the default.'),
    port: key(integer({ min: 1, max: 65_535 }), '20257', 'TCP port (node-problem-detector uses 20257 too: run one of them).'),
  },
} as const;
