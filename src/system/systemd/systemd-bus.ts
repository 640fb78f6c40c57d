// systemd's manager API over the system bus (org.freedesktop.systemd1), with dbus-next's low-level
// messages: no introspection round trips, only the signals asked for by match rules. The connection
// survives the bus going away (dbus restarted): pending calls fail at once, and it reconnects with
// back-off, subscribes again and says "ready" so watchers re-read what they track.
import { EventEmitter } from 'node:events';
import { DBusError, Message, MessageType, sessionBus, type MessageBus } from 'dbus-next';
import { Backoff } from '../backoff';
import { background } from '../background';

export const SYSTEM_BUS_ADDRESS = 'unix:path=/run/dbus/system_bus_socket';

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const PROPERTIES = 'org.freedesktop.DBus.Properties';
const DBUS = 'org.freedesktop.DBus';
const RECENT_JOBS = 256;

export interface JobRemoved {
  id: number;
  job: string;
  unit: string;
  /** done, canceled, timeout, failed, dependency, skipped */
  result: string;
}

export interface SystemdBusEvents {
  /** Connected and subscribed: everything tracked may have changed, read it again. */
  ready: [];
  /** The bus connection (or systemd on it) went away; state read over it is stale until "ready". */
  lost: [reason: string];
  properties: [path: string, iface: string, changed: Record<string, unknown>, invalidated: string[]];
  jobRemoved: [job: JobRemoved];
  /** systemd finished a daemon-reload: units may have new definitions. */
  reloaded: [];
}

