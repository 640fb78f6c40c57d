// `node-health-agent bundle` as an operator runs it: the archive unpacked with the system's tar, what it
// holds, what it says it could not collect, and that no planted secret survives anywhere in it.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { bin, daemonConfig, startDaemon } from '../helpers/daemon';
import { hungFuseMount } from '../helpers/hung-mount';
import { configDir } from '../helpers/tmp';

const PEM_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQPLANTEDKEY';
const pem = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
/** Every value planted below; none may appear in the bundle. */
const SECRETS = {
  kubeToken: 'kube-token-8b1f0c2d9e',
  kubePassword: 'kube-password-77aa1',
  execEnv: 'exec-env-secret-5c3e',
  execArg: 'exec-arg-secret-91d0',
  authProvider: 'oidc-id-token-4f2b',
  pluginToken: 'plugin-arg-token-2e6a',
  pluginPassword: 'plugin-pass-0b7c',
  tokenFile: 'token-file-contents-6d1e',
  stateJwt: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06bm9kZTpuMSJ9.c2lnbmF0dXJlLXN0YXRl',
  keyBody: PEM_BODY,
  certData: Buffer.from(pem('CERTIFICATE', 'MIIBcertPLANTEDcertificatebody')).toString('base64'),
  keyData: Buffer.from(pem('RSA PRIVATE KEY', 'MIIBkeyPLANTEDkeybody')).toString('base64'),
};

function plant(dir: string, containerdSocket: string): string {
  writeFileSync(
    join(dir, 'kubelet.conf'),
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'default',
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1', 'certificate-authority-data': SECRETS.certData } }],
      contexts: [{ name: 'default', context: { cluster: 'c', user: 'u' } }],
      users: [
        {
          name: 'u',
          user: {
            token: SECRETS.kubeToken,
            password: SECRETS.kubePassword,
            'client-certificate-data': SECRETS.certData,
            'client-key-data': SECRETS.keyData,
            'auth-provider': { name: 'oidc', config: { 'id-token': SECRETS.authProvider } },
            exec: {
              apiVersion: 'client.authentication.k8s.io/v1',
              command: '/usr/bin/false',
              args: ['token', '--token', SECRETS.execArg],
              env: [{ name: 'CLOUD_SECRET', value: SECRETS.execEnv }],
            },
          },
        },
      ],
    }),
    { mode: 0o600 },
  );
  writeFileSync(join(dir, 'sa-token'), SECRETS.tokenFile, { mode: 0o600 });
  const state = join(dir, 'state');
  mkdirSync(state, { recursive: true });
  writeFileSync(join(state, 'conditions.json'), JSON.stringify({ conditions: [{ type: 'X', message: `Bearer ${SECRETS.stateJwt}` }] }));
  writeFileSync(join(state, 'repair-ledger.jsonl'), `${JSON.stringify({ action: 'restart', note: pem('PRIVATE KEY', PEM_BODY) })}\n`);
  const args = JSON.stringify(['--token', SECRETS.pluginToken, `--password=${SECRETS.pluginPassword}`, '--key', pem('PRIVATE KEY', PEM_BODY)]);
  return configDir({
    '10-bundle.ini':
      `[agent]\nstate_dir = ${state}\nruntime_dir = ${dir}/run\n` +
      `[kubernetes]\nkubeconfig_paths = ${dir}/kubelet.conf\n` +
      `[coordination]\ntoken_file = ${dir}/sa-token\n` +
      `[containerd]\nsocket = ${containerdSocket}\n` +
      `[plugin "vault"]\npath = /usr/bin/true\nkind = temporary\nreason = VaultDown\nargs = ${args}\n`,
  });
}

/** A containerd that accepts connections and never answers, like one that hangs. */
async function hungSocket(t: { teardown(fn: () => unknown): void }, path: string): Promise<Server> {
  const held: Socket[] = [];
  const server = createServer((s) => held.push(s));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => {
    for (const s of held) s.destroy();
    server.close();
  });
  return server;
}

