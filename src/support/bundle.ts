// The support bundle: one tar.gz an operator attaches to a ticket. What it holds is listed in
// docs/operations.md. Every part is best effort with a deadline: what cannot be collected is named in
// README.txt with the reason, and never stops the rest. Every text passes through redactText, and
// kubeconfigs are rebuilt from an allowlist, so no token, key or certificate leaves the node.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { hostname, release } from 'node:os';
import { join, relative } from 'node:path';
import { effectiveConfig } from '../config/effective';
import { loadConfig, type LoadedConfig } from '../config/load';
import { schema, settingsOf as sectionSettings, type Keys } from '../config/schema';
import { probeSections } from '../sources/checks';
import { diskSection } from '../sources/probes/disk';
import { readonlySection } from '../sources/probes/readonly';
import { messageOf } from '../errors';
import { fetchStatus } from '../outputs/status/client';
import { ContainerdClient } from '../sources/runtime/containerd';
import { isServed, SERVED_TIMEOUT_MS, statfsApart, type StatfsResult } from '../sources/probes/disk';
import { mountOf, readMounts, type Mount } from '../sources/probes/mountinfo';
import { KUBEPODS_DIRS } from '../sources/probes/pressure';
import type { NativeLoader } from '../system/native';
import { VERSION } from '../version';
import { redactKubeconfig, redactText } from './redact';
import { TarWriter } from './tar';

export interface BundleOptions {
  /** The journal window: entries from now - sinceMs on. */
  sinceMs: number;
  configDir?: string;
  /** The native addon, for reading the journal. */
  native: NativeLoader;
  /** How long each outside source (daemon, containerd, kubelet, a command) may take. */
  deadlineMs?: number;
  now?: Date;
}

export interface Bundle {
  /** The archive's top directory, e.g. node-health-bundle-node1-20260101T120000Z */
  name: string;
  archive: Buffer;
  /** What could not be collected, and why (also in README.txt). */
  notes: string[];
}

/** The settings the bundle needs; the defaults when the config cannot be loaded. */
interface Settings {
  stateDir: string;
  runtimeDir: string;
  containerdSocket: string;
  watchedPaths: string[];
  kubeconfigs: Array<{ label: string; path: string }>;
  tokenFile: string | undefined;
}

const UNIT = 'node-health-agent.service';
/** Most a journal file or a state file may add; larger ones keep their newest part. */
const MAX_TEXT_BYTES = 16 << 20;
const JOURNAL_BATCH = 1000;

/** Kernel files the probes read (docs/probes.md), copied as they are under host/. */
const HOST_FILES = [
  '/proc/pressure/cpu',
  '/proc/pressure/memory',
  '/proc/pressure/io',
  ...KUBEPODS_DIRS.flatMap((d) => ['cpu', 'memory', 'io'].map((r) => `${d}/${r}.pressure`)),
  '/proc/meminfo',
  '/proc/loadavg',
  '/proc/uptime',
  '/proc/version',
  '/proc/1/mountinfo',
  '/proc/self/mountinfo',
  '/proc/sys/net/netfilter/nf_conntrack_count',
  '/proc/sys/net/netfilter/nf_conntrack_max',
  '/proc/sys/fs/file-nr',
  '/proc/sys/kernel/pid_max',
  '/proc/sys/kernel/threads-max',
  '/proc/sys/kernel/tainted',
  '/proc/net/dev',
  '/proc/net/snmp',
];

