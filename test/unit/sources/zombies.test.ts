import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { hostFs } from '../../../src/sources/probes/procfs';
import { judgeZombies, parseStat, readProcesses, zombieParents, zombiesCheck, zombiesSection } from '../../../src/sources/probes/zombies';
import { defaultsOf, fakeFs, fixture } from './fake-fs';

const cfg = defaultsOf(zombiesSection);

t.test('parses captured stat lines, including a command name with ") ("', async (t) => {
  t.same(parseStat(fixture('stat-zombie-host.txt')), { pid: 27143, comm: 'odd) (name', state: 'Z', ppid: 27142 });
  t.same(parseStat(fixture('stat-zombie-parent-host.txt')), { pid: 27142, comm: 'sleep', state: 'S', ppid: 27137 });
  t.throws(() => parseStat('garbage'), /malformed \/proc\/<pid>\/stat/);
});

t.test('zombies are grouped by parent, most first, and judged on the total', async (t) => {
  const procs = [
    { pid: 10, comm: 'bash', state: 'S', ppid: 1 },
    { pid: 20, comm: 'java', state: 'S', ppid: 1 },
    ...Array.from({ length: 40 }, (_, i) => ({ pid: 100 + i, comm: 'sh', state: 'Z', ppid: 10 })),
    ...Array.from({ length: 15 }, (_, i) => ({ pid: 200 + i, comm: 'curl', state: 'Z', ppid: 20 })),
    { pid: 300, comm: 'x', state: 'Z', ppid: 999 },
  ];
  const parents = zombieParents(procs);
  t.same(parents, [
    { pid: 10, comm: 'bash', zombies: 40 },
    { pid: 20, comm: 'java', zombies: 15 },
    { pid: 999, comm: '?', zombies: 1 },
  ]);
  const f = judgeZombies(parents, cfg);
  t.same([f.status, f.reason], ['warning', 'ZombiesHigh']);
  t.match(f.message, /^56 zombie processes: 40 of PID 10 \(bash\), 15 of PID 20 \(java\), 1 of PID 999 \(\?\); .*tini/);
  t.same(judgeZombies([{ pid: 1, comm: 'x', zombies: 600 }], cfg).reason, 'ZombiesCritical');
  t.same(judgeZombies([], cfg), { subject: '', status: 'ok', reason: 'ZombiesOK', message: 'no zombie processes' });
});

t.test('the scan skips processes that vanish and non-process entries', async (t) => {
  const fs = fakeFs({
    '/proc/self/stat': 'not read',
    '/proc/42/stat': fixture('stat-zombie-host.txt'),
    '/proc/43/stat': { errno: 'ESRCH' },
    '/proc/sys/kernel/pid_max': '32768\n',
  });
  t.same(readProcesses(fs).map((p) => p.pid), [27143]);
});

t.test('the live host: real zombies are counted and their parent named', async (t) => {
  // The shell forks five short-lived children and blocks reading stdin without reaping them; closing
  // stdin lets it reap them and exit, so the test leaves nothing behind.
  const parent = spawn('sh', ['-c', 'for i in 1 2 3 4 5; do sleep 0 & done; read x; wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => parent.on('exit', resolve));
  t.teardown(async () => {
    parent.stdin.end();
    await exited;
  });
  const mine = () => readProcesses(hostFs).filter((p) => p.ppid === parent.pid && p.state === 'Z').length;
  for (let i = 0; i < 100 && mine() < 5; i++) await sleep(20);
  t.equal(mine(), 5, 'five real zombies');

  const [f] = await zombiesCheck({ ...cfg, warning: 5, critical: 1000 }).run();
  t.equal(f?.status, 'warning');
  t.match(f?.message, `5 of PID ${parent.pid} (sh)`);
});
