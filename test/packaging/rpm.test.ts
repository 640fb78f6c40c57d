// The .rpm as rpm sees it: files and modes, requirements, %config(noreplace), scriptlets.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ensurePackages } from '../helpers/packages';

const root = join(__dirname, '../..');
const { rpm } = ensurePackages();
/** The shipped configuration: every etc/*.ini of the repository, in /etc/node-health. */
const configFiles = readdirSync(join(root, 'etc'))
  .filter((f) => f.endsWith('.ini'))
  .map((f) => `/etc/node-health/${f}`)
  .sort();
const query = (...args: string[]) =>
  execFileSync('rpm', ['-qp', ...args, rpm], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });

t.test('name, version, release, architecture', async (t) => {
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  t.match(query('--qf', '%{NAME} %{VERSION} %{RELEASE} %{ARCH}'), new RegExp(`^node-health-agent ${version.replace(/\./g, '\\.')} \\d+ x86_64$`));
  t.match(rpm, /node-health-agent-[^/]+-\d+\.x86_64\.rpm$/);
});

t.test('files, modes and owners (rpm -qlp)', async (t) => {
  const listed = query('-l').trim().split('\n').sort();
  const rows = query('--qf', '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]').trim().split('\n');
  const modes = new Map(rows.map((r) => [r.split(' ')[2], r.split(' ').slice(0, 2).join(' ')]));
  const expected: Record<string, string> = {
    '/etc/node-health': 'drwxr-xr-x root:root',
    ...Object.fromEntries(configFiles.map((f) => [f, '-rw-r--r-- root:root'])),
    '/usr/bin/node-health-agent': '-rwxr-xr-x root:root',
    '/usr/lib/node-health-agent': 'drwxr-xr-x root:root',
    '/usr/lib/node-health-agent/node': '-rwxr-xr-x root:root',
    '/usr/lib/node-health-agent/node-health-agent.js': '-rw-r--r-- root:root',
    '/usr/lib/node-health-agent/node_health_native.node': '-rw-r--r-- root:root',
    '/usr/lib/systemd/system/node-health-agent.service': '-rw-r--r-- root:root',
    '/usr/share/doc/node-health-agent': 'drwxr-xr-x root:root',
    '/usr/share/doc/node-health-agent/LICENSE.node': '-rw-r--r-- root:root',
    '/usr/share/doc/node-health-agent/copyright': '-rw-r--r-- root:root',
    '/usr/share/node-health-agent': 'drwxr-xr-x root:root',
    '/usr/share/node-health-agent/kubernetes': 'drwxr-xr-x root:root',
    '/usr/share/node-health-agent/kubernetes/coordination.yaml': '-rw-r--r-- root:root',
    '/usr/share/node-health-agent/kubernetes/prometheusrule.yaml': '-rw-r--r-- root:root',
    '/usr/share/node-health-agent/prometheus': 'drwxr-xr-x root:root',
    '/usr/share/node-health-agent/prometheus/node-health-agent.rules.yaml': '-rw-r--r-- root:root',
    '/usr/share/node-health-agent/grafana': 'drwxr-xr-x root:root',
    '/usr/share/node-health-agent/grafana/node-health-agent.json': '-rw-r--r-- root:root',
    '/usr/share/man/man8/node-health-agent.8.gz': '-rw-r--r-- root:root',
    '/usr/share/man/man5/node-health.ini.5.gz': '-rw-r--r-- root:root',
    '/usr/share/bash-completion/completions/node-health-agent': '-rw-r--r-- root:root',
  };
  t.same(listed, Object.keys(expected).sort(), 'exactly these paths: the package owns its directories, no Debian-only files');
  for (const [path, mode] of Object.entries(expected)) t.equal(modes.get(path), mode, path);
});

t.test('requirements (rpm -qp --requires)', async (t) => {
  const requires = query('--requires')
    .trim()
    .split('\n')
    .filter((r) => !r.startsWith('rpmlib('));
  // systemd-libs: the addon's libsystemd.so.0; the rest: the Node runtime's C and C++ libraries.
  t.same(requires.sort(), ['glibc >= 2.28', 'libgcc', 'libstdc++', 'systemd-libs']);
});

t.test('configuration is %config(noreplace)', async (t) => {
  t.same(query('--configfiles').trim().split('\n').sort(), configFiles, 'every shipped .ini is a config file');
  const flags = query('--qf', '[%{FILENAMES} %{FILEFLAGS:fflags}\n]').trim().split('\n');
  for (const f of configFiles) t.ok(flags.includes(`${f} cn`), `${f}: config (c) and noreplace (n)`);
  t.ok(flags.filter((f) => !f.startsWith('/etc/')).every((f) => !/ \S*c/.test(f)), 'nothing outside /etc is a config file');
});

t.test('scriptlets: the POSIX scripts of packaging/scripts, run by /bin/sh', async (t) => {
  const listing = query('--scripts');
  for (const phase of ['postinstall', 'preuninstall', 'postuninstall']) {
    t.match(listing, `${phase} scriptlet (using /bin/sh):`, phase);
  }
  t.notMatch(listing, /^(preinstall|pretrans|posttrans) scriptlet/m, 'no other phases');
  const tags: Record<string, string> = { POSTIN: 'postinstall.sh', PREUN: 'preremove.sh', POSTUN: 'postremove.sh' };
  for (const [tag, source] of Object.entries(tags)) {
    const body = query('--qf', `%{${tag}}`);
    t.equal(body.trimEnd(), readFileSync(join(root, 'packaging/scripts', source), 'utf8').trimEnd(), `%{${tag}} is ${source}`);
  }
  // What each phase does with rpm's argument (the count of installed instances after the step).
  const post = query('--qf', '%{POSTIN}');
  t.match(post, /\n\s*1\) action=install ;;/, '%post 1 = install: enable, start when systemd runs');
  t.match(post, /\n\s*\[2-9\] \| \[1-9\]\[0-9\]\*\) action=upgrade ;;/, '%post 2+ = upgrade: try-restart');
  t.match(post, /systemctl enable "\$unit"/);
  t.match(post, /systemctl try-restart "\$unit"/);
  const preun = query('--qf', '%{PREUN}');
  t.match(preun, /\n\s*remove \| 0\) ;;\n\s*\*\) exit 0 ;;/, '%preun acts on erase (0) only, not on upgrade');
  t.match(preun, /systemctl stop "\$unit"/);
  t.match(preun, /systemctl disable "\$unit"/);
  const postun = query('--qf', '%{POSTUN}');
  t.match(postun, /\n\s*remove \| purge \| 0\) ;;\n\s*\*\) exit 0 ;;/, '%postun acts on erase (0) only');
});
