// Zombie processes: exited, but their parent has not collected the exit status. Each one keeps its PID;
// many of them mean a parent that never reaps — typically a container whose PID 1 is a shell or an
// application rather than an init. The count alone does not help anyone, so findings name the parents.
//
// Reads /proc/<pid>/stat of every process (threads are not listed at the top of /proc): one small read
// per process, a few microseconds each.
import { probe, key } from '../../../config/key';
import { section, type Values } from '../../../config/schema';
import { integer } from '../../../config/values';
import type { Finding, Check } from '../../../types';
import { count, levelAbove, reasonFor } from '../levels';
import { hostFs, isAbsent, type HostFs } from '../procfs';
import { defineProbe } from '../probe';

export const zombiesSection = section({
  name: 'zombies',
  keys: {
    ...probe('Count zombie processes and name the parents that do not reap them.', '1m'),
    warning: key(integer({ min: 1 }), '50', 'Zombie processes that are a warning.'),
    critical: key(integer({ min: 1 }), '500', 'Zombie processes that are a problem.'),
  },
  ordered: [['warning', 'critical']],
});
export type ZombiesSettings = Values<typeof zombiesSection.keys>;

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
}

/** /proc/<pid>/stat: "pid (comm) state ppid …"; comm may itself contain spaces and parentheses. */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`malformed /proc/<pid>/stat: ${text.slice(0, 80)}`);
  const rest = text.slice(close + 2).split(' ', 2);
  return {
    pid: Number(text.slice(0, open)),
    comm: text.slice(open + 2, close),
    state: rest[0] ?? '',
    ppid: Number(rest[1]),
  };
}

export interface ZombieParent {
  pid: number;
  comm: string;
  zombies: number;
}

/** Zombies grouped by parent, most first. Parents that exited already are reported as comm "?". */
export function zombieParents(processes: ProcStat[]): ZombieParent[] {
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const parents = new Map<number, ZombieParent>();
  for (const p of processes) {
    if (p.state !== 'Z') continue;
    const parent = parents.get(p.ppid) ?? { pid: p.ppid, comm: byPid.get(p.ppid)?.comm ?? '?', zombies: 0 };
    parent.zombies++;
    parents.set(p.ppid, parent);
  }
  return [...parents.values()].sort((a, b) => b.zombies - a.zombies || a.pid - b.pid);
}

export function judgeZombies(parents: ZombieParent[], cfg: ZombiesSettings): Finding {
  const total = parents.reduce((n, p) => n + p.zombies, 0);
  const status = total === 0 ? 'ok' : levelAbove(total, cfg.warning, cfg.critical);
  const top = parents
    .slice(0, 3)
    .map((p) => `${count(p.zombies)} of PID ${p.pid} (${p.comm})`)
    .join(', ');
  const noun = total === 1 ? 'zombie process' : 'zombie processes';
  const what = total === 0 ? 'no zombie processes' : `${count(total)} ${noun}: ${top}${parents.length > 3 ? ', …' : ''}`;
  return {
    subject: '',
    status,
    reason: reasonFor(status, 'ZombiesOK', 'ZombiesHigh', 'ZombiesCritical'),
    message:
      status === 'ok'
        ? what
        : `${what}; each holds a PID until its parent reaps it — restart the parent (or its container), and give ` +
          'containers an init that reaps (tini, docker --init, shareProcessNamespace)',
  };
}

/** Every process's stat, skipping processes that exit while the scan runs. */
export function readProcesses(fs: HostFs): ProcStat[] {
  const processes: ProcStat[] = [];
  for (const name of fs.list('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let text: string;
    try {
      text = fs.read(`/proc/${name}/stat`);
    } catch (err) {
      // ESRCH: it exited between open and read.
      if (isAbsent(err) || (err as NodeJS.ErrnoException).code === 'ESRCH') continue;
      throw err;
    }
    processes.push(parseStat(text));
  }
  return processes;
}

export function zombiesCheck(cfg: ZombiesSettings, fs: HostFs = hostFs): Check {
  return {
    component: 'host',
    name: 'zombies',
    async run() {
      return [judgeZombies(zombieParents(readProcesses(fs)), cfg)];
    },
  };
}

export const zombiesProbe = defineProbe({
  section: zombiesSection,
  healthy: { reason: 'ZombiesOK', message: 'few zombie processes' },
  make: (cfg) => zombiesCheck(cfg),
});
