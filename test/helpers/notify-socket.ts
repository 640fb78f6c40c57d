// A real sd_notify receiver: a unix datagram socket (which Node cannot bind) served by python3, printing
// each datagram it receives as one JSON string per line.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SERVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode("utf-8", "replace")), flush=True)
`;

export interface NotifySocket {
  path: string;
  messages: string[];
}

export async function notifySocket(t: { teardown(fn: () => unknown): void }): Promise<NotifySocket> {
  const path = join(mkdtempSync(join(tmpdir(), 'nha-notify-')), 'notify.sock');
  const child = spawn('python3', ['-c', SERVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  let buffered = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) messages.push(JSON.parse(line) as string);
  });
  t.teardown(() => child.kill('SIGKILL'));
  const deadline = Date.now() + 5000;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`notify listener did not bind ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { path, messages };
}
