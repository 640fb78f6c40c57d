// The same probes and verdicts as the daemon, once, for `diagnose`: nothing is repaired, no state kept.
// The units are read over a D-Bus connection opened for the run and closed after it.
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema';
import type { Check, CheckStatus, Finding, Probe, RuntimeProbes } from '../types';
import { SystemdBus } from '../system/systemd/systemd-bus';
import { UnitWatcher, type UnitState } from '../system/systemd/unit-watcher';
import { judge, type HealthState } from './policy';

const BUS_TIMEOUT_MS = 3000;

const STATUS_OF: Record<HealthState, CheckStatus> = {
  healthy: 'ok',
  failing: 'problem',
  settling: 'warning',
  absent: 'warning',
  unknown: 'unknown',
};

interface UnitsRead {
  states: Map<string, UnitState>;
  error?: string;
}

/** Reads the units' states over a fresh connection; an unreachable bus is an error, not an exception. */
async function readUnits(units: string[], busAddress: string | undefined): Promise<UnitsRead> {
  const bus = new SystemdBus(busAddress ? { address: busAddress, reconnectMaxMs: 500 } : { reconnectMaxMs: 500 });
  const states = new Map<string, UnitState>();
  try {
    await bus.open(BUS_TIMEOUT_MS);
    const watcher = new UnitWatcher(bus, units);
    await watcher.refreshAll();
    for (const u of units) {
      const s = watcher.get(u);
      if (s) states.set(u, s);
    }
    return { states };
  } catch (err) {
    return { states, error: err instanceof Error ? err.message : String(err) };
  } finally {
    bus.stop();
  }
}

function componentCheck(
  component: string,
  section: string,
  title: string,
  unit: string | undefined,
  probe: () => Promise<Probe>,
  busAddress: string | undefined,
): Check {
  return {
    component,
    name: 'health',
    async run() {
      const [p, units] = await Promise.all([probe(), unit ? readUnits([unit], busAddress) : Promise.resolve(undefined)]);
      const state = unit ? units?.states.get(unit) : undefined;
      // One-shot: a cooldown needs history, so a unit that just started is judged like any other.
      const health = judge({
        title,
        unitName: unit ?? component,
        section,
        unit: state,
        probe: p.result,
        cooldownMs: 0,
        monoNowUs: 0,
      });
      const findings: Finding[] = [{ subject: unit ?? '', status: STATUS_OF[health.state], reason: health.reason, message: health.message }];
      if (units?.error && (busAddress !== undefined || existsSync('/run/systemd/system'))) {
        findings.push({ subject: unit ?? '', status: 'unknown', reason: 'UnitStateUnknown', message: `cannot read ${unit} over D-Bus: ${units.error}` });
      }
      // The probe's own findings, less the failure the verdict already states.
      findings.push(...p.findings.filter((f) => !(f.status === 'problem' && f.reason === health.reason)));
      return health.state === 'absent' ? findings.filter((f) => f.status !== 'problem') : findings;
    },
  };
}

function legacyCheck(config: Config, busAddress: string | undefined): Check {
  return {
    component: 'systemd',
    name: 'legacy-monitors',
    async run() {
      const units = config.repair.legacy_units;
      // sd_booted(3): without systemd as init there are no units, legacy or not (a build host, a container).
      if (busAddress === undefined && !existsSync('/run/systemd/system')) {
        return [{ status: 'ok', reason: 'SystemdNotRunning', message: 'systemd is not running on this host: no legacy monitor units to check' }];
      }
      const read = await readUnits(units, busAddress);
      if (read.error) return [{ status: 'unknown', reason: 'UnitStateUnknown', message: `cannot read units over D-Bus: ${read.error}` }];
      const found = units.flatMap((u) => {
        const s = read.states.get(u);
        return s && s.loadState === 'loaded' && s.unitFileState !== 'masked' ? [s] : [];
      });
      if (found.length === 0) return [{ status: 'ok', reason: 'NoLegacyMonitor', message: `none of ${units.join(', ')} is installed` }];
      return found.map((s) => ({
        subject: s.name,
        status: 'warning' as const,
        reason: 'LegacyMonitorFound',
        message:
          `${s.name} is installed (${s.activeState}, ${s.unitFileState || 'no unit file state'}) and restarts the runtime or kubelet by ` +
          `itself; set [repair] legacy_monitors = mask, or systemctl disable --now ${s.name}`,
      }));
    },
  };
}

/**
 * The checks `diagnose` runs for the enabled components, and the legacy monitor check. `probes` makes
 * the components' probes (sources/runtime/probes.ts runtimeProbes); each run uses fresh ones and closes
 * them, so a one-shot run leaves no connection open.
 */
export function runtimeChecks(config: Config, probes: () => RuntimeProbes, busAddress?: string): Check[] {
  const checks: Check[] = [];
  const { containerd, kubelet, kube_proxy } = config;
  const once = (probe: (p: RuntimeProbes) => Promise<Probe>) => async (): Promise<Probe> => {
    const p = probes();
    try {
      return await probe(p);
    } finally {
      p.close();
    }
  };
  if (containerd.enabled) {
    checks.push(componentCheck('containerd', 'containerd', 'Containerd', containerd.unit, once((p) => p.containerd()), busAddress));
  }
  if (kubelet.enabled) {
    checks.push(componentCheck('kubelet', 'kubelet', 'Kubelet', kubelet.unit, once((p) => p.kubelet()), busAddress));
  }
  if (kube_proxy.enabled) {
    checks.push(componentCheck('kube-proxy', 'kube_proxy', 'KubeProxy', undefined, once((p) => p.kubeProxy()), busAddress));
  }
  checks.push(legacyCheck(config, busAddress));
  return checks;
}