/** Runs the CLI (asynchronously: the hung socket lives in this process). */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err, ms: Date.now() - started }));
  });
}

/** Unpacks with the system's tar; returns the bundle's top directory. */
function unpack(archive: string, into: string): string {
  mkdirSync(into, { recursive: true });
  const res = spawnSync('tar', ['-xzf', archive, '-C', into], { encoding: 'utf8' });
  if (res.status !== 0 || res.stderr !== '') throw new Error(`tar -xzf ${archive}: ${res.stderr}`);
  const [top, ...more] = readdirSync(into);
  if (!top || more.length > 0) throw new Error(`expected one top directory in the bundle, got ${readdirSync(into).join(', ')}`);
  return join(into, top);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

t.test('a bundle without a daemon: contents, notes, deadlines, and no secret anywhere', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nha-bundle-'));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await hungSocket(t, join(dir, 'containerd.sock'));
  // A kubelet that hangs when asked for its version.
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin/kubelet'), '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
  const cfg = plant(dir, join(dir, 'containerd.sock'));

  const archive = join(dir, 'out.tar.gz');
  const res = await runCli(['bundle', '--since', '30m', '-o', archive, '--config-dir', cfg], { PATH: `${dir}/bin:${process.env.PATH}` });
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout.toString(), `${archive} (`);
  t.ok(res.ms < 12_000, `a hung containerd and kubelet cost at most their deadline (${res.ms} ms)`);
  t.equal(statSync(archive).mode & 0o777, 0o600, 'only root may read it');

  const top = unpack(archive, join(dir, 'x'));
  const files = filesUnder(top).map((f) => f.slice(top.length + 1)).sort();
  for (const f of [
    'README.txt',
    'config/effective.ini',
    'state/conditions.json',
    'state/repair-ledger.jsonl',
    'state/files.txt',
    'host/proc/meminfo',
    'host/proc/pressure/memory',
    'host/proc/self/mountinfo',
    'host/statfs.json',
    'versions.txt',
    'kubernetes/kubelet.kubeconfig.json',
    'kubernetes/token-file.txt',
  ]) {
    t.ok(files.includes(f), `${f} is in the bundle`);
  }
  const read = (f: string) => readFileSync(join(top, f), 'utf8');

  const readme = read('README.txt');
  t.match(readme, /Journal window: since \S+/);
  t.match(readme, /status: the daemon did not answer: cannot reach the node-health-agent daemon on .*agent\.sock/, 'says why status is missing');
  t.match(res.stderr, /bundle: not collected: status: the daemon did not answer/);

  const versions = read('versions.txt');
  t.match(versions, /^node-health-agent \S+ \(Node\.js v/m);
  t.match(versions, /^kernel \S+/m);
  t.match(versions, /^containerd \(daemon on .*containerd\.sock\): .*(DEADLINE_EXCEEDED|no reply within|no answer within)/m, 'the hung containerd is named');
  t.match(versions, /^kubelet --version: no answer within \d+ ms|^kubelet: no answer within \d+ ms/m, 'the hung kubelet is named');

  const effective = read('config/effective.ini');
  t.match(effective, /^token_file = \S+sa-token {2}; .*10-bundle\.ini:\d+$/m, 'paths stay');
  t.match(effective, /^\[plugin "vault"\]$/m);
  const kubeconfig = JSON.parse(read('kubernetes/kubelet.kubeconfig.json')) as { clusters: Array<{ cluster: { server: string } }>; users: Array<{ user: { exec: { command: string; env: Array<{ name: string }> } } }> };
  t.equal(kubeconfig.clusters[0]?.cluster.server, 'https://127.0.0.1:1');
  t.equal(kubeconfig.users[0]?.user.exec.command, '/usr/bin/false');
  t.equal(kubeconfig.users[0]?.user.exec.env[0]?.name, 'CLOUD_SECRET');
  t.match(read('kubernetes/token-file.txt'), /sa-token holds \d+ bytes, mode 600, .*contents withheld/);
  const statfs = JSON.parse(read('host/statfs.json')) as Record<string, { blocks?: number }>;
  t.ok((statfs['/']?.blocks ?? 0) > 0, 'statfs of /');

  // The point of the test: nothing planted survives, and no PEM or base64 PEM at all.
  const everything = filesUnder(top).map((f) => [f, readFileSync(f, 'utf8')] as const);
  for (const [label, secret] of Object.entries(SECRETS)) {
    const leaks = everything.filter(([, text]) => text.includes(secret)).map(([f]) => f.slice(top.length + 1));
    t.same(leaks, [], `${label} appears nowhere`);
  }
  for (const marker of ['-----BEGIN', 'LS0tLS1CRUdJT', 'eyJhbGci']) {
    t.same(everything.filter(([, text]) => text.includes(marker)).map(([f]) => f.slice(top.length + 1)), [], `no ${marker}`);
  }
});

