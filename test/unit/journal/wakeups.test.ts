// How the reader wakes up, in a child process: through inotify normally; by polling with back-off when
// inotify is exhausted (a user namespace of its own with its inotify limits set to 0, so the rest of
// the host is not affected), without spinning; and after stop() the process exits on its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { writeJournal, type SourceEntry } from '../../helpers/journal-files';

const readerTs = resolve(__dirname, '../../../src/sources/journal/reader.ts');
const nativeTs = resolve(__dirname, '../../../src/system/native.ts');
// The hooks tap runs this file with, so the child can load TypeScript too.
const tsHooks = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
const T0 = 1_760_000_000_000_000;

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const lines = (n: number, from: number): SourceEntry[] =>
  Array.from({ length: n }, (_, i) => ({ realtimeUs: T0 + (from + i) * 1000, fields: { MESSAGE: `line ${from + i}` } }));

// Reads the directory from its tail; prints a JSON line per batch, warning and `state` command; `stop`
// stops the reader and closes stdin, after which nothing should keep the process alive.
const CHILD = `
const { JournalReader } = require(${JSON.stringify(readerTs)});
const { loadNative } = require(${JSON.stringify(nativeTs)});
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const r = new JournalReader(
  { native: loadNative(), directory: process.argv[1], matches: [], maxMessageBytes: 1000, batchSize: 100, onWarning: (m) => out({ warning: m }) },
  (entries) => out({ batch: entries.map((e) => e.message) }),
);
r.start();
out({ state: r.state() });
let buffered = '';
process.stdin.on('data', (d) => {
  buffered += d;
  const cmds = buffered.split('\\n');
  buffered = cmds.pop();
  for (const cmd of cmds) {
    if (cmd === 'state') out({ state: r.state(), cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000 });
    if (cmd === 'stop') { r.stop(); out({ stopped: true }); process.stdin.destroy(); }
  }
});
`;

interface Message {
  batch?: string[];
  warning?: string;
  state?: { waitMode: string; lastError: string | null; alive: boolean; entriesRead: number };
  cpuMs?: number;
  stopped?: boolean;
}

class Child {
  readonly messages: Message[] = [];
  readonly exited: Promise<number | null>;
  private stderr = '';
  private readonly proc: ChildProcess;

  constructor(t: { teardown(fn: () => unknown): void }, dir: string, limits?: { instances: number; watches: number }) {
    const node = [process.execPath, ...tsHooks, '-e', CHILD, dir];
    const argv = limits
      ? [
          'unshare', '--user', '--map-root-user', 'sh', '-c',
          `echo ${limits.instances} > /proc/sys/user/max_inotify_instances && echo ${limits.watches} > /proc/sys/user/max_inotify_watches && exec "$@"`,
          'sh', ...node,
        ]
      : node;
    this.proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    t.teardown(() => this.proc.kill('SIGKILL'));
    let buffered = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const ls = buffered.split('\n');
      buffered = ls.pop() ?? '';
      for (const l of ls) this.messages.push(JSON.parse(l) as Message);
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((res) => this.proc.on('exit', (code) => res(code)));
  }

  send(cmd: string): void {
    this.proc.stdin!.write(`${cmd}\n`);
  }

  lines(): string[] {
    return this.messages.flatMap((m) => m.batch ?? []);
  }

