// Unit object paths as systemd escapes them, and D-Bus variants as plain values. The live bus is tested
// in the box (test/e2e/repair*.test.ts).
import t from 'tap';
import { Variant } from 'dbus-next';
import { plain, unitPath } from '../../../src/system/systemd/systemd-bus';

t.test('unit paths: every byte outside [A-Za-z0-9] and a leading digit become _xx', async (t) => {
  const base = '/org/freedesktop/systemd1/unit/';
  t.equal(unitPath('containerd.service'), `${base}containerd_2eservice`);
  t.equal(unitPath('kube-container-runtime-monitor.service'), `${base}kube_2dcontainer_2druntime_2dmonitor_2eservice`);
  t.equal(unitPath('getty@tty1.service'), `${base}getty_40tty1_2eservice`);
  t.equal(unitPath('1password.service'), `${base}_31password_2eservice`);
  t.equal(unitPath('a_b.service'), `${base}a_5fb_2eservice`);
});

t.test('variants unwrap; uint64 becomes a number; arrays unwrap item by item', async (t) => {
  t.equal(plain(new Variant('s', 'active')), 'active');
  t.equal(plain(new Variant('t', 1795582292109065n)), 1795582292109065);
  t.same(plain(new Variant('(uo)', [527, '/org/freedesktop/systemd1/job/527'])), [527, '/org/freedesktop/systemd1/job/527']);
  t.same(plain([new Variant('u', 1), 2n]), [1, 2]);
});
