// Temperatures of the kernel's thermal zones against each zone's critical trip point: at that point the
// kernel powers the machine off. Zones without a critical trip point are reported but not judged.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { integer } from '../../../config/values';
import type { CheckStatus, Finding, Check } from '../../../types';
import { hostFs, isAbsent, parseNumberFile, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const thermalSection = section({
  name: 'thermal',
  keys: {
    ...probe("Check each thermal zone's temperature against its critical trip point.", '30s'),
    warning_margin: key(integer({ min: 0, max: 200 }), '15', 'Degrees Celsius below the critical trip point that are a warning.'),
    critical_margin: key(integer({ min: 0, max: 200 }), '5', 'Degrees Celsius below the critical trip point that are a problem.'),
  },
  ordered: [['critical_margin', 'warning_margin']],
});
export type ThermalSettings = Values<typeof thermalSection.keys>;

const ROOT = '/sys/class/thermal';

export interface Zone {
  /** "thermal_zone0" */
  name: string;
  /** What it measures, e.g. "x86_pkg_temp", "acpitz". */
  type: string;
  /** Millidegrees Celsius, as sysfs gives them. */
  temp: number;
  critical?: number;
}

function celsius(milli: number): string {
  return `${(milli / 1000).toFixed(1)} °C`;
}

export function judgeZone(z: Zone, cfg: ThermalSettings): Finding {
  const what = `${z.name} (${z.type}) at ${celsius(z.temp)}`;
  if (z.critical === undefined) {
    return { subject: z.name, status: 'ok', reason: 'ThermalOK', message: `${what}; the zone has no critical trip point` };
  }
  const belowCritical = (z.critical - z.temp) / 1000;
  const status: CheckStatus =
    belowCritical <= cfg.critical_margin ? 'problem' : belowCritical <= cfg.warning_margin ? 'warning' : 'ok';
  const reason = status === 'problem' ? 'ThermalCritical' : status === 'warning' ? 'ThermalHot' : 'ThermalOK';
  const figures = `${what}, critical trip point ${celsius(z.critical)}`;
  return {
    subject: z.name,
    status,
    reason,
    message:
      status === 'ok'
        ? figures
        : `${figures}: ${belowCritical.toFixed(1)} °C from the kernel's emergency power-off — check cooling (fans, ` +
          'airflow, heatsinks: sensors, ipmitool sdr) and the load; move workloads off the node',
  };
}

export function thermalCheck(cfg: ThermalSettings, fs: HostFs = hostFs): Check {
  return {
    component: 'host',
    name: 'thermal',
    async run(): Promise<Finding[]> {
      let entries: string[];
      try {
        entries = fs.list(ROOT).filter((e) => e.startsWith('thermal_zone'));
      } catch (err) {
        if (!isAbsent(err)) throw err;
        entries = [];
      }
      if (entries.length === 0) {
        return [{ subject: '', status: 'ok', reason: 'NoThermalZones', message: `no thermal zones (nothing under ${ROOT})` }];
      }
      return entries.sort(byNumber).map((name) => readZone(fs, name, cfg));
    },
  };
}

function byNumber(a: string, b: string): number {
  return Number(a.replace(/\D/g, '')) - Number(b.replace(/\D/g, ''));
}

function readZone(fs: HostFs, name: string, cfg: ThermalSettings): Finding {
  const dir = `${ROOT}/${name}`;
  const type = fs.read(`${dir}/type`).trim();
  let temp: number;
  try {
    temp = parseNumberFile(fs.read(`${dir}/temp`), `${dir}/temp`);
  } catch (err) {
    // Some sensors refuse reads while their device sleeps (ENODATA, EAGAIN); say so rather than guess.
    return {
      subject: name,
      status: 'unknown',
      reason: 'ThermalUnreadable',
      message: `cannot read the temperature of ${name} (${type}): ${(err as Error).message}; check the sensor's driver in the kernel log`,
    };
  }
  // Only the *_type files and the critical one's temperature: some drivers fail reads of other trip files.
  let critical: number | undefined;
  for (const file of fs.list(dir)) {
    const match = /^trip_point_(\d+)_type$/.exec(file);
    if (!match || fs.read(`${dir}/${file}`).trim() !== 'critical') continue;
    const path = `${dir}/trip_point_${match[1]}_temp`;
    critical = parseNumberFile(fs.read(path), path);
    break;
  }
  return judgeZone(critical === undefined ? { name, type, temp } : { name, type, temp, critical }, cfg);
}

export const thermalProbe = defineProbe({
  section: thermalSection,
  healthy: { reason: 'ThermalOK', message: 'every thermal zone is below its critical trip point' },
  make: (cfg) => thermalCheck(cfg),
});
