// Faults under the running daemon: its state directory fills up or turns read-only, and the API server
// hangs behind a slow exec credential plugin. The daemon must keep running, say what is degraded, lose
// nothing, and be READY without waiting for the API server.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { bin, daemonConfig, startDaemon, waitFor } from '../helpers/daemon';
import { execKubeconfig } from '../helpers/exec-kubeconfig';
import { notifySocket } from '../helpers/notify-socket';
import { Tmpfs } from '../helpers/tmpfs';

interface Degradation {
  component: string;
  reason: string;
}

t.test('a full, then read-only state directory: still running, status says degraded, nothing lost once writes work', async (t) => {
  const fs = Tmpfs.mount(t, 512);
  const flagDir = mkdtempSync(join(tmpdir(), 'nha-flag-'));
  t.teardown(() => rmSync(flagDir, { recursive: true, force: true }));
  const flag = join(flagDir, 'ok');
  const made = daemonConfig();
  // A plugin whose condition follows a file: /usr/bin/test -e FILE exits 1 (True) while it is missing.
  writeFileSync(
    join(made.configDir, '10-paths.ini'),
    `[agent]\nstate_dir = ${fs.path}\nruntime_dir = ${made.dir}/run\n[metrics]\nenabled = false\n[kubernetes]\nenabled = false\n` +
      `[plugin "flag"]\npath = /usr/bin/test\nargs = ["-e", "${flag}"]\ncondition = FlagMissing\nreason = FlagIsMissing\nok_reason = FlagIsThere\nok_message = the flag is there\ninterval = 1s\n` +
      `[plugins]\ninterval = 1s\n`,
    { mode: 0o644 },
  );
  const ns = await notifySocket(t);
  const d = await startDaemon(t, { ...made, env: { NOTIFY_SOCKET: ns.path, WATCHDOG_USEC: '400000' } });
  const saved = (): string | undefined => {
    try {
      return (JSON.parse(readFileSync(join(fs.path, 'conditions.json'), 'utf8')) as { conditions: Array<{ type: string; status: string }> }).conditions.find((c) => c.type === 'FlagMissing')?.status;
    } catch {
      return undefined;
    }
  };
  await waitFor('FlagMissing True on disk', () => saved() === 'True');
  const degraded = (): Degradation[] => d.status().degraded as Degradation[];
  t.same(degraded(), []);

  fs.fill();
  writeFileSync(flag, '');
  await waitFor('conditions degraded by ENOSPC', () => degraded().some((x) => x.component === 'conditions' && x.reason === 'ENOSPC'), 15_000);
  t.equal(d.child.exitCode, null, 'still running');
  t.equal(saved(), 'True', 'the disk still holds the old state');
  const human = spawnSync(process.execPath, [bin, 'status', '--socket', d.socket], { encoding: 'utf8' });
  t.match(human.stdout, /DEGRADED conditions \(ENOSPC\) since \S+: .*conditions\.json: cannot save conditions: ENOSPC.*; kept in memory, retrying/);
  const pets = ns.messages.filter((m) => m === 'WATCHDOG=1').length;
  await new Promise((r) => setTimeout(r, 1000));
  t.ok(ns.messages.filter((m) => m === 'WATCHDOG=1').length > pets, 'the watchdog is still petted');

  const freedAt = Date.now();
  fs.free();
  await waitFor('FlagMissing False on disk, with no further change', () => saved() === 'False', 15_000);
  await waitFor('degraded cleared', () => degraded().length === 0);
  t.comment(`recovered ${Date.now() - freedAt} ms after space came back`);
  await waitFor('the recovery in the log', () => /conditions writes again \(degraded since .* by ENOSPC\)/.test(d.stderr()));

  fs.readOnly(true);
  unlinkSync(flag);
  await waitFor('conditions degraded by EROFS', () => degraded().some((x) => x.component === 'conditions' && x.reason === 'EROFS'), 15_000);
  t.equal(d.child.exitCode, null, 'still running');
  fs.readOnly(false);
  await waitFor('FlagMissing True on disk again', () => saved() === 'True', 15_000);
  await waitFor('degraded cleared', () => degraded().length === 0);
  t.equal(d.child.exitCode, null);
});

t.test('READY does not wait for the API server: a slow exec credential plugin and a server that never answers', async (t) => {
  // Accepts connections and never answers.
  const held: Socket[] = [];
  const server = createServer((s) => void held.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of held) s.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'nha-kube-'));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The credential plugin takes 30 s, as a cloud token helper can when its metadata service is slow.
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    execKubeconfig({ server: `https://127.0.0.1:${port}`, command: '/bin/sleep', args: ['30'] }),
    { mode: 0o600 },
  );
  const made = daemonConfig(`[metrics]\nenabled = false\n[kubernetes]\nkubeconfig_paths = ${kubeconfig}\nnode_name = node-1\n`);
  const ns = await notifySocket(t);
  const started = Date.now();
  const d = await startDaemon(t, { ...made, env: { NOTIFY_SOCKET: ns.path } });
  await waitFor('READY=1', () => ns.messages.some((m) => m.startsWith('READY=1')), 10_000);
  const readyMs = Date.now() - started;
  t.ok(readyMs < 10_000, `READY after ${readyMs} ms`);
  const k = d.status().kubernetes as { connected: boolean; credentials: string; lastError: string | null };
  t.equal(k.connected, false, 'reporting is still connecting in the background');
  t.equal(k.credentials, 'exec plugin /bin/sleep', 'the kubeconfig was taken: the exec plugin is what is slow');
  t.ok(existsSync(d.socket));
});
