// The .deb as dpkg and lintian see it: layout, modes, control fields, conffiles, maintainer scripts.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ensurePackages } from '../helpers/packages';

const root = join(__dirname, '../..');
const { deb } = ensurePackages();
/** The shipped configuration: every etc/*.ini of the repository, in /etc/node-health. */
const configFiles = readdirSync(join(root, 'etc'))
  .filter((f) => f.endsWith('.ini'))
  .map((f) => `/etc/node-health/${f}`)
  .sort();
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });

/** path -> mode string ("-rwxr-xr-x") and owner, from `dpkg-deb -c`. */
function contents(): Map<string, { mode: string; owner: string }> {
  const files = new Map<string, { mode: string; owner: string }>();
  for (const line of run('dpkg-deb', '-c', deb).trim().split('\n')) {
    const [mode, owner, , , , path] = line.split(/\s+/);
    if (mode && owner && path) files.set(path.replace(/^\./, '').replace(/\/$/, '') || '/', { mode, owner });
  }
  return files;
}

t.test('files, modes and owners', async (t) => {
  const files = contents();
  const expected: Record<string, string> = {
    '/usr/bin/node-health-agent': '-rwxr-xr-x',
    '/usr/lib/node-health-agent/node': '-rwxr-xr-x',
    '/usr/lib/node-health-agent/node-health-agent.js': '-rw-r--r--',
    '/usr/lib/node-health-agent/node_health_native.node': '-rw-r--r--',
    '/lib/systemd/system/node-health-agent.service': '-rw-r--r--',
    ...Object.fromEntries(configFiles.map((f) => [f, '-rw-r--r--'])),
    '/usr/share/doc/node-health-agent/copyright': '-rw-r--r--',
    '/usr/share/doc/node-health-agent/changelog.Debian.gz': '-rw-r--r--',
    '/usr/share/doc/node-health-agent/LICENSE.node': '-rw-r--r--',
    '/usr/share/lintian/overrides/node-health-agent': '-rw-r--r--',
    '/usr/share/node-health-agent/kubernetes/coordination.yaml': '-rw-r--r--',
    '/usr/share/node-health-agent/kubernetes/prometheusrule.yaml': '-rw-r--r--',
    '/usr/share/node-health-agent/prometheus/node-health-agent.rules.yaml': '-rw-r--r--',
    '/usr/share/node-health-agent/grafana/node-health-agent.json': '-rw-r--r--',
    '/usr/share/man/man8/node-health-agent.8.gz': '-rw-r--r--',
    '/usr/share/man/man5/node-health.ini.5.gz': '-rw-r--r--',
    '/usr/share/bash-completion/completions/node-health-agent': '-rw-r--r--',
  };
  for (const [path, mode] of Object.entries(expected)) {
    t.equal(files.get(path)?.mode, mode, `${path} is in the package with mode ${mode}`);
  }
  const regular = [...files].filter(([, f]) => !f.mode.startsWith('d'));
  t.same(regular.map(([p]) => p).sort(), Object.keys(expected).sort(), 'nothing else: no headers, no source map');
  for (const [path, f] of files) t.match(f.owner, /^(root\/root|0\/0)$/, `${path} is owned by root`);
  t.notOk(files.has('/usr/lib/systemd/system/node-health-agent.service'), 'the unit is in the Debian location only');
});

t.test('monitoring: the rule file, its PrometheusRule and the dashboard as in the repository', async (t) => {
  const packaged = (path: string) => execFileSync('tar', ['-xO', `.${path}`], { input: execFileSync('dpkg-deb', ['--fsys-tarfile', deb], { maxBuffer: 256 << 20 }), encoding: 'utf8' });
  const share = '/usr/share/node-health-agent';
  t.equal(packaged(`${share}/prometheus/node-health-agent.rules.yaml`), readFileSync(join(root, 'packaging/monitoring/node-health-agent.rules.yaml'), 'utf8'));
  t.equal(packaged(`${share}/grafana/node-health-agent.json`), readFileSync(join(root, 'packaging/monitoring/node-health-agent.dashboard.json'), 'utf8'));
  t.equal(packaged(`${share}/kubernetes/prometheusrule.yaml`), run(process.execPath, join(root, 'packaging/monitoring/prometheusrule.mjs')), 'generated from the rule file');
});

