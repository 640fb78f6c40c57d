// The daemon's conversation with the service manager, over a real notify socket.
import t from 'tap';
import { startDaemon, waitFor } from '../helpers/daemon';
import { notifySocket } from '../helpers/notify-socket';

t.test('READY after the status socket is up, RELOADING/READY on SIGHUP, STOPPING on SIGTERM', async (t) => {
  const ns = await notifySocket(t);
  const d = await startDaemon(t, { env: { NOTIFY_SOCKET: ns.path } });
  await waitFor('READY=1', () => ns.messages.some((m) => m.startsWith('READY=1\nSTATUS=config generation 1')));

  d.child.kill('SIGHUP');
  await waitFor('READY after reload', () => ns.messages.some((m) => m.startsWith('READY=1\nSTATUS=config generation 2')));
  const reloading = ns.messages.findIndex((m) => /^RELOADING=1\nMONOTONIC_USEC=\d+$/.test(m));
  t.ok(reloading > 0, 'RELOADING=1 with MONOTONIC_USEC was sent');

  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0);
  t.ok(ns.messages.includes('STOPPING=1'));
});

t.test('the watchdog is petted from the main loop and stops when the process is stopped', async (t) => {
  const ns = await notifySocket(t);
  const d = await startDaemon(t, { env: { NOTIFY_SOCKET: ns.path, WATCHDOG_USEC: '200000' } });
  const pets = (): number => ns.messages.filter((m) => m === 'WATCHDOG=1').length;
  await waitFor('three pets', () => pets() >= 3, 3000);
  d.child.kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, 150));
  const frozen = pets();
  await new Promise((r) => setTimeout(r, 600));
  t.equal(pets(), frozen, 'no pets while stopped, so systemd would restart it');
  d.child.kill('SIGCONT');
  await waitFor('pets resume', () => pets() > frozen, 3000);
});
