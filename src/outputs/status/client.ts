// Asks the running daemon for its status over the status socket.
import { request } from 'node:http';
import { AgentError, messageOf } from '../../errors';
import type { AgentStatus } from '../../types';

/** The daemon's snapshot; the daemon and this command come from one package, so its shape is the contract's. */
export function fetchStatus(socketPath: string, timeoutMs = 5000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const fail = (why: string): void =>
      reject(
        new AgentError(
          'DAEMON_UNREACHABLE',
          `cannot reach the node-health-agent daemon on ${socketPath}: ${why} (is it running? systemctl status node-health-agent)`,
        ),
      );
    const req = request({ socketPath, path: '/status', method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AgentStatus);
        } catch (err) {
          fail(`bad reply: ${messageOf(err)}`);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
    req.end();
  });
}
