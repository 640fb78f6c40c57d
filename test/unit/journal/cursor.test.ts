// The cursor store on a real directory: when it saves, what it saves, how (fsync of file and directory,
// traced with strace), and what it does with missing, foreign and unwritable files.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { CursorStore } from '../../../src/sources/journal/cursor';
import { wallClock } from '../../helpers/wall-clock';

const cursorTs = resolve(__dirname, '../../../src/sources/journal/cursor.ts');
const tsHooks = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

const cursor = (i: number): string =>
  `s=0123456789abcdef0123456789abcdef;i=${i.toString(16)};b=6f1d2c7b9a8e4f3d8c2b1a0e9f8d7c6b;m=1f4;t=6379ddbf62652;x=4f41835f617aa92c`;

function stateDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const saved = (path: string): string | undefined => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);

t.test('load: nothing saved, a saved cursor, a file that holds no cursor', async (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'journal.cursor');
  const store = new CursorStore(path, { everyEntries: 10, everyMs: 1000 });
  t.equal(store.load(), undefined);
  writeFileSync(path, `${cursor(5)}\n`);
  t.equal(store.load(), cursor(5));
  writeFileSync(path, 'garbage');
  t.equal(store.load(), undefined);
  t.match(store.lastError, /journal\.cursor does not hold a journal cursor; ignored/);
});

t.test('saves every N entries, and not in between', async (t) => {
  const path = join(stateDir(t), 'journal.cursor');
  const store = new CursorStore(path, { everyEntries: 100, everyMs: 60_000 });
  t.teardown(() => store.flush());
  store.offer(cursor(1), 60);
  t.equal(saved(path), undefined, '60 < 100: not yet');
  store.offer(cursor(2), 40);
  t.equal(saved(path), `${cursor(2)}\n`, '100 entries: saved');
  store.offer(cursor(3), 99);
  t.equal(saved(path), `${cursor(2)}\n`, 'the count starts again after a save');
  store.flush();
  t.equal(saved(path), `${cursor(3)}\n`, 'flush saves what is pending');
  t.same(readdirSync(join(path, '..')), ['journal.cursor'], 'no temporary file left');
});

t.test('saves after T ms: on the next offer, or by its timer when entries stop', async (t) => {
  const path = join(stateDir(t), 'journal.cursor');
  const store = new CursorStore(path, { everyEntries: 1_000_000, everyMs: 150 });
  t.teardown(() => store.flush());
  store.offer(cursor(1), 1);
  t.equal(saved(path), undefined);
  await new Promise((r) => setTimeout(r, 400));
  t.equal(saved(path), `${cursor(1)}\n`, 'saved by the timer with no further offer');
  await new Promise((r) => setTimeout(r, 200));
  store.offer(cursor(2), 1);
  t.equal(saved(path), `${cursor(2)}\n`, 'T had passed: saved at once');
});

t.test('a wall clock stepped back an hour does not put the timed save off', async (t) => {
  const clock = wallClock(t);
  const path = join(stateDir(t), 'journal.cursor');
  const store = new CursorStore(path, { everyEntries: 1_000_000, everyMs: 150 });
  t.teardown(() => store.flush());
  store.offer(cursor(1), 1);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(saved(path), `${cursor(1)}\n`);
  clock.step(-3_600_000);
  store.offer(cursor(2), 1);
  await new Promise((r) => setTimeout(r, 400));
  t.equal(saved(path), `${cursor(2)}\n`, 'saved within T, not an hour later');
});

t.test('the position is saved only after what the entries changed was kept (before)', async (t) => {
  const path = join(stateDir(t), 'journal.cursor');
  let kept = false;
  const calls: string[] = [];
  const store = new CursorStore(path, {
    everyEntries: 1,
    everyMs: 0,
    before: () => {
      calls.push(saved(path) ?? 'none');
      return kept;
    },
  });
  t.teardown(() => store.flush());
  store.offer(cursor(1), 1);
  t.equal(saved(path), undefined, 'not saved while the conditions could not be');
  t.equal(store.flush(), false, 'a flush reports it');
  kept = true;
  store.offer(cursor(2), 1);
  t.equal(saved(path), `${cursor(2)}\n`, 'saved once they are');
  t.same(calls, ['none', 'none', 'none'], 'asked before every save');
});

