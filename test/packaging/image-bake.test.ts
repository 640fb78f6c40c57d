// Installing the packages while an image is baked: into a copy of this host's root (an overlay of /)
// through chroot, with no systemd running. The package must install, enable the unit without starting
// it, run, keep the operator's edits and the operator's choice to disable it across upgrades, and go
// away cleanly.
import { copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ensurePackages } from '../helpers/packages';
import { mountOverlay, type Overlay } from './overlay';

const pkgs = ensurePackages();
const version = (JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;
const unit = 'node-health-agent.service';
const wants = `/etc/systemd/system/multi-user.target.wants/${unit}`;
const conffile = '/etc/node-health/node-health.ini';
const marker = '/var/lib/node-health/.enabled-at-removal';

function ok(t: tap.Test, box: Overlay, what: string, ...argv: string[]): string {
  const res = box.chroot(...argv);
  t.equal(res.code, 0, `${what}${res.code === 0 ? '' : `: ${res.stderr}${res.stdout}`}`);
  return res.stdout;
}

const exists = (box: Overlay, path: string) => {
  try {
    lstatSync(join(box.root, path));
    return true;
  } catch {
    return false;
  }
};

/** Processes running the bundled node from inside this overlay: the unit must not have been started. */
function agentsRunning(box: Overlay): number[] {
  const exe = join(box.root, 'usr/lib/node-health-agent/node');
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/exe`).replace(/ \(deleted\)$/, '') === exe;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function checkInstalled(t: tap.Test, box: Overlay, unitPath: string): void {
  t.notOk(existsSync(join(box.root, 'run/systemd/system')), 'precondition: no systemd runs in the chroot');
  t.ok(existsSync(join(box.root, unitPath)), `the unit is at ${unitPath}`);
  t.ok(lstatSync(join(box.root, wants)).isSymbolicLink(), `enabled: ${wants} exists`);
  t.match(readlinkSync(join(box.root, wants)), /^(\/usr)?\/lib\/systemd\/system\/node-health-agent\.service$/);
  t.equal(box.chroot('systemctl', 'is-enabled', unit).stdout.trim(), 'enabled', 'systemctl is-enabled says enabled');
  t.same(agentsRunning(box), [], 'not started');
  t.notOk(exists(box, '/run/node-health'), 'no runtime directory: never ran');
  t.equal(ok(t, box, 'the command runs with the bundled node', '/usr/bin/node-health-agent', 'version'), `node-health-agent ${version}\n`);
  const addon = ok(t, box, 'the addon loads in the bundled node (libsystemd found, stripped binaries intact)',
    '/usr/lib/node-health-agent/node', '-p', "Object.keys(require('/usr/lib/node-health-agent/node_health_native.node')).join()");
  t.match(addon, /notify/);
  const verify = box.chroot('systemd-analyze', 'verify', unit);
  t.equal(verify.code, 0, 'systemd-analyze verify accepts the installed unit');
  t.equal(verify.stderr, '', `systemd-analyze verify has no complaint${verify.stderr ? `: ${verify.stderr}` : ''}`);
}

t.test('deb: dpkg -i, upgrade, remove, reinstall, purge in a chroot', async (t) => {
  const box = mountOverlay(t);
  copyFileSync(pkgs.deb, join(box.root, 'tmp/node-health-agent.deb'));

  const first = box.chroot('dpkg', '-i', '/tmp/node-health-agent.deb');
  t.equal(first.code, 0, `dpkg -i exits 0${first.code ? `: ${first.stderr}` : ''}`);
  t.match(first.stderr, /Created symlink .*multi-user\.target\.wants\/node-health-agent\.service/);
  checkInstalled(t, box, '/lib/systemd/system/node-health-agent.service');

  // Upgrade (dpkg -i over an installed version: prerm upgrade, postinst configure <old>): an edited
  // conffile is kept; enablement is left alone.
  writeFileSync(join(box.root, conffile), `${readFileSync(join(box.root, conffile), 'utf8')}\n[disk]\ninterval = 1m\n`);
  ok(t, box, 'admin disables the unit', 'systemctl', 'disable', unit);
  ok(t, box, 'upgrade installs', 'dpkg', '-i', '/tmp/node-health-agent.deb');
  t.match(readFileSync(join(box.root, conffile), 'utf8'), /interval = 1m\n$/, 'the edited conffile is kept');
  t.notOk(exists(box, `${conffile}.dpkg-new`) || exists(box, `${conffile}.dpkg-dist`), 'no conffile prompt left behind');
  t.notOk(exists(box, wants), 'a unit the admin disabled stays disabled across an upgrade');
  t.same(agentsRunning(box), [], 'the upgrade started nothing');

  // Remove keeps the conffiles; a later install enables the unit again if it was enabled at removal.
  ok(t, box, 'admin enables the unit again', 'systemctl', 'enable', unit);
  ok(t, box, 'dpkg -r exits 0', 'dpkg', '-r', 'node-health-agent');
  t.notOk(exists(box, wants), 'removed: disabled');
  t.notOk(exists(box, '/usr/lib/node-health-agent'), 'removed: the program is gone');
  t.notOk(exists(box, '/usr/bin/node-health-agent'), 'removed: the command is gone');
  t.ok(exists(box, conffile), 'removed: the conffile stays until purge');
  t.ok(exists(box, marker), 'removed: the enablement is remembered');
  ok(t, box, 'install after remove', 'dpkg', '-i', '/tmp/node-health-agent.deb');
  t.ok(exists(box, wants), 'an install after remove enables the unit again');
  t.notOk(exists(box, marker), 'the marker is consumed');
  t.match(readFileSync(join(box.root, conffile), 'utf8'), /interval = 1m\n$/, 'the edited conffile survived remove and install');

  // Purge: everything the package and the agent made is gone.
  ok(t, box, 'dpkg --purge exits 0', 'dpkg', '--purge', 'node-health-agent');
  for (const path of [wants, conffile, '/etc/node-health', '/var/lib/node-health', '/usr/lib/node-health-agent',
    '/lib/systemd/system/node-health-agent.service', '/usr/bin/node-health-agent', '/usr/share/doc/node-health-agent']) {
    t.notOk(exists(box, path), `purged: ${path} is gone`);
  }
  t.not(box.chroot('dpkg-query', '-W', 'node-health-agent').code, 0, 'dpkg knows the package no more');
  t.same(agentsRunning(box), [], 'nothing was started at any point');
});

t.test('rpm: rpm -i, upgrade, erase in a chroot', async (t) => {
  const box = mountOverlay(t);
  copyFileSync(pkgs.rpm, join(box.root, 'tmp/node-health-agent.rpm'));
  // --nodeps: the chroot is Debian, its libraries are in dpkg's database, not rpm's.
  ok(t, box, 'rpm -i exits 0', 'rpm', '-i', '--nodeps', '/tmp/node-health-agent.rpm');
  checkInstalled(t, box, '/usr/lib/systemd/system/node-health-agent.service');

  // rpm --reinstall runs the upgrade scriptlets: new %post with 2, old %preun and %postun with 1.
  writeFileSync(join(box.root, conffile), `${readFileSync(join(box.root, conffile), 'utf8')}\n[disk]\ninterval = 1m\n`);
  ok(t, box, 'admin disables the unit', 'systemctl', 'disable', unit);
  ok(t, box, 'upgrade (rpm --reinstall) exits 0', 'rpm', '--reinstall', '--nodeps', '/tmp/node-health-agent.rpm');
  t.match(readFileSync(join(box.root, conffile), 'utf8'), /interval = 1m\n$/, '%config(noreplace) keeps the edit');
  t.notOk(exists(box, wants), 'a unit the admin disabled stays disabled across an upgrade');
  t.ok(exists(box, '/usr/lib/node-health-agent/node'), 'the old package\'s %preun/%postun (argument 1) removed nothing');

  ok(t, box, 'admin enables the unit again', 'systemctl', 'enable', unit);
  ok(t, box, 'rpm -e exits 0', 'rpm', '-e', 'node-health-agent');
  t.notOk(exists(box, wants), 'erased: disabled');
  for (const path of ['/usr/lib/node-health-agent', '/usr/lib/systemd/system/node-health-agent.service', '/usr/bin/node-health-agent']) {
    t.notOk(exists(box, path), `erased: ${path} is gone`);
  }
  t.ok(exists(box, `${conffile}.rpmsave`), 'the edited config is kept as .rpmsave');
  t.ok(exists(box, marker), 'rpm has no purge: the state directory stays for a reinstall');
  t.same(agentsRunning(box), [], 'nothing was started at any point');
});