  async waitFor<T>(what: string, find: () => T | undefined, ms = 10_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; child stderr: ${this.stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async state(): Promise<Message> {
    const before = this.messages.length;
    this.send('state');
    return this.waitFor('state', () => this.messages.slice(before).find((m) => m.cpuMs !== undefined));
  }

  /** Stops the reader; resolves with the ms until the process exited by itself. */
  async stop(): Promise<number> {
    this.send('stop');
    await this.waitFor('stopped', () => this.messages.find((m) => m.stopped));
    const started = Date.now();
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
    const res = await Promise.race([this.exited, timeout]);
    if (res === 'timeout') throw new Error('the process did not exit within 5 s of stop(): something kept it alive');
    return Date.now() - started;
  }
}

t.test('inotify: appended entries arrive without polling; stop() lets the process exit', async (t) => {
  const dir = tempDir(t);
  await writeJournal(dir, 'a', lines(3, 0));
  const child = new Child(t, dir);
  const first = await child.waitFor('first state', () => child.messages.find((m) => m.state));
  t.equal(first.state!.waitMode, 'inotify');
  const sent = Date.now();
  await writeJournal(dir, 'a', lines(2, 3));
  await child.waitFor('appended lines', () => (child.lines().length === 2 ? true : undefined));
  t.comment(`appended entries arrived ${Date.now() - sent} ms after the write started`);
  t.same(child.lines(), ['line 3', 'line 4']);
  const s = await child.state();
  t.equal(s.state!.lastError, null);
  await new Promise((r) => setTimeout(r, 3000));
  const idle = (await child.state()).cpuMs! - s.cpuMs!;
  t.comment(`CPU while idle with inotify: ${idle.toFixed(1)} ms over 3 s`);
  t.ok(idle < 50, 'no timer, no busy loop while nothing happens');
  t.same(child.messages.filter((m) => m.warning), []);
  t.ok((await child.stop()) < 2000, 'exited on its own');
  t.equal(await child.exited, 0);
});

for (const [name, limits, reason] of [
  ['inotify instances exhausted', { instances: 0, watches: 1000 }, /sd_journal_get_fd \(inotify\): Too many open files \(fs\.inotify\.max_user_instances exhausted\?\)/],
  ['inotify watches exhausted', { instances: 100, watches: 0 }, /could not add any inotify watch \(fs\.inotify\.max_user_watches exhausted\?\)/],
] as const) {
  t.test(`${name}: polls with back-off, reopens on rotation, does not spin`, async (t) => {
    const dir = tempDir(t);
    await writeJournal(dir, 'a', lines(3, 0));
    const child = new Child(t, dir, limits);
    const first = await child.waitFor('first state', () => child.messages.find((m) => m.state));
    t.equal(first.state!.waitMode, 'polling-backoff');
    t.match(first.state!.lastError, reason);
    const warnings = child.messages.filter((m) => m.warning).map((m) => m.warning);
    t.equal(warnings.length, 1, 'said once');
    t.match(warnings[0], /polling every 1-30 s instead/);

    // Appended to the open file: seen at the next poll (1 s while idle so far: at most 2 s).
    let sent = Date.now();
    await writeJournal(dir, 'a', lines(2, 3));
    await child.waitFor('appended lines', () => (child.lines().length === 2 ? true : undefined), 5000);
    t.comment(`appended entries arrived after ${Date.now() - sent} ms`);

    // A new file (as after a rotation): the directory changed, so the journal is reopened.
    const aside = tempDir(t);
    const [rotated] = await writeJournal(aside, 'b', lines(150, 5));
    sent = Date.now();
    renameSync(rotated!, join(dir, 'b.journal'));
    await child.waitFor('rotated file', () => (child.lines().length === 152 ? true : undefined), 8000);
    t.comment(`a new file's entries arrived after ${Date.now() - sent} ms`);
    t.same(child.lines(), lines(152, 3).map((e) => e.fields.MESSAGE), 'nothing lost or repeated');

    // Idle: the back-off grows; CPU stays near zero.
    const a = await child.state();
    await new Promise((r) => setTimeout(r, 4000));
    const b = await child.state();
    const cpu = b.cpuMs! - a.cpuMs!;
    t.comment(`CPU while idle in polling mode: ${cpu.toFixed(1)} ms over 4 s`);
    t.ok(cpu < 200, `no spinning (${cpu.toFixed(1)} ms CPU in 4 s)`);
    t.equal(b.state!.waitMode, 'polling-backoff');
    t.equal(b.state!.alive, true);
    t.ok((await child.stop()) < 2000, 'exited on its own: no poll timer left');
  });
}
