// The native addon against real peers: a unix datagram socket as NOTIFY_SOCKET, a journald-style socket
// in a private mount namespace, and the bundled Node runtime the packages ship.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import t from 'tap';
import { loadNative } from '../../../src/system/native';

const repo = resolve(__dirname, '../../..');
const nativeTs = join(repo, 'src/system/native.ts');
const addon = join(repo, 'dist/node_health_native.node');
// The hooks tap runs this file with, so a child Node can load src/system/native.ts as well.
const tsHooks = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

/** A fresh temporary directory, removed when the test ends. */
function tempDir(t: { teardown(fn: () => unknown): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const cleanEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete env[k];
  return env;
};

/** Runs `code` in a fresh Node with `native` = loadNative(); `prefix` wraps the command (e.g. nsenter). */
function inChild(code: string, env: NodeJS.ProcessEnv, prefix: string[] = []): SpawnSyncReturns<string> {
  const script = `const native = require(${JSON.stringify(nativeTs)}).loadNative();\n${code}`;
  const argv = [...prefix, process.execPath, ...tsHooks, '-e', script];
  return spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
}

// A unix datagram socket (Node cannot bind one) served by python3; prints "ready", then each datagram
// as one base64 line. With --tmpfs-run it first hides /run under a tmpfs (run it in a new mount namespace).
const LISTENER = `
import base64, os, socket, subprocess, sys
path = sys.argv[1]
if "--tmpfs-run" in sys.argv:
    if os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
        sys.exit("refusing to hide /run outside a private mount namespace")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
    os.makedirs(os.path.dirname(path))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print("ready", flush=True)
while True:
    print(base64.b64encode(s.recv(1 << 20)).decode(), flush=True)
`;

interface Listener {
  pid: number;
  /** The next datagram, waiting up to 5 s for it. */
  next(): Promise<Buffer>;
}

async function listen(
  t: { teardown(fn: () => unknown): void },
  path: string,
  options: { prefix?: string[]; tmpfsRun?: boolean } = {},
): Promise<Listener> {
  const argv = [...(options.prefix ?? []), 'python3', '-c', LISTENER, path, ...(options.tmpfsRun ? ['--tmpfs-run'] : [])];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const datagrams: Buffer[] = [];
  let ready = false;
  let stderr = '';
  let buffered = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'ready') ready = true;
      else datagrams.push(Buffer.from(line, 'base64'));
    }
  });
  const waitFor = async (done: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!done()) {
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(`datagram listener on ${path}: ${what}; stderr: ${stderr.trim() || '(none)'}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitFor(() => ready, 'did not bind');
  return {
    pid: child.pid!,
    async next() {
      await waitFor(() => datagrams.length > 0, 'no datagram arrived');
      return datagrams.shift()!;
    },
  };
}

/** Decodes journald's native protocol: "NAME=value\n", or "NAME\n" + 64-bit LE length + bytes + "\n". */
function parseJournalDatagram(buf: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  const seen = new Set<string>();
  let i = 0;
  while (i < buf.length) {
    const nl = buf.indexOf(0x0a, i);
    if (nl < 0) throw new Error(`unterminated field at byte ${i}`);
    const line = buf.subarray(i, nl);
    const eq = line.indexOf(0x3d);
    let name: string;
    if (eq >= 0) {
      name = line.subarray(0, eq).toString();
      fields[name] = line.subarray(eq + 1).toString('utf8');
      i = nl + 1;
    } else {
      name = line.toString();
      const start = nl + 9;
      const end = start + Number(buf.readBigUInt64LE(nl + 1));
      if (buf[end] !== 0x0a) throw new Error(`binary field ${name} is not followed by a newline`);
      fields[name] = buf.subarray(start, end).toString('utf8');
      i = end + 1;
    }
    if (seen.has(name)) throw new Error(`field ${name} is sent twice`);
    seen.add(name);
  }
  return fields;
}

t.test('notify sends the state to NOTIFY_SOCKET and says it did', async (t) => {
  const path = join(tempDir(t, 'nha-native-'), 'notify.sock');
  const listener = await listen(t, path);
  const res = inChild('console.log(native.notify("READY=1\\nSTATUS=x"))', { ...cleanEnv(), NOTIFY_SOCKET: path });
  t.equal(res.status, 0, res.stderr);
  t.equal(res.stdout, 'true\n');
  t.equal((await listener.next()).toString(), 'READY=1\nSTATUS=x');
});

t.test('notify without NOTIFY_SOCKET returns false; an unreachable socket throws with the errno text', async (t) => {
  const missing = join(tempDir(t, 'nha-native-'), 'gone.sock');
  const res = inChild(
    `console.log(native.notify("READY=1"));
     process.env.NOTIFY_SOCKET = ${JSON.stringify(missing)};
     try { native.notify("READY=1"); console.log("no error"); } catch (e) { console.log(e.message, e.errno); }`,
    cleanEnv(),
  );
  t.equal(res.status, 0, res.stderr);
  t.equal(res.stdout, 'false\nsd_notify to NOTIFY_SOCKET: No such file or directory 2\n');
});

t.test('watchdogUsec reads the interval meant for this process', async (t) => {
  const res = inChild(
    `const out = { unset: native.watchdogUsec() };
     process.env.WATCHDOG_USEC = "5000000";
     process.env.WATCHDOG_PID = String(process.pid);
     out.own = native.watchdogUsec();
     process.env.WATCHDOG_PID = String(process.ppid);
     out.otherPid = native.watchdogUsec();
     process.env.WATCHDOG_PID = String(process.pid);
     process.env.WATCHDOG_USEC = "soon";
     try { native.watchdogUsec(); out.bad = "no error"; } catch (e) { out.bad = e.message; }
     console.log(JSON.stringify(out));`,
    cleanEnv(),
  );
  t.equal(res.status, 0, res.stderr);
  t.same(JSON.parse(res.stdout), {
    unset: 0,
    own: 5_000_000,
    otherPid: 0,
    bad: 'sd_watchdog_enabled (check WATCHDOG_USEC and WATCHDOG_PID): Invalid argument',
  });
});

t.test('journalSend rejects bad field names, naming the field, before sending anything', async (t) => {
  const native = loadNative();
  const bad = ['message', '_PID', '1ST', 'NODE-HEALTH', 'ÜBER', '', 'A'.repeat(65)];
  for (const name of bad) {
    t.throws(() => native.journalSend({ MESSAGE: 'x', [name]: 'v' }), {
      name: 'TypeError',
      message: `journalSend: invalid field name "${name}" (use A-Z, 0-9 and _, not starting with _ or a digit, at most 64 characters)`,
    });
  }
  t.throws(() => native.journalSend({ MESSAGE: 'x', PRIORITY: 3 } as unknown as Record<string, string>), {
    message: 'journalSend: field PRIORITY must be a string',
  });
  t.throws(() => native.journalSend({}), { message: 'journalSend: fields is empty; give at least MESSAGE' });
});

const noPrivateMounts =
  spawnSync('unshare', ['-m', 'true']).status === 0
    ? false
    : 'needs a private mount namespace (unshare -m, as root) to stand in for /run/systemd/journal';

t.test('journalSend delivers every field intact over the journal socket', { skip: noPrivateMounts }, async (t) => {
  const listener = await listen(t, '/run/systemd/journal/socket', { prefix: ['unshare', '-m'], tmpfsRun: true });
  const fields = {
    MESSAGE: 'disk full on /var\nsecond line',
    PRIORITY: '3',
    NODE_HEALTH_CHECK: 'disk',
    SYSLOG_IDENTIFIER: 'node-health-agent',
    NODE_HEALTH_SUBJECT: 'Grüße ✓',
    NODE_HEALTH_RAW: 'a\u0000b',
    ['X'.repeat(64)]: 'longest name journald allows',
  };
  const res = inChild(`native.journalSend(${JSON.stringify(fields)})`, cleanEnv(), [
    'nsenter',
    `--mount=/proc/${listener.pid}/ns/mnt`,
  ]);
  t.equal(res.status, 0, res.stderr);
  const datagram = await listener.next();
  t.same(parseJournalDatagram(datagram), fields);
  // The value with a newline went in the length-prefixed form, not as a "MESSAGE=" line.
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(fields.MESSAGE)));
  t.ok(datagram.includes(Buffer.concat([Buffer.from('MESSAGE\n'), length])), 'MESSAGE is length-prefixed');
  t.notOk(datagram.includes('MESSAGE='), 'MESSAGE is not sent as a plain line');
});

t.test('trimMemory hands memory the C heap freed back to the kernel', async (t) => {
  // 40 MiB of small buffers (each its own malloc, in glibc's heap), freed with one kept above them: glibc
  // keeps the freed memory resident until it is trimmed.
  const script = `const native = require(${JSON.stringify(nativeTs)}).loadNative();
const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]);
let bufs = [];
for (let i = 0; i < 40000; i++) bufs.push(Buffer.allocUnsafeSlow(1024).fill(1));
const pin = Buffer.allocUnsafeSlow(1024).fill(1);
bufs = null; gc(); gc();
const before = anon();
const trimmed = native.trimMemory();
console.log(JSON.stringify({ before, trimmed, after: anon(), pin: pin.length }));`;
  const res = spawnSync(process.execPath, [...tsHooks, '--expose-gc', '-e', script], { env: cleanEnv(), encoding: 'utf8', timeout: 60_000 });
  t.equal(res.status, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { before: number; trimmed: boolean; after: number };
  t.equal(out.trimmed, true, 'says it returned memory');
  t.ok(out.before - out.after > 20 * 1024, `anonymous RSS ${out.before} kB -> ${out.after} kB: more than 20 MiB returned`);
});

t.test('the addon loads in the bundled Node runtime, directly and through the bundle', async (t) => {
  const fetched = spawnSync('bash', [join(repo, 'scripts/fetch-node.sh')], { encoding: 'utf8' });
  t.equal(fetched.status, 0, fetched.stderr);
  const runtimeNode = join(fetched.stdout.trim(), 'bin/node');
  const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { config: { nodeRuntime: string } })
    .config.nodeRuntime;

  const direct = spawnSync(
    runtimeNode,
    ['-e', 'const m = require(process.argv[1]); console.log(process.version, m.watchdogUsec(), m.notify("READY=1"))', addon],
    { env: cleanEnv(), encoding: 'utf8' },
  );
  t.equal(direct.status, 0, direct.stderr);
  t.equal(direct.stdout, `v${version} 0 false\n`);

  // Bundled the way scripts/build.mjs bundles the agent: the addon stays external and is found beside it.
  const dir = tempDir(t, 'nha-bundle-');
  const bundle = join(dir, 'node-health-agent.js');
  buildSync({
    entryPoints: [nativeTs],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['*.node'],
    logLevel: 'error',
  });
  const probe = `try { console.log(require(process.argv[1]).loadNative().watchdogUsec()); }
    catch (e) { console.log(e.code, e.message); }`;
  const runBundle = () => spawnSync(runtimeNode, ['-e', probe, bundle], { env: cleanEnv(), encoding: 'utf8' }).stdout;

  t.equal(
    runBundle(),
    `NATIVE_UNAVAILABLE native addon could not be loaded from ${dir}/node_health_native.node (not found); ` +
      'run `npm run build:native` (from source) or reinstall the package\n',
  );
  copyFileSync(join(repo, 'package.json'), join(dir, 'node_health_native.node'));
  t.match(runBundle(), `NATIVE_UNAVAILABLE native addon could not be loaded from ${dir}/node_health_native.node (`);
  t.match(runBundle(), 'invalid ELF header');
  copyFileSync(addon, join(dir, 'node_health_native.node'));
  t.equal(runBundle(), '0\n');
});