t.test('with the daemon running, status.json is its live state; -o - writes the archive to stdout', async (t) => {
  const made = daemonConfig('[containerd]\nenabled = false\n[kubelet]\nenabled = false\n[kubernetes]\nenabled = false\n[metrics]\nenabled = false\n');
  const d = await startDaemon(t, made);
  const res = await runCli(['bundle', '-o', '-', '--config-dir', d.configDir]);
  t.equal(res.code, 0, res.stderr);
  const archive = join(made.dir, 'stdout.tar.gz');
  writeFileSync(archive, res.stdout);
  const top = unpack(archive, join(made.dir, 'x'));
  const status = JSON.parse(readFileSync(join(top, 'status.json'), 'utf8')) as { pid: number; config: { files: string[] } };
  t.equal(status.pid, d.child.pid, "the running daemon's own status");
  t.notMatch(readFileSync(join(top, 'README.txt'), 'utf8'), /status: the daemon did not answer/);
});

t.test('a hung FUSE mount among the watched paths is named, and holds nothing up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nha-bundle-'));
  const mnt = mkdtempSync(join(tmpdir(), 'nha-bundle-mnt-'));
  const hung = hungFuseMount(t, mnt, 'nhabundle');
  t.teardown(() => {
    hung.release();
    rmSync(dir, { recursive: true, force: true });
    rmSync(mnt, { recursive: true, force: true });
  });
  const cfg = configDir({ 'a.ini': `[agent]\nstate_dir = ${dir}/state\nruntime_dir = ${dir}/run\n[disk]\npaths = ${mnt}\n` });
  const res = await runCli(['bundle', '-o', join(dir, 'b.tar.gz'), '--config-dir', cfg]);
  t.equal(res.code, 0, res.stderr);
  t.ok(res.ms < 12_000, `done in ${res.ms} ms`);
  const top = unpack(join(dir, 'b.tar.gz'), join(dir, 'x'));
  const statfs = JSON.parse(readFileSync(join(top, 'host/statfs.json'), 'utf8')) as Record<string, { mount?: { fsType: string }; error?: string; blocks?: number }>;
  t.equal(statfs[mnt]?.mount?.fsType, 'fuse.nhabundle');
  t.match(statfs[mnt]?.error, /^no answer to statfs within \d+ ms/);
  t.ok((statfs['/']?.blocks ?? 0) > 0, 'the other paths are still measured');
});

t.test('a bad --since or an unwritable output: one line, exit 2', async (t) => {
  const bad = await runCli(['bundle', '--since', 'yesterday', '-o', '/dev/null']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, 'node-health-agent: --since: "yesterday" is not a duration (use e.g. 500ms, 30s, 2m, 1h30m)\n');
  const dir = mkdtempSync(join(tmpdir(), 'nha-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = configDir({ 'a.ini': `[agent]\nstate_dir = ${dir}/state\nruntime_dir = ${dir}/run\n` });
  const res = await runCli(['bundle', '-o', join(dir, 'no/such/dir/b.tar.gz'), '--config-dir', cfg]);
  t.equal(res.code, 2);
  t.match(res.stderr, /node-health-agent: .*no\/such\/dir\/b\.tar\.gz: cannot write the bundle: ENOENT.*; choose another place with -o FILE\n$/);
});
