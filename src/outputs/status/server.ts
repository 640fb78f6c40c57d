// The status socket: `node-health-agent status` asks the running daemon for its live state over HTTP on
// a unix socket in the runtime directory. Only root can connect (mode 0600).
import { chmodSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { createServer, type Server } from 'node:http';
import { dirname } from 'node:path';
import { AgentError, messageOf } from '../../errors';
import { makeDirs } from '../../system/files';
import type { AgentStatus } from '../../types';

export type StatusProvider = () => AgentStatus;

export class StatusServer {
  private server: Server | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly provide: StatusProvider,
  ) {}

  async listen(): Promise<void> {
    try {
      makeDirs(dirname(this.socketPath), 0o755);
    } catch (err) {
      throw new AgentError('STATE_DIR_UNWRITABLE', `${dirname(this.socketPath)}: cannot create the runtime directory: ${messageOf(err)}`);
    }
    await this.removeStaleSocket();
    const server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/status') {
        const body = JSON.stringify(this.provide());
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      throw new AgentError('STATE_DIR_UNWRITABLE', `${this.socketPath}: cannot listen: ${messageOf(err)}`);
    });
    chmodSync(this.socketPath, 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A socket file left by a crashed daemon is removed; one with a live daemon behind it is refused. */
  private async removeStaleSocket(): Promise<void> {
    const live = await new Promise<boolean>((resolve) => {
      const probe = createConnection(this.socketPath);
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (live) {
      throw new AgentError(
        'ALREADY_RUNNING',
        `another node-health-agent is already running (it answers on ${this.socketPath}); stop it first (systemctl stop node-health-agent)`,
      );
    }
    try {
      unlinkSync(this.socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new AgentError('STATE_DIR_UNWRITABLE', `${this.socketPath}: cannot remove stale socket: ${messageOf(err)}`);
      }
    }
  }
}
