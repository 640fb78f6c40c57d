// Reboot through systemd-logind over the system bus (org.freedesktop.login1.Manager.Reboot), the way
// `systemctl reboot` asks for it: logind honours inhibitor locks and delay locks (the kubelet's graceful
// node shutdown takes one), and systemd stops every unit in order. One connection per call: the ladder
// reboots rarely, and a connection kept open for it would only have to survive dbus restarts.
import { DBusError, Message, sessionBus, type MessageBus } from 'dbus-next';
import { messageOf } from '../../errors';
import { SYSTEM_BUS_ADDRESS } from '../../system/systemd/systemd-bus';

const LOGIN1 = 'org.freedesktop.login1';
const LOGIN1_PATH = '/org/freedesktop/login1';
const MANAGER = 'org.freedesktop.login1.Manager';

export class Login1Error extends Error {
  override name = 'Login1Error';
  constructor(
    message: string,
    /** D-Bus error name (org.freedesktop.login1.…, org.freedesktop.DBus.Error.…) when logind answered with one. */
    readonly dbusName: string | undefined,
  ) {
    super(message);
  }
}

/** What the ladder needs of the machine: whether it may reboot, and the reboot. */
export interface Rebooter {
  /** logind's answer: yes, no, challenge, na (not supported here). */
  canReboot(): Promise<string>;
  /** Returns once logind accepted the reboot; the machine goes down soon after. */
  reboot(): Promise<void>;
}

export class Login1 implements Rebooter {
  private readonly address: string;
  private readonly timeoutMs: number;

  constructor(options: { address?: string; timeoutMs?: number } = {}) {
    this.address = options.address ?? process.env.DBUS_SYSTEM_BUS_ADDRESS ?? SYSTEM_BUS_ADDRESS;
    this.timeoutMs = options.timeoutMs ?? 25_000;
  }

  async canReboot(): Promise<string> {
    const [answer] = await this.call('CanReboot', '', []);
    return String(answer);
  }

  async reboot(): Promise<void> {
    // interactive=false: never wait for a polkit agent; root needs none.
    await this.call('Reboot', 'b', [false]);
  }

  private async call(member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    const what = `${MANAGER}.${member} on ${this.address}`;
    const bus = await this.connect(what);
    try {
      const message = new Message({ destination: LOGIN1, path: LOGIN1_PATH, interface: MANAGER, member, signature, body });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Login1Error(`${what}: no reply within ${this.timeoutMs} ms; is systemd-logind running?`, undefined)), this.timeoutMs);
      });
      try {
        const reply = await Promise.race([bus.call(message), timeout]);
        return reply?.body ?? [];
      } catch (err) {
        if (err instanceof Login1Error) throw err;
        const name = err instanceof DBusError ? err.type : undefined;
        const text = err instanceof DBusError ? err.text : messageOf(err);
        throw new Login1Error(`${what}: ${text}${name ? ` (${name})` : ''}`, name);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      bus.disconnect();
    }
  }

  private connect(what: string): Promise<MessageBus> {
    return new Promise((resolve, reject) => {
      const bus = sessionBus({ busAddress: this.address });
      const timer = setTimeout(() => {
        bus.disconnect();
        reject(new Login1Error(`${what}: no D-Bus handshake within 10 s`, undefined));
      }, 10_000);
      // An 'error' without a listener would throw; after the handshake the call itself reports failures.
      bus.on('error', (err: unknown) => {
        clearTimeout(timer);
        reject(new Login1Error(`${what}: cannot connect to the system bus: ${messageOf(err)}`, undefined));
      });
      bus.once('connect', () => {
        clearTimeout(timer);
        resolve(bus);
      });
    });
  }
}