export async function collectBundle(options: BundleOptions): Promise<Bundle> {
  const now = options.now ?? new Date();
  const deadlineMs = options.deadlineMs ?? 5000;
  const host = hostname();
  const name = `node-health-bundle-${host.replace(/[^A-Za-z0-9.-]/g, '_')}-${now.toISOString().replace(/[-:]|\.\d+/g, '')}`;
  const tar = new TarWriter(now);
  const notes: string[] = [];
  const contents: string[] = [];
  /** Adds a text file (redacted), listed in README.txt under `what` unless that is omitted. */
  const add = (path: string, text: string, what?: string): void => {
    tar.file(`${name}/${path}`, redactText(text));
    if (what !== undefined) contents.push(`${path.padEnd(34)} ${what}`);
  };
  const note = (what: string): void => {
    notes.push(what);
  };

  // Configuration.
  let loaded: LoadedConfig | undefined;
  try {
    loaded = loadConfig(options.configDir, { required: options.configDir !== undefined, sections: probeSections() });
    add('config/effective.ini', effectiveConfig(loaded), 'the merged configuration, with the file:line of each value');
  } catch (err) {
    add('config/error.txt', `${messageOf(err)}\n`, 'why the configuration could not be loaded');
    note(`configuration: ${messageOf(err).split('\n')[0]}; state, socket and paths below are the defaults`);
  }
  const settings = settingsOf(loaded);

  // The daemon's live state.
  const socket = join(settings.runtimeDir, 'agent.sock');
  try {
    add('status.json', `${JSON.stringify(await fetchStatus(socket, deadlineMs), null, 2)}\n`, 'node-health-agent status --json, from the daemon');
  } catch (err) {
    note(`status: the daemon did not answer: ${messageOf(err)}`);
  }

  // State: conditions and ledgers, and what else the directory holds.
  if (!existsSync(settings.stateDir)) {
    note(`state: ${settings.stateDir} does not exist (the daemon has not run with this configuration)`);
  } else {
    for (const file of ['conditions.json', 'repair-ledger.jsonl', 'ladder-ledger.jsonl']) {
      const path = join(settings.stateDir, file);
      try {
        add(`state/${file}`, tail(readFileSync(path)), path);
      } catch (err) {
        note(`state: ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not there (nothing written yet)' : messageOf(err)}`);
      }
    }
    try {
      add('state/files.txt', listing(settings.stateDir), `every file under ${settings.stateDir}: mode, size, modified`);
    } catch (err) {
      note(`state: cannot list ${settings.stateDir}: ${messageOf(err)}`);
    }
  }

  // The journal of the window.
  const sinceUs = (now.getTime() - options.sinceMs) * 1000;
  const window = `since ${new Date(sinceUs / 1000).toISOString()}`;
  for (const [file, match, what] of [
    ['journal/agent.log', { _SYSTEMD_UNIT: UNIT }, `the agent's journal (${UNIT}) ${window}`],
    ['journal/kernel.log', { _TRANSPORT: 'kernel' }, `the kernel's messages ${window}`],
  ] as const) {
    try {
      const { text, entries, cut } = readJournal(options.native, match, sinceUs);
      add(file, text, `${what}: ${entries} entries${cut ? ', the newest kept' : ''}`);
    } catch (err) {
      note(`${file}: cannot read the journal: ${messageOf(err)}`);
    }
  }

  // What the probes read.
  const absent: string[] = [];
  for (const path of HOST_FILES) {
    try {
      add(`host${path}`, readFileSync(path, 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') absent.push(path);
      else note(`host: ${path}: ${messageOf(err)}`);
    }
  }
  contents.push(`${'host/proc/…, host/sys/…'.padEnd(34)} what the probes read, as the kernel gives it`);
  // The pods' cgroup is in one of several places; only its absence everywhere is worth a note.
  const pods = absent.filter((p) => KUBEPODS_DIRS.some((d) => p.startsWith(`${d}/`)));
  if (pods.length === KUBEPODS_DIRS.length * 3) note('host: no kubepods cgroup with PSI files (no pods here, or PSI is off)');
  const missing = absent.filter((p) => !pods.includes(p));
  if (missing.length > 0) note(`host: not on this kernel (feature off or module not loaded): ${missing.join(', ')}`);
  add('host/statfs.json', `${JSON.stringify(await statfsOf(settings.watchedPaths, deadlineMs), null, 2)}\n`, 'statfs(2) of the watched paths and the state directory, with their mounts');

  // Versions, each with its own deadline, in parallel.
  const versions = await Promise.all([
    Promise.resolve(`node-health-agent ${VERSION} (Node.js ${process.version})`),
    Promise.resolve(`kernel ${release()}`),
    withDeadline(
      (async () => {
        const client = new ContainerdClient(settings.containerdSocket);
        try {
          const v = await client.version(deadlineMs);
          return `containerd ${v.version} (revision ${v.revision}), from the daemon on ${settings.containerdSocket}`;
        } finally {
          client.close();
        }
      })(),
      deadlineMs,
      `containerd (daemon on ${settings.containerdSocket})`,
    ),
    command('containerd', ['--version'], deadlineMs),
    command('kubelet', ['--version'], deadlineMs),
    command('systemctl', ['--version'], deadlineMs),
  ]);
  add('versions.txt', `${versions.map((v) => v.split('\n')[0]).join('\n')}\n`, 'agent, kernel, containerd, kubelet, systemd');

  // Kubeconfigs, reduced to what helps (no certificate, key, token or exec environment value).
  for (const { label, path } of settings.kubeconfigs) {
    try {
      add(`kubernetes/${label}.kubeconfig.json`, `${JSON.stringify(redactKubeconfig(readFileSync(path, 'utf8')), null, 2)}\n`, `${path}, secrets withheld`);
    } catch (err) {
      note(`kubernetes: ${label} kubeconfig ${path}: ${messageOf(err)}`);
    }
  }
  if (settings.tokenFile !== undefined) {
    try {
      const st = statSync(settings.tokenFile);
      add('kubernetes/token-file.txt', `${settings.tokenFile} holds ${st.size} bytes, mode ${(st.mode & 0o7777).toString(8)}, modified ${st.mtime.toISOString()} (contents withheld)\n`, '[coordination] token_file, its size only');
    } catch (err) {
      note(`kubernetes: [coordination] token_file ${settings.tokenFile}: ${messageOf(err)}`);
    }
  }

  const readme = [
    `node-health-agent support bundle of ${host}, made ${now.toISOString()} by node-health-agent ${VERSION}.`,
    `Journal window: ${window}. Secrets (tokens, keys, certificates, passwords) are replaced by <redacted …>.`,
    '',
    'Contents:',
    ...contents.map((c) => `  ${c}`),
    '',
    notes.length > 0 ? 'Not collected:' : 'Everything was collected.',
    ...notes.map((n) => `  - ${n}`),
    '',
  ].join('\n');
  tar.file(`${name}/README.txt`, redactText(readme));
  return { name, archive: tar.finish(), notes };
}

function settingsOf(loaded: LoadedConfig | undefined): Settings {
  // The schema's default of a key, parsed, for when the configuration cannot be loaded.
  const fallback = <T>(section: string, key: string, keys: Keys = (schema as Record<string, Keys>)[section] ?? {}): T => {
    const spec = keys[key];
    if (!spec || spec.default === undefined) throw new Error(`bundle: no default for [${section}] ${key}`);
    return spec.type.parse(spec.default) as T;
  };
  const c = loaded?.config;
  const stateDir = c?.agent.state_dir ?? fallback<string>('agent', 'state_dir');
  const kubelet = c?.kubernetes.kubeconfig_paths ?? fallback<string[]>('kubernetes', 'kubeconfig_paths');
  const kubeconfigs = kubelet.filter((p) => existsSync(p)).slice(0, 1).map((path) => ({ label: 'kubelet', path }));
  if (c?.coordination.kubeconfig) kubeconfigs.push({ label: 'coordination', path: c.coordination.kubeconfig });
  return {
    stateDir,
    runtimeDir: c?.agent.runtime_dir ?? fallback<string>('agent', 'runtime_dir'),
    containerdSocket: c?.containerd.socket ?? fallback<string>('containerd', 'socket'),
    watchedPaths: [
      ...new Set([
        '/',
        stateDir,
        ...(c ? sectionSettings(c, diskSection).paths : fallback<string[]>('disk', 'paths', diskSection.keys)),
        ...(c ? sectionSettings(c, readonlySection).paths : fallback<string[]>('readonly', 'paths', readonlySection.keys)),
      ]),
    ],
    kubeconfigs,
    tokenFile: c?.coordination.token_file || undefined,
  };
}

/** The last MAX_TEXT_BYTES of a file, from a line start. */
function tail(data: Buffer): string {
  if (data.length <= MAX_TEXT_BYTES) return data.toString('utf8');
  const cut = data.subarray(data.length - MAX_TEXT_BYTES);
  const nl = cut.indexOf(10);
  return `[first ${data.length - cut.length + nl + 1} bytes left out]\n${cut.subarray(nl + 1).toString('utf8')}`;
}

function listing(dir: string): string {
  const lines: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p);
      lines.push(`${(st.mode & 0o7777).toString(8).padStart(4, '0')} ${String(st.size).padStart(10)} ${st.mtime.toISOString()} ${relative(dir, p)}${e.isDirectory() ? '/' : ''}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return `${lines.join('\n')}\n`;
}

/**
 * statfs of each path with its mount. As in the disk probe, a filesystem a server answers for (NFS, FUSE,
 * …) is asked by a child killed at the deadline: on a hung mount an in-process call never returns.
 */
async function statfsOf(paths: readonly string[], deadlineMs: number): Promise<Record<string, unknown>> {
  let mounts: Mount[] = [];
  try {
    mounts = readMounts();
  } catch {
    // Without mountinfo every path is asked in-process; host/proc/self/mountinfo says why it is missing.
  }
  const one = async (path: string): Promise<unknown> => {
    const m = mountOf(mounts, path);
    const mount = m && { mountPoint: m.mountPoint, source: m.source, fsType: m.fsType };
    let st: StatfsResult;
    try {
      if (m && isServed(m.fsType)) {
        const timeoutMs = Math.min(deadlineMs, SERVED_TIMEOUT_MS);
        const r = await statfsApart(path, timeoutMs);
        if (r.kind === 'timedOut') return { mount, error: `no answer to statfs within ${timeoutMs} ms (its server or FUSE daemon is not answering)` };
        if (r.kind === 'failed') return { mount, error: r.message };
        st = r.stats;
      } else {
        st = await statfs(path);
      }
    } catch (err) {
      return { mount, error: messageOf(err) };
    }
    const used = st.blocks - st.bfree;
    // As df counts it: used / (used + available to unprivileged writers).
    const usedPercent = used + st.bavail > 0 ? Math.round((1000 * used) / (used + st.bavail)) / 10 : null;
    return { mount, bsize: st.bsize, blocks: st.blocks, bfree: st.bfree, bavail: st.bavail, files: st.files, ffree: st.ffree, usedPercent };
  };
  const results = await Promise.all(paths.map(one));
  return Object.fromEntries(paths.map((p, i) => [p, results[i]]));
}

/** The journal's entries matching `match` from sinceUs on, one line each; the newest kept past the size limit. */
function readJournal(native: NativeLoader, match: Record<string, string>, sinceUs: number): { text: string; entries: number; cut: boolean } {
  const journal = new (native().Journal)({ matches: [match], maxMessageBytes: 16 << 10 });
  try {
    journal.seekRealtime(Math.max(0, Math.floor(sinceUs)));
    const lines: string[] = [];
    let bytes = 0;
    let entries = 0;
    let cut = false;
    for (;;) {
      const b = journal.read(JOURNAL_BATCH);
      for (let i = 0; i < b.count; i++) {
        const f = i * 4;
        const ident = b.strings[b.fields[f]!] || b.strings[b.fields[f + 1]!] || '-';
        const line = `${new Date(b.realtimeUs[i]! / 1000).toISOString()} ${ident}: ${b.messages[i]}`;
        lines.push(line);
        bytes += line.length + 1;
        entries++;
        while (bytes > MAX_TEXT_BYTES && lines.length > 1) {
          bytes -= (lines.shift() as string).length + 1;
          cut = true;
        }
      }
      if (b.count < JOURNAL_BATCH) break;
    }
    return { text: lines.length > 0 ? `${lines.join('\n')}\n` : '', entries, cut };
  } finally {
    journal.close();
  }
}

/** A command's output (argv, no shell), or why there is none; killed at the deadline. */
function command(file: string, args: string[], deadlineMs: number): Promise<string> {
  return withDeadline(
    new Promise((resolve) => {
      const child = execFile(file, args, { timeout: deadlineMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout.trim() || stderr.trim());
        const code = (err as NodeJS.ErrnoException).code;
        resolve(`${file}: ${code === 'ENOENT' ? 'not installed (not on PATH)' : err.killed ? `no answer within ${deadlineMs} ms` : messageOf(err).split('\n')[0]}`);
      });
      child.stdin?.end();
    }),
    deadlineMs + 500,
    `${file} ${args.join(' ')}`,
  );
}

/** The promise's value, or a note once the deadline passes (a hung process must not hold the bundle). */
function withDeadline(work: Promise<string>, ms: number, what: string): Promise<string> {
  return new Promise((resolve) => {
    // Not unref'ed: this timer is what ends the wait when nothing else keeps the process alive.
    const timer = setTimeout(() => resolve(`${what}: no answer within ${ms} ms`), ms);
    work.then(
      (v) => resolve(v),
      (err: unknown) => resolve(`${what}: ${messageOf(err)}`),
    ).finally(() => clearTimeout(timer));
  });
}
