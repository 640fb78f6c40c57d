// The crash policy: background work that fails is logged with a code and the process goes on; whatever
// escapes it ends the daemon on purpose with EXIT_CRASH, a closed stdout or stderr does not (checked in
// child processes).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import t from 'tap';
import { background, EXIT_CRASH, reportFailuresTo } from '../../../src/system/background';

const backgroundTs = resolve(__dirname, '../../../src/system/background.ts');
const tsHooks = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

t.test('a throw or a rejection in background work is logged with its code and swallowed', async (t) => {
  const logged: Array<{ message: string; fields: unknown }> = [];
  reportFailuresTo({ error: (message, fields) => logged.push({ message, fields }) });
  t.teardown(() => reportFailuresTo(undefined));
  const unhandled: unknown[] = [];
  const onUnhandled = (r: unknown): void => void unhandled.push(r);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));

  await background('saving the cursor', () => {
    throw new Error('ENOSPC: no space left on device');
  });
  await background('reading the Node', async () => {
    await new Promise((r) => setTimeout(r, 5));
    throw new Error('socket hang up');
  });
  let after = false;
  await background('a step', async () => undefined).finally(() => (after = true));
  await new Promise((r) => setTimeout(r, 20));

  t.same(logged, [
    { message: 'saving the cursor failed: ENOSPC: no space left on device; the agent carries on', fields: { code: 'BACKGROUND_FAILED', task: 'saving the cursor' } },
    { message: 'reading the Node failed: socket hang up; the agent carries on', fields: { code: 'BACKGROUND_FAILED', task: 'reading the Node' } },
  ]);
  t.ok(after, 'the returned promise always fulfils');
  t.same(unhandled, [], 'nothing reached the process handlers');
});

for (const [kind, code] of [
  ['an unhandled promise rejection', 'Promise.reject(new Error("boom"))'],
  ['an uncaught exception', 'setImmediate(() => { throw new Error("boom"); })'],
] as const) {
  t.test(`${kind} ends the daemon on purpose: logged with code CRASH, exit ${EXIT_CRASH}`, async (t) => {
    const script = `
      const { installCrashHandlers } = require(${JSON.stringify(backgroundTs)});
      installCrashHandlers();
      ${code};
      setTimeout(() => process.exit(0), 5000);
    `;
    const r = spawnSync(process.execPath, [...tsHooks, '-e', script], { encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, EXIT_CRASH, r.stderr);
    const line = JSON.parse(r.stderr.trim().split('\n').pop() as string) as { message: string; code: string };
    t.equal(line.code, 'CRASH');
    t.match(line.message, new RegExp(`^crashed on ${kind}: Error: boom\\n[^]*; exiting with ${EXIT_CRASH} for systemd to restart the agent$`));
  });
}

t.test('stdout and stderr closed by their reader (journald stopped): the writes fail with EPIPE and the daemon goes on', async (t) => {
  // Under systemd both are journald's stream socket, which journald closes when it stops.
  const script = `
    const { installCrashHandlers } = require(${JSON.stringify(backgroundTs)});
    installCrashHandlers();
    process.on('message', () => {
      for (let i = 0; i < 5; i++) {
        process.stdout.write('a line on stdout\\n');
        process.stderr.write('a line on stderr\\n');
      }
      // Past the failed writes' 'error' events; then disconnect so the parent sees the exit code.
      setTimeout(() => process.exit(0), 500);
    });
    process.send('ready');
  `;
  const child = spawn(process.execPath, [...tsHooks, '-e', script], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  t.teardown(() => clearTimeout(killer));
  child.once('message', () => {
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.send('write');
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  t.same({ code, signal }, { code: 0, signal: null }, `exited on its own with 0, not ${EXIT_CRASH} (a crash)`);
});