export interface SystemdBusOptions {
  /** D-Bus address; default $DBUS_SYSTEM_BUS_ADDRESS or the system bus socket. */
  address?: string;
  /** A method call without a reply after this long fails (systemd's own default is 25 s). */
  callTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** A call that failed: D-Bus error name (org.freedesktop.systemd1.NoSuchUnit, …) when systemd answered with one. */
export class SystemdCallError extends Error {
  override name = 'SystemdCallError';
  constructor(
    message: string,
    readonly dbusName: string | undefined,
  ) {
    super(message);
  }
}

/** The object path of a unit: systemd escapes every byte outside [A-Za-z0-9] (and a leading digit) as _xx. */
export function unitPath(unit: string): string {
  let out = '';
  for (const [i, byte] of [...Buffer.from(unit, 'utf8')].entries()) {
    const c = String.fromCharCode(byte);
    const plain = /[A-Za-z]/.test(c) || (i > 0 && /[0-9]/.test(c));
    out += plain ? c : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return `${MANAGER_PATH}/unit/${out}`;
}

/** dbus-next marshals every property as a Variant; uint64 arrives as bigint. */
export function plain(value: unknown): unknown {
  if (value && typeof value === 'object' && 'signature' in value && 'value' in value) {
    return plain((value as { value: unknown }).value);
  }
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

export class SystemdBus extends EventEmitter<SystemdBusEvents> {
  private bus: MessageBus | undefined;
  private isReady = false;
  private stopped = true;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Set<(err: Error) => void>();
  private readonly watchedPaths = new Set<string>();
  private readonly recentJobs = new Map<string, JobRemoved>();
  private readonly jobWaiters = new Map<string, Set<(job: JobRemoved) => void>>();
  private readonly address: string;
  private readonly callTimeoutMs: number;
  /** Exponential with ±20 % jitter, so many nodes' agents do not hit a restarted bus in step. */
  private readonly reconnect: Backoff;
  /** Why the last connection attempt failed, for status and errors. */
  lastError = '';

  constructor(options: SystemdBusOptions = {}) {
    super();
    this.address = options.address ?? process.env.DBUS_SYSTEM_BUS_ADDRESS ?? SYSTEM_BUS_ADDRESS;
    this.callTimeoutMs = options.callTimeoutMs ?? 25_000;
    this.reconnect = new Backoff(options.reconnectMinMs ?? 200, options.reconnectMaxMs ?? 10_000, Math.random, { low: 0.8, high: 1.2 });
  }

  /** Connected, and systemd answered Subscribe(): signals flow and calls can be made. */
  get ready(): boolean {
    return this.isReady;
  }

  /** Connects (and keeps reconnecting after losses) until stop(). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void background('connecting to the system bus', () => this.connect());
  }

  /** Connects once and resolves when systemd is reachable; for one-shot use (diagnose). */
  async open(timeoutMs: number): Promise<void> {
    this.start();
    if (this.isReady) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('ready', onReady);
        reject(new SystemdCallError(`systemd not reachable on ${this.address} within ${timeoutMs} ms: ${this.lastError || 'no answer'}`, undefined));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once('ready', onReady);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.drop('the agent is stopping', false);
  }

  /** Delivers PropertiesChanged of `path` (a unit's object path) from now on, across reconnects. */
  watchPath(path: string): void {
    if (this.watchedPaths.has(path)) return;
    this.watchedPaths.add(path);
    if (this.bus) void this.addMatch(this.bus, propertiesRule(path)).catch(() => undefined);
  }

  async call(
    path: string,
    iface: string,
    member: string,
    signature = '',
    body: unknown[] = [],
    options: { destination?: string; timeoutMs?: number } = {},
  ): Promise<unknown[]> {
    const bus = this.bus;
    const what = `${iface}.${member}${path === MANAGER_PATH ? '' : ` on ${path}`}`;
    if (!bus) throw new SystemdCallError(`${what}: not connected to the system bus (${this.lastError || 'connecting'})`, undefined);
    const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
    const message = new Message({ destination: options.destination ?? SYSTEMD, path, interface: iface, member, signature, body });
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.pending.delete(fail);
        reject(err);
      };
      const timer = setTimeout(() => fail(new SystemdCallError(`${what}: no reply within ${timeoutMs} ms`, undefined)), timeoutMs);
      this.pending.add(fail);
      bus.call(message).then(
        (reply) => {
          clearTimeout(timer);
          this.pending.delete(fail);
          resolve(reply?.body ?? []);
        },
        (err: unknown) => {
          const name = err instanceof DBusError ? err.type : undefined;
          const text = err instanceof DBusError ? err.text : String(err);
          fail(new SystemdCallError(`${what}: ${text}${name ? ` (${name})` : ''}`, name));
        },
      );
    });
  }

  // ── systemd's manager and unit API ─────────────────────────────────────────────────────────────

  /** Every property of `iface` on a unit's object, as plain values. */
  async unitProperties(unit: string, iface: string): Promise<Record<string, unknown>> {
    const [props] = await this.call(unitPath(unit), PROPERTIES, 'GetAll', 's', [iface]);
    return Object.fromEntries(Object.entries(props as Record<string, unknown>).map(([k, v]) => [k, plain(v)]));
  }

  async unitProperty(unit: string, iface: string, name: string): Promise<unknown> {
    const [value] = await this.call(unitPath(unit), PROPERTIES, 'Get', 'ss', [iface, name]);
    return plain(value);
  }

  /** Queues a job and returns its object path. */
  async enqueue(method: 'RestartUnit' | 'StartUnit' | 'StopUnit', unit: string, mode = 'replace'): Promise<string> {
    const [job] = await this.call(MANAGER_PATH, MANAGER, method, 'ss', [unit, mode]);
    return job as string;
  }

  async killUnit(unit: string, whom: 'main' | 'control' | 'all', signal: number): Promise<void> {
    await this.call(MANAGER_PATH, MANAGER, 'KillUnit', 'ssi', [unit, whom, signal]);
  }

  async resetFailedUnit(unit: string): Promise<void> {
    await this.call(MANAGER_PATH, MANAGER, 'ResetFailedUnit', 's', [unit]);
  }

