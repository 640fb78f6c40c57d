// What an operator reaches for on a node, from the installed .deb in a booted systemd (node in a box):
// `man`, bash completion as bash-completion loads it, and a support bundle of the running daemon.
import t from 'tap';
import { Box } from '../helpers/box';
import { until } from '../helpers/node';
import { ensurePackages } from '../helpers/packages';

const UNIT = 'node-health-agent.service';
const TEXT_ENV = { LC_ALL: 'C.UTF-8', MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '100' };

t.test('man pages, completion and a support bundle after dpkg -i', async (t) => {
  const { deb } = ensurePackages();
  const box = await Box.up(t, 'nha-ops');
  // Minimal Debian images keep dpkg from unpacking man pages; this host's root (the box's) must not.
  const excludes = await box.exec(['sh', '-c', 'cat /etc/dpkg/dpkg.cfg.d/* 2>/dev/null | grep "^path-exclude.*/usr/share/man" || true']);
  t.equal(excludes.stdout.trim(), '', 'dpkg unpacks /usr/share/man here (no path-exclude in /etc/dpkg/dpkg.cfg.d)');
  // The metrics port is the host's (boxes share its network): off, as in the other box tests.
  await box.check(['sh', '-c', 'mkdir -p /etc/node-health && printf "[metrics]\\nenabled = false\\n" > /etc/node-health/50-operator-test.ini && chmod 0644 /etc/node-health/50-operator-test.ini']);
  await box.copyIn(deb, '/var/tmp/agent.deb');
  const install = await box.exec(['dpkg', '-i', '/var/tmp/agent.deb'], { timeoutMs: 120_000 });
  t.equal(install.code, 0, `dpkg -i: ${install.stderr}`);

  t.test('man node-health-agent and man 5 node-health.ini', async (t) => {
    t.equal((await box.check(['man', '-w', 'node-health-agent'])).trim(), '/usr/share/man/man8/node-health-agent.8.gz');
    const page8 = await box.exec(['man', 'node-health-agent'], { env: TEXT_ENV });
    t.equal(page8.code, 0, page8.stderr);
    t.match(page8.stdout, /^NODE-HEALTH-AGENT\(8\)/);
    for (const s of ['node-health-agent config check', 'node-health-agent bundle', '--config-dir', 'EXIT STATUS']) t.match(page8.stdout, s);
    const page5 = await box.exec(['man', '5', 'node-health.ini'], { env: TEXT_ENV });
    t.equal(page5.code, 0, page5.stderr);
    t.match(page5.stdout, /^NODE-HEALTH.INI\(5\)/);
    t.match(page5.stdout, /\[disk\]\s+enabled = true/);
    t.match(page5.stdout, /space_warning = 85%/);
    t.match(page5.stdout, /\[rule "name"\]/);
  });

  t.test('bash-completion loads the completion on first use', async (t) => {
    const script = [
      'source /usr/share/bash-completion/bash_completion',
      '__load_completion node-health-agent || exit 3',
      'complete -p node-health-agent',
      'COMP_WORDS=(node-health-agent config check --d); COMP_CWORD=3; _node_health_agent; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(node-health-agent b); COMP_CWORD=1; _node_health_agent; echo "${COMPREPLY[*]}"',
      'cd /etc && COMP_WORDS=(node-health-agent diagnose --config-dir node-h); COMP_CWORD=3; _node_health_agent; echo "${COMPREPLY[*]}"',
    ].join('\n');
    const res = await box.exec(['bash', '--norc', '-c', script]);
    t.equal(res.code, 0, res.stderr);
    t.same(res.stdout.trim().split('\n'), ['complete -F _node_health_agent node-health-agent', '--dir', 'bundle', 'node-health']);
  });

  t.test('bundle of the running daemon: its status, its journal, containerd from its socket', async (t) => {
    const pid = await until('the agent running', async () => {
      const s = (await box.check(['systemctl', 'show', UNIT, '--property=ActiveState', '--property=MainPID'])).trim();
      return s.includes('ActiveState=active') && /MainPID=(\d+)/.exec(s)?.[1];
    }, 20_000);
    await until('the start in the journal', async () => (await box.check(['journalctl', '-u', UNIT, '-o', 'cat'])).includes('started'), 10_000);

    const started = Date.now();
    const res = await box.exec(['node-health-agent', 'bundle', '--since', '10m', '-o', '/root/bundle.tar.gz'], { timeoutMs: 60_000 });
    t.equal(res.code, 0, res.stderr);
    t.comment(`bundle in ${Date.now() - started} ms: ${res.stdout.trim()}`);
    t.match(await box.check(['stat', '-c', '%a', '/root/bundle.tar.gz']), /^600/);
    const list = (await box.check(['tar', '-tzf', '/root/bundle.tar.gz'])).trim().split('\n');
    const top = list[0] as string;
    t.match(top, /^node-health-bundle-nha-ops-[\w-]+-\d{8}T\d{6}Z\/$/);
    for (const f of ['README.txt', 'status.json', 'config/effective.ini', 'state/files.txt', 'journal/agent.log', 'journal/kernel.log', 'host/proc/pressure/memory', 'versions.txt']) {
      t.ok(list.includes(`${top}${f}`), `${f} is in the bundle`);
    }
    const read = (f: string) => box.check(['tar', '-xzOf', '/root/bundle.tar.gz', `${top}${f}`]);
    const status = JSON.parse(await read('status.json')) as { pid: number };
    t.equal(String(status.pid), pid, "status.json is the running daemon's");
    t.match(await read('journal/agent.log'), /^\S+Z \S+: node-health-agent \S+ started$/m, "the agent's journal, read natively");
    t.match(await read('config/effective.ini'), /^enabled = false {2}; \/etc\/node-health\/50-operator-test\.ini:2$/m);
    t.match(await read('versions.txt'), /^containerd \S+ \(revision \S+\), from the daemon on \/run\/containerd\/containerd\.sock$/m, "the box's containerd answered");
    const readme = await read('README.txt');
    t.notMatch(readme, /status: the daemon did not answer/);
    // A healthy node may not have saved conditions yet (they are saved on a change): then README says so.
    const saved = (await box.exec(['test', '-e', '/var/lib/node-health/conditions.json'])).code === 0;
    if (saved) t.ok(list.includes(`${top}state/conditions.json`), 'the saved conditions are in the bundle');
    else t.match(readme, 'state: /var/lib/node-health/conditions.json: not there (nothing written yet)');
  });
});