t.test('control fields: version, architecture, dependencies', async (t) => {
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const field = (name: string) => run('dpkg-deb', '-f', deb, name).trim();
  t.equal(field('Package'), 'node-health-agent');
  t.match(field('Version'), new RegExp(`^${version.replace(/\./g, '\\.')}-\\d+$`));
  t.equal(field('Architecture'), 'amd64');
  const depends = field('Depends').split(/,\s*/).map((d) => d.split(' ')[0]);
  t.same(depends.sort(), ['libc6', 'libgcc-s1', 'libstdc++6', 'libsystemd0']);

  // Every library package the shipped ELF files need, by dpkg-shlibdeps, must be a dependency.
  const work = mkdtempSync(join(tmpdir(), 'nha-shlibs-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  run('dpkg-deb', '-x', deb, join(work, 'pkg'));
  mkdirSync(join(work, 'debian'));
  writeFileSync(join(work, 'debian/control'), 'Source: x\n\nPackage: node-health-agent\nArchitecture: any\n');
  const lib = join(work, 'pkg/usr/lib/node-health-agent');
  const res = spawnSync('dpkg-shlibdeps', ['-O', '--warnings=0', join(lib, 'node'), join(lib, 'node_health_native.node')], {
    cwd: work,
    encoding: 'utf8',
  });
  t.equal(res.status, 0, `dpkg-shlibdeps ran${res.status ? `: ${res.stderr}` : ''}`);
  const needed = res.stdout
    .replace(/^shlibs:Depends=/, '')
    .trim()
    .split(/,\s*/)
    .map((d) => d.split(' ')[0] ?? '');
  t.ok(needed.length >= 3, `dpkg-shlibdeps found the libraries: ${needed.join(', ')}`);
  for (const pkg of needed) t.ok(depends.includes(pkg), `Depends names ${pkg}`);
});

t.test('conffiles: the shipped configuration is the operator\'s', async (t) => {
  const conffiles = run('dpkg-deb', '-I', deb, 'conffiles').trim().split('\n');
  t.ok(configFiles.includes('/etc/node-health/node-health.ini'), 'the main file is among them');
  t.same(conffiles.sort(), configFiles, 'every shipped .ini is a conffile');
});

t.test('maintainer scripts are the POSIX scripts of packaging/scripts', async (t) => {
  const ctrl = mkdtempSync(join(tmpdir(), 'nha-ctrl-'));
  t.teardown(() => rmSync(ctrl, { recursive: true, force: true }));
  run('dpkg-deb', '-e', deb, ctrl);
  const phases: Record<string, string> = { postinst: 'postinstall.sh', prerm: 'preremove.sh', postrm: 'postremove.sh' };
  for (const [phase, source] of Object.entries(phases)) {
    t.equal(readFileSync(join(ctrl, phase), 'utf8'), readFileSync(join(root, 'packaging/scripts', source), 'utf8'), phase);
    const syntax = spawnSync('dash', ['-n', join(ctrl, phase)], { encoding: 'utf8' });
    t.equal(syntax.status, 0, `${phase} parses as POSIX sh${syntax.status ? `: ${syntax.stderr}` : ''}`);
  }
  t.notOk(existsSync(join(ctrl, 'preinst')), 'no preinst');
});

t.test('lintian: no errors', async (t) => {
  const res = spawnSync('lintian', ['--display-info', '--tag-display-limit', '0', deb], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const lines = res.stdout.split('\n');
  const tags = lines.filter((l) => /^[EW]: /.test(l));
  t.equal(res.status, 0, `lintian exits 0${res.status ? `; it said:\n${res.stdout}${res.stderr}` : ''}`);
  t.same(tags.filter((l) => l.startsWith('E: ')), [], 'no E: tags');
  t.same(tags, [], 'no warnings either (overrides in packaging/lintian-overrides say why)');
  t.same(lines.filter((l) => l.includes('systemd-service-file-missing-documentation-key')), [], 'the unit names its man pages');
});