  /** Masks unit files (a link to /dev/null in /etc) and reloads systemd, as `systemctl mask` does. */
  async maskUnitFiles(units: string[]): Promise<void> {
    await this.call(MANAGER_PATH, MANAGER, 'MaskUnitFiles', 'asbb', [units, false, true]);
    await this.call(MANAGER_PATH, MANAGER, 'Reload', '', [], { timeoutMs: 90_000 });
  }

  /** Disables unit files (removes their [Install] links) and reloads systemd, as `systemctl disable` does. */
  async disableUnitFiles(units: string[]): Promise<void> {
    await this.call(MANAGER_PATH, MANAGER, 'DisableUnitFiles', 'asb', [units, false]);
    await this.call(MANAGER_PATH, MANAGER, 'Reload', '', [], { timeoutMs: 90_000 });
  }

  /**
   * Waits for a job to finish and returns its result (done, failed, canceled, …); undefined when it
   * is still running after `timeoutMs`, "gone" when it ended while the bus was away.
   */
  async waitForJob(job: string, timeoutMs: number): Promise<string | undefined> {
    const known = this.recentJobs.get(job);
    if (known) return known.result;
    const result = await new Promise<string | undefined>((resolve) => {
      const waiters = this.jobWaiters.get(job) ?? new Set();
      this.jobWaiters.set(job, waiters);
      const done = (j: JobRemoved) => {
        clearTimeout(timer);
        resolve(j.result);
      };
      const timer = setTimeout(() => {
        waiters.delete(done);
        if (waiters.size === 0) this.jobWaiters.delete(job);
        resolve(undefined);
      }, timeoutMs);
      waiters.add(done);
    });
    if (result !== undefined) return result;
    // No JobRemoved seen: still queued or running, or it ended while the connection was down.
    try {
      await this.call(job, PROPERTIES, 'Get', 'ss', ['org.freedesktop.systemd1.Job', 'State'], { timeoutMs: 5000 });
      return undefined;
    } catch (err) {
      if (err instanceof SystemdCallError && err.dbusName?.startsWith('org.freedesktop.DBus.Error.UnknownObject')) return 'gone';
      if (err instanceof SystemdCallError && err.dbusName === 'org.freedesktop.systemd1.NoSuchJob') return 'gone';
      return undefined;
    }
  }

