// Container runtime and kubelet health, and their repair over systemd: what is probed, when a failure
// is acted on, how often, and which units may ever be touched. Why the defaults: docs/repair.md.
import { key, probe } from '../key';
import { absolutePath, boolean, duration, integer, listOf, oneOf, ValueError, type ValueType } from '../values';

/** A systemd unit name such as containerd.service (systemd.unit(5): at most 255 characters). */
export const unitName: ValueType<string> = {
  expects: 'a systemd unit name like containerd.service',
  parse(raw) {
    const v = raw.trim();
    if (!/^[A-Za-z0-9:_.\\@-]{1,246}\.(service|socket|target|timer|path|mount|scope|slice)$/.test(v)) {
      throw new ValueError(`"${raw}" is not a systemd unit name (e.g. containerd.service)`);
    }
    return v;
  },
};

/** An http:// URL (the node's health endpoints are plain HTTP on loopback). */
export const httpUrl: ValueType<string> = {
  expects: 'an http:// URL like http://127.0.0.1:10248/healthz',
  parse(raw) {
    const v = raw.trim();
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      throw new ValueError(`"${raw}" is not a URL (e.g. http://127.0.0.1:10248/healthz)`);
    }
    if (url.protocol !== 'http:') throw new ValueError(`"${raw}" is not an http:// URL`);
    return v;
  },
};

/** Keys shared by the components the agent may restart; defaults differ per component. */
function repairPolicy(d: {
  failure: string;
  cooldown: string;
  backoff: string;
  backoffMax: string;
  max: string;
  window: string;
}) {
  return {
    repair: key(boolean, 'true', 'Repair this component (see [repair] mode); false: report only.'),
    failure_duration: key(duration({ min: 0 }), d.failure, 'How long the component must fail before it is restarted.'),
    cooldown: key(
      duration({ min: 0 }),
      d.cooldown,
      'After the unit (re)started (InactiveExitTimestamp), failing probes are not judged for this long.',
    ),
    backoff: key(duration({ min: 1000 }), d.backoff, 'Wait after a repair before the next one; doubles with each repair in repair_window.'),
    backoff_max: key(duration({ min: 1000 }), d.backoffMax, 'The longest wait between repairs.'),
    max_repairs: key(integer({ min: 1, max: 100 }), d.max, 'Repairs allowed within repair_window; then the agent stops and says so.'),
    repair_window: key(duration({ min: 60_000 }), d.window, 'The sliding window of max_repairs.'),
    restarts: key(integer({ min: 2 }), '5', 'Starts of the unit within restarts_window that set the Frequent…Restart condition.'),
    restarts_window: key(duration({ min: 60_000 }), '20m', 'The sliding window of restarts.'),
  };
}

export const repairSections = {
  repair: {
    mode: key(
      oneOf(['repair', 'dry-run', 'off']),
      'repair',
      'repair: act; dry-run: log and report what would be done, touch nothing; off: detect and report only.',
    ),
    allowed_units: key(
      listOf(unitName),
      'containerd.service, kubelet.service',
      'The only units the agent may restart, kill, start or reset; a component whose unit is not listed is reported, never touched.',
    ),
    job_timeout: key(
      duration({ min: 1000 }),
      '1m',
      'A restart job still running after this long is escalated: SIGKILL to the main process, then start.',
    ),
    legacy_monitors: key(
      oneOf(['report', 'mask']),
      'report',
      'Legacy repair units found (legacy_units): report them, or stop and mask them so two repairers never fight.',
    ),
    legacy_units: key(
      listOf(unitName),
      'containerd-monitor.service, kubelet-monitor.service, kube-container-runtime-monitor.service, health-monitor.service',
      'Units of older health monitors that restart the runtime or the kubelet themselves.',
    ),
  },
  containerd: {
    ...probe('Probe containerd over its socket: Version, CRI runtime status, image listing.', '10s'),
    unit: key(unitName, 'containerd.service', "containerd's systemd unit."),
    socket: key(absolutePath, '/run/containerd/containerd.sock', "containerd's gRPC socket."),
    timeout: key(duration({ min: 100 }), '5s', 'Deadline of each call; a daemon that does not answer in time is unresponsive.'),
    images_slow: key(duration({ min: 100 }), '2s', 'Image listing slower than this is a warning (often disk or I/O pressure).'),
    ...repairPolicy({ failure: '1m', cooldown: '1m', backoff: '2m', backoffMax: '30m', max: '3', window: '1h' }),
  },
  kubelet: {
    ...probe("Probe the kubelet's healthz endpoint.", '10s'),
    unit: key(unitName, 'kubelet.service', "The kubelet's systemd unit."),
    healthz_url: key(httpUrl, 'http://127.0.0.1:10248/healthz', "The kubelet's healthz endpoint (--healthz-bind-address, --healthz-port)."),
    timeout: key(duration({ min: 100 }), '10s', 'A healthz answer that takes longer is a failure.'),
    ...repairPolicy({ failure: '3m', cooldown: '1m', backoff: '5m', backoffMax: '1h', max: '2', window: '1h' }),
  },
  kube_proxy: {
    enabled: key(boolean, 'false', "Probe kube-proxy's livez endpoint and report KubeProxyUnhealthy (it usually runs as a pod: never repaired)."),
    interval: key(duration({ min: 1000 }), '30s', 'How often the daemon checks.'),
    livez_url: key(httpUrl, 'http://127.0.0.1:10256/livez', "kube-proxy's livez endpoint (--healthz-bind-address)."),
    timeout: key(duration({ min: 100 }), '10s', 'A livez answer that takes longer is a failure.'),
  },
} as const;
