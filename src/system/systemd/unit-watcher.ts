// The state of a few systemd units, kept current from PropertiesChanged signals: a crash, a stop or a
// restart is seen when systemd announces it, not at the next poll. Everything is read again whenever
// the bus connection is (re)established or systemd reloads.
import { EventEmitter } from 'node:events';
import { SystemdCallError, unitPath, type SystemdBus } from './systemd-bus';
import { background } from '../background';
import type { UnitState } from '../../types';
export type { UnitState };

const UNIT = 'org.freedesktop.systemd1.Unit';
const SERVICE = 'org.freedesktop.systemd1.Service';

export interface UnitWatcherEvents {
  change: [state: UnitState, previous: UnitState | undefined];
  /** The bus went away: states are unknown until the next change events. */
  unknown: [reason: string];
}

type Fields = Partial<Record<keyof UnitState, string | number>>;

/** Unit interface properties → UnitState fields. */
const UNIT_PROPS: Record<string, keyof UnitState> = {
  LoadState: 'loadState',
  ActiveState: 'activeState',
  SubState: 'subState',
  InactiveExitTimestamp: 'inactiveExitUs',
  InactiveExitTimestampMonotonic: 'inactiveExitMonoUs',
  UnitFileState: 'unitFileState',
  Job: 'jobId',
};
const SERVICE_PROPS: Record<string, keyof UnitState> = {
  Result: 'result',
  MainPID: 'mainPid',
  NRestarts: 'nRestarts',
};

function convert(field: keyof UnitState, value: unknown): string | number {
  // Job is (uo): the job's ID and object path.
  if (field === 'jobId') return Array.isArray(value) ? Number(value[0]) : 0;
  return typeof value === 'number' ? value : String(value ?? '');
}

export function isService(unit: string): boolean {
  return unit.endsWith('.service');
}

export class UnitWatcher extends EventEmitter<UnitWatcherEvents> {
  private readonly states = new Map<string, UnitState>();
  private readonly byPath = new Map<string, string>();
  private readonly refreshing = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    private readonly bus: SystemdBus,
    readonly units: readonly string[],
  ) {
    super();
    for (const unit of units) this.byPath.set(unitPath(unit), unit);
  }

  start(): void {
    const onReady = () => void background('reading unit states', () => this.refreshAll());
    const onLost = (reason: string) => {
      this.states.clear();
      this.emit('unknown', reason);
    };
    const onProperties = (path: string, iface: string, changed: Record<string, unknown>, invalidated: string[]) =>
      this.onProperties(path, iface, changed, invalidated);
    this.bus.on('ready', onReady);
    this.bus.on('reloaded', onReady);
    this.bus.on('lost', onLost);
    this.bus.on('properties', onProperties);
    this.unsubscribe.push(() => {
      this.bus.off('ready', onReady);
      this.bus.off('reloaded', onReady);
      this.bus.off('lost', onLost);
      this.bus.off('properties', onProperties);
    });
    for (const path of this.byPath.keys()) this.bus.watchPath(path);
    if (this.bus.ready) void background('reading unit states', () => this.refreshAll());
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** The unit's last known state; undefined while unknown (bus down, not read yet). */
  get(unit: string): UnitState | undefined {
    return this.states.get(unit);
  }

  /** Reads every tracked property of every unit again. */
  async refreshAll(): Promise<void> {
    await Promise.all(this.units.map((u) => this.refresh(u)));
  }

  /** Reads the unit's properties again; concurrent calls share one read, and a signal during it triggers another. */
  refresh(unit: string): Promise<void> {
    const running = this.refreshing.get(unit);
    if (running) {
      this.dirty.add(unit);
      return running;
    }
    const p = this.read(unit)
      .then((fields) => this.apply(unit, fields, true))
      .catch(() => {
        // The bus went away mid-read; "ready" brings the next refresh.
      })
      .finally(() => {
        this.refreshing.delete(unit);
        if (this.dirty.delete(unit)) void background(`reading the state of ${unit}`, () => this.refresh(unit));
      });
    this.refreshing.set(unit, p);
    return p;
  }

  private async read(unit: string): Promise<Fields> {
    const fields: Fields = {};
    const props = await this.bus.unitProperties(unit, UNIT);
    for (const [prop, field] of Object.entries(UNIT_PROPS)) fields[field] = convert(field, props[prop]);
    if (isService(unit) && fields.loadState !== 'not-found') {
      await Promise.all(
        Object.entries(SERVICE_PROPS).map(async ([prop, field]) => {
          try {
            fields[field] = convert(field, await this.bus.unitProperty(unit, SERVICE, prop));
          } catch (err) {
            // A masked or broken unit may lack its type's interface; the Unit properties still hold.
            if (!(err instanceof SystemdCallError) || err.dbusName === undefined) throw err;
          }
        }),
      );
    }
    return fields;
  }

  private onProperties(path: string, iface: string, changed: Record<string, unknown>, invalidated: string[]): void {
    const unit = this.byPath.get(path);
    if (!unit) return;
    const map = iface === UNIT ? UNIT_PROPS : iface === SERVICE ? SERVICE_PROPS : undefined;
    if (!map) return;
    const fields: Fields = {};
    for (const [prop, value] of Object.entries(changed)) {
      const field = map[prop];
      if (field) fields[field] = convert(field, value);
    }
    if (this.refreshing.has(unit)) this.dirty.add(unit);
    if (!this.states.has(unit) || invalidated.some((p) => map[p] !== undefined)) {
      void background(`reading the state of ${unit}`, () => this.refresh(unit));
      return;
    }
    this.apply(unit, fields, false);
  }

  private apply(unit: string, fields: Fields, complete: boolean): void {
    const previous = this.states.get(unit);
    if (!previous && !complete) return;
    const base: UnitState = previous ?? {
      name: unit,
      loadState: '',
      activeState: '',
      subState: '',
      result: '',
      mainPid: 0,
      nRestarts: 0,
      inactiveExitUs: 0,
      inactiveExitMonoUs: 0,
      unitFileState: '',
      jobId: 0,
    };
    const next = { ...base, ...fields } as UnitState;
    const changed = !previous || (Object.keys(next) as Array<keyof UnitState>).some((k) => next[k] !== previous[k]);
    if (!changed) return;
    this.states.set(unit, next);
    this.emit('change', next, previous);
  }
}