  // ── connection ─────────────────────────────────────────────────────────────────────────────────

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let bus: MessageBus;
    try {
      bus = await this.handshake();
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      this.retry();
      return;
    }
    if (this.stopped) {
      bus.disconnect();
      return;
    }
    this.bus = bus;
    try {
      await this.addMatch(bus, `type='signal',sender='${DBUS}',interface='${DBUS}',member='NameOwnerChanged',arg0='${SYSTEMD}'`);
      await this.addMatch(bus, managerRule('JobRemoved'));
      await this.addMatch(bus, managerRule('Reloading'));
      for (const path of this.watchedPaths) await this.addMatch(bus, propertiesRule(path));
    } catch (err) {
      this.lastError = `setting up signal matches: ${err instanceof Error ? err.message : String(err)}`;
      this.drop(this.lastError, true);
      return;
    }
    await this.subscribe();
  }

  /** Subscribe() makes systemd send unit and job signals; needed again whenever systemd (re)joins the bus. */
  private async subscribe(): Promise<void> {
    try {
      await this.call(MANAGER_PATH, MANAGER, 'Subscribe', '', [], { timeoutMs: 10_000 });
    } catch (err) {
      // systemd not (yet) on the bus after a dbus restart: NameOwnerChanged tells when it is.
      this.lastError = err instanceof Error ? err.message : String(err);
      return;
    }
    this.isReady = true;
    this.reconnect.reset();
    this.lastError = '';
    this.emit('ready');
  }

  private handshake(): Promise<MessageBus> {
    return new Promise((resolve, reject) => {
      const bus = sessionBus({ busAddress: this.address });
      let connected = false;
      const timer = setTimeout(() => {
        bus.disconnect();
        reject(new Error(`no D-Bus handshake on ${this.address} within 10 s`));
      }, 10_000);
      // One listener for the connection's whole life: an 'error' without a listener would throw.
      bus.on('error', (err: unknown) => {
        const text = err instanceof Error ? err.message : String(err);
        if (connected) {
          this.drop(`D-Bus connection error: ${text}`, true, bus);
        } else {
          clearTimeout(timer);
          reject(new Error(`cannot connect to the system bus at ${this.address}: ${text}`));
        }
      });
      bus.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        // dbus-next does not surface the end of the stream on the bus object; its connection does.
        (bus as unknown as { _connection: EventEmitter })._connection.on('end', () =>
          this.drop('the system bus closed the connection', true, bus),
        );
        bus.on('message', (msg: Message) => this.onMessage(msg));
        resolve(bus);
      });
    });
  }

  private drop(reason: string, reconnect: boolean, which?: MessageBus): void {
    if (which && which !== this.bus) return;
    const bus = this.bus;
    const wasReady = this.isReady;
    this.bus = undefined;
    this.isReady = false;
    for (const fail of [...this.pending]) fail(new SystemdCallError(`D-Bus connection lost: ${reason}`, undefined));
    if (bus) {
      bus.removeAllListeners('message');
      try {
        bus.disconnect();
      } catch {
        // The stream is already closed.
      }
    }
    this.lastError = reason;
    if (bus && wasReady) this.emit('lost', reason);
    if (reconnect) this.retry();
  }

  private retry(): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => void background('connecting to the system bus', () => this.connect()), this.reconnect.next());
    this.retryTimer.unref();
  }

  private addMatch(bus: MessageBus, rule: string): Promise<unknown> {
    if (bus !== this.bus) return Promise.resolve();
    return this.call('/org/freedesktop/DBus', DBUS, 'AddMatch', 's', [rule], { destination: DBUS, timeoutMs: 10_000 });
  }

  private onMessage(msg: Message): void {
    if (msg.type !== MessageType.SIGNAL) return;
    if (msg.interface === PROPERTIES && msg.member === 'PropertiesChanged') {
      const [iface, changed, invalidated] = msg.body as [string, Record<string, unknown>, string[]];
      const values = Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, plain(v)]));
      this.emit('properties', msg.path, iface, values, invalidated);
    } else if (msg.interface === MANAGER && msg.member === 'JobRemoved') {
      const [id, job, unit, result] = msg.body as [number, string, string, string];
      const removed = { id, job, unit, result };
      this.recentJobs.set(job, removed);
      if (this.recentJobs.size > RECENT_JOBS) this.recentJobs.delete(this.recentJobs.keys().next().value as string);
      for (const waiter of this.jobWaiters.get(job) ?? []) waiter(removed);
      this.jobWaiters.delete(job);
      this.emit('jobRemoved', removed);
    } else if (msg.interface === MANAGER && msg.member === 'Reloading') {
      if ((msg.body as [boolean])[0] === false) this.emit('reloaded');
    } else if (msg.interface === DBUS && msg.member === 'NameOwnerChanged') {
      const [, , owner] = msg.body as [string, string, string];
      if (owner === '') {
        this.isReady = false;
        this.emit('lost', 'systemd left the system bus');
      } else {
        // systemd (re)joined the bus: after a dbus restart or a daemon-reexec.
        void background('subscribing to systemd signals', () => this.subscribe());
      }
    }
  }
}

function managerRule(member: string): string {
  return `type='signal',sender='${SYSTEMD}',path='${MANAGER_PATH}',interface='${MANAGER}',member='${member}'`;
}

function propertiesRule(path: string): string {
  return `type='signal',sender='${SYSTEMD}',path='${path}',interface='${PROPERTIES}',member='PropertiesChanged'`;
}