t.test('a save is tmp file + fsync + rename + fsync of the directory', async (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'journal.cursor');
  const script = `
    const { CursorStore } = require(${JSON.stringify(cursorTs)});
    new CursorStore(${JSON.stringify(path)}, { everyEntries: 1, everyMs: 1000 }).offer(${JSON.stringify(cursor(7))}, 1);
  `;
  const trace = join(dir, 'trace');
  const res = spawnSync('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=openat,fsync,rename,renameat,renameat2', process.execPath, ...tsHooks, '-e', script], {
    encoding: 'utf8',
  });
  t.equal(res.status, 0, res.stderr);
  const calls = readFileSync(trace, 'utf8')
    .split('\n')
    .map((l) => l.replace(/^\d+\s+/, '').replace(/\s+= /, ' = '))
    .filter((l) => l.includes(dir) || l.startsWith('fsync'));
  const tmpOpen = calls.findIndex((l) => l.startsWith('openat') && l.includes('journal.cursor.tmp') && l.includes('O_CREAT'));
  const tmpFd = /= (\d+)$/.exec(calls[tmpOpen] ?? '')?.[1];
  const rename = calls.findIndex((l) => /^rename/.test(l) && l.includes('journal.cursor.tmp') && l.endsWith('= 0'));
  const dirOpen = calls.findIndex((l, i) => i > rename && l.startsWith('openat') && l.includes(`"${dir}"`));
  const dirFd = /= (\d+)$/.exec(calls[dirOpen] ?? '')?.[1];
  t.ok(tmpOpen >= 0 && tmpFd, 'temporary file created');
  t.ok(calls.findIndex((l) => l === `fsync(${tmpFd}) = 0`) > tmpOpen, 'file fsynced');
  t.ok(rename > calls.findIndex((l) => l === `fsync(${tmpFd}) = 0`), 'renamed after the fsync');
  t.ok(dirOpen > rename && calls.slice(dirOpen).includes(`fsync(${dirFd}) = 0`), 'directory fsynced after the rename');
  t.equal(saved(path), `${cursor(7)}\n`);
});

t.test('a save that fails never throws: health is told, the latest cursor is kept and saved once the disk takes it', async (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'missing', 'journal.cursor');
  const failures: Error[] = [];
  let recovered = 0;
  const health = { failed: (e: unknown) => failures.push(e as Error), recovered: () => void recovered++ };
  const store = new CursorStore(path, { everyEntries: 2, everyMs: 100, health });
  store.offer(cursor(1), 5); // due at once, and the directory is missing
  t.equal(failures.length, 1, 'the failed save was reported, not thrown');
  t.match(failures[0], {
    name: 'AgentError',
    code: 'STATE_DIR_UNWRITABLE',
    message: new RegExp(`^cannot save the journal cursor to ${path}: ENOENT.*; check that the state directory is writable$`),
  });
  t.match(store.lastError, /cannot save the journal cursor/);
  store.offer(cursor(2), 5);
  store.offer(cursor(3), 5);
  t.equal(failures.length, 1, 'offers while failing wait for the retry instead of hammering the disk');
  await new Promise((r) => setTimeout(r, 1200));
  t.ok(failures.length >= 2, 'retried on its own');
  mkdirSync(join(dir, 'missing'));
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(saved(path), `${cursor(3)}\n`, 'the latest cursor reached the disk');
  t.equal(recovered, 1, 'and health was told');
  t.equal(store.lastError, null);
  t.equal(store.flush(), true);
});

t.test('flush on stop reports a failure instead of throwing', async (t) => {
  const dir = stateDir(t);
  const failures: unknown[] = [];
  const store = new CursorStore(join(dir, 'missing', 'journal.cursor'), { everyEntries: 1000, everyMs: 60_000, health: { failed: (e) => failures.push(e), recovered() {} } });
  store.offer(cursor(1), 1);
  t.equal(store.flush(), false);
  t.equal(failures.length, 1);
});

t.test('a file that cannot be read is an AgentError naming it', async (t) => {
  const dir = stateDir(t);
  // Root ignores file modes, so unreadability is shown with a directory in place of the file.
  const asDir = join(dir, 'is-a-dir');
  mkdirSync(asDir);
  chmodSync(asDir, 0o755);
  t.throws(() => new CursorStore(asDir, { everyEntries: 1, everyMs: 1 }).load(), {
    code: 'STATE_DIR_UNWRITABLE',
    message: new RegExp(`cannot read the journal cursor ${asDir}: EISDIR`),
  });
});

t.test('bad limits are rejected', async (t) => {
  t.throws(() => new CursorStore('/x', { everyEntries: 0, everyMs: 1 }), /everyEntries must be a whole number ≥ 1/);
  t.throws(() => new CursorStore('/x', { everyEntries: 1, everyMs: -1 }), /everyMs must be a number of ms ≥ 0/);
});
