// Kubeconfig parsing, credential files and exec plugins, node name resolution and the rate helpers —
// everything of the Kubernetes client that needs no API server.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Credentials, parseExecCredential } from '../../src/outputs/kubernetes/credentials';
import { KubeError } from '../../src/outputs/kubernetes/errors';
import { findKubeconfig, loadKubeconfig, parseKubeconfig } from '../../src/outputs/kubernetes/kubeconfig';
import { resolveNodeName } from '../../src/outputs/kubernetes/node-name';
import { Backoff, TokenBucket } from '../../src/system/backoff';
import { wallClock } from '../helpers/wall-clock';

function tmp(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nha-kube-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function errorOf(fn: () => unknown): KubeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KubeError) return err;
    throw err;
  }
  throw new Error('expected a KubeError');
}

async function rejection(p: Promise<unknown>): Promise<KubeError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KubeError) return err;
    throw err;
  }
  throw new Error('expected a KubeError');
}

/** A self-signed EC certificate and its key, as the kubelet's combined pem holds them. */
function certAndKey(dir: string, cn: string): { cert: string; key: string } {
  const key = join(dir, `${cn.replace(/:/g, '_')}.key`);
  const cert = join(dir, `${cn.replace(/:/g, '_')}.crt`);
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  execFileSync('openssl', ['req', '-x509', '-new', '-key', key, '-subj', `/O=system:nodes/CN=${cn}`, '-days', '1', '-out', cert]);
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

const kubeadmConf = (server: string, user: string) => `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${Buffer.from('-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n').toString('base64')}
    server: ${server}
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    namespace: default
    user: default-auth
  name: default-context
current-context: default-context
kind: Config
preferences: {}
users:
- name: default-auth
  user:
${user}
`;

t.test('a kubeadm kubelet.conf: server, CA data, the combined pem for certificate and key', async (t) => {
  const c = parseKubeconfig(
    '/etc/kubernetes/kubelet.conf',
    kubeadmConf(
      'https://10.0.0.1:6443/',
      '    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem',
    ),
  );
  t.equal(c.server, 'https://10.0.0.1:6443', 'trailing slash dropped');
  t.equal(c.context, 'default-context');
  t.ok(c.ca && 'data' in c.ca && c.ca.data.toString().includes('BEGIN CERTIFICATE'));
  t.same(c.clientCert, { file: '/var/lib/kubelet/pki/kubelet-client-current.pem' });
  t.same(c.clientKey, { file: '/var/lib/kubelet/pki/kubelet-client-current.pem' });
  t.equal(c.exec, undefined);
});

t.test('relative paths are relative to the kubeconfig; k3s-style separate files', async (t) => {
  const c = parseKubeconfig(
    '/var/lib/rancher/k3s/agent/kubelet.kubeconfig',
    `apiVersion: v1
clusters:
- cluster: {server: "https://127.0.0.1:6444", certificate-authority: server-ca.crt}
  name: local
contexts:
- context: {cluster: local, user: user}
  name: local
current-context: local
kind: Config
users:
- name: user
  user: {client-certificate: client-kubelet.crt, client-key: ./client-kubelet.key}
`,
  );
  t.same(c.ca, { file: '/var/lib/rancher/k3s/agent/server-ca.crt' });
  t.same(c.clientCert, { file: '/var/lib/rancher/k3s/agent/client-kubelet.crt' });
  t.same(c.clientKey, { file: '/var/lib/rancher/k3s/agent/client-kubelet.key' });
});

t.test('an EKS-style exec plugin; a single context needs no current-context', async (t) => {
  const c = parseKubeconfig(
    '/var/lib/kubelet/kubeconfig',
    `kind: Config
clusters:
- name: kubernetes
  cluster: {server: "https://ABC.gr7.eu-west-1.eks.amazonaws.com", certificate-authority: /etc/kubernetes/pki/ca.crt}
contexts:
- name: kubelet
  context: {cluster: kubernetes, user: kubelet}
users:
- name: kubelet
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/token
      args: [eks, get-token, --cluster-name, demo]
      env: [{name: AWS_REGION, value: eu-west-1}]
      interactiveMode: Never
      provideClusterInfo: true
`,
  );
  t.equal(c.context, 'kubelet');
  t.same(c.exec, {
    apiVersion: 'client.authentication.k8s.io/v1',
    command: '/var/lib/kubelet/bin/token',
    args: ['eks', 'get-token', '--cluster-name', 'demo'],
    env: [{ name: 'AWS_REGION', value: 'eu-west-1' }],
    provideClusterInfo: true,
  });
  t.equal(parseKubeconfig('/k', kubeadmConf('https://x', '    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws}')).exec?.command, 'aws', 'a bare name stays for PATH lookup');
});

t.test('what weakens TLS or cannot work is refused with the file and what to do', async (t) => {
  const refuse = (text: string) => errorOf(() => parseKubeconfig('/etc/kubernetes/kubelet.conf', text));
  const user = '    token: abc';
  t.match(refuse(kubeadmConf('http://10.0.0.1:8080', user)).message, /kubelet\.conf: cluster "default-cluster" server "http:\/\/10\.0\.0\.1:8080" is not https/);
  t.match(
    refuse(kubeadmConf('https://x', user).replace('    server:', '    insecure-skip-tls-verify: true\n    server:')).message,
    /insecure-skip-tls-verify; the agent always verifies the API server: set certificate-authority/,
  );
  t.match(refuse(kubeadmConf('https://x', '    auth-provider: {name: gcp}')).message, /auth-provider plugin \(removed from Kubernetes in 1\.26\); use an exec credential plugin/);
  t.match(refuse(kubeadmConf('https://x', '    username: a\n    password: b')).message, /basic authentication/);
  t.match(refuse(kubeadmConf('https://x', '    client-certificate: /a.pem')).message, /certificate without its key/);
  t.match(refuse(kubeadmConf('https://x', '    {}')).message, /user "default-auth" has no credentials/);
  t.match(
    refuse(kubeadmConf('https://x', '    exec: {apiVersion: client.authentication.k8s.io/v1, command: x, interactiveMode: Always}')).message,
    /interactiveMode Always, but the agent runs without a terminal/,
  );
  t.match(refuse(kubeadmConf('https://x', '    exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}')).message, /v1alpha1" is not supported/);
  t.match(refuse(kubeadmConf('https://x', user).replace('current-context: default-context', 'current-context: other')).message, /no context named "other"/);
  t.match(refuse(kubeadmConf('https://x', user).replace('kind: Config', 'kind: Pod')).message, /kind is "Pod", not Config/);
  t.match(refuse('- just\n- a list\n').message, /not a kubeconfig/);
  for (const e of [refuse(kubeadmConf('http://x', user))]) t.equal(e.code, 'KUBECONFIG_INVALID');
});

t.test('malformed YAML is reported with the file, line and column', async (t) => {
  const dir = tmp(t);
  const file = join(dir, 'kubelet.conf');
  writeFileSync(file, 'apiVersion: v1\nclusters:\n- cluster:\n    server: [https://x\n  name: a\n');
  const err = errorOf(() => loadKubeconfig(file));
  t.equal(err.code, 'KUBECONFIG_INVALID');
  t.match(err.message, new RegExp(`^${file}: not valid YAML \\(line \\d+, column \\d+: .+\\)$`));
  t.notMatch(err.message, /\n/, 'one line');
  writeFileSync(file, 'kind: Config\nkind: Config\n');
  t.match(errorOf(() => loadKubeconfig(file)).message, /not valid YAML \(line 2, column 1: Map keys must be unique\)/);
  t.match(errorOf(() => loadKubeconfig(join(dir, 'absent.conf'))).message, /absent\.conf: cannot read the kubeconfig: ENOENT/);
});

t.test('a kubeconfig, its directory and an exec plugin by path must be root-owned and not group/world-writable', async (t) => {
  const dir = tmp(t);
  const plugin = join(dir, 'token.sh');
  writeFileSync(plugin, '#!/bin/sh\n', { mode: 0o755 });
  const file = join(dir, 'kubelet.conf');
  writeFileSync(file, kubeadmConf('https://10.0.0.1:6443', `    exec: {apiVersion: client.authentication.k8s.io/v1, command: ${plugin}}`), { mode: 0o600 });
  t.equal(loadKubeconfig(file).exec?.command, plugin, 'root-owned, 0600, in a 0700 directory: loaded');

  chmodSync(file, 0o620);
  let err = errorOf(() => loadKubeconfig(file));
  t.equal(err.code, 'KUBECONFIG_INSECURE');
  t.equal(err.message, `${file}: mode 620 lets group or others write it; refusing it (chmod go-w ${file})`);
  chmodSync(file, 0o600);

  chownSync(file, 4321, 0);
  t.equal(errorOf(() => loadKubeconfig(file)).message, `${file}: owned by uid 4321, not root; refusing it (chown root ${file})`);
  chownSync(file, 0, 0);

  chmodSync(dir, 0o777);
  err = errorOf(() => loadKubeconfig(file));
  t.equal(err.message, `${dir}: mode 777 lets group or others write it; refusing it (chmod go-w ${dir})`, 'whoever writes the directory can swap the file');
  chmodSync(dir, 0o700);

  chmodSync(plugin, 0o775);
  err = errorOf(() => loadKubeconfig(file));
  t.equal(err.code, 'KUBECONFIG_INSECURE');
  t.equal(err.message, `${file}: exec plugin ${plugin}: mode 775 lets group or others write it; refusing it (chmod go-w ${plugin})`, 'the plugin runs as root');
  unlinkSync(plugin);
  t.equal(loadKubeconfig(file).exec?.command, plugin, 'a missing plugin is reported when it runs, with its installHint');
});

t.test('the first kubeconfig path that exists wins; none names every path tried', async (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'b'), '');
  writeFileSync(join(dir, 'c'), '');
  t.equal(findKubeconfig([join(dir, 'a'), join(dir, 'b'), join(dir, 'c')]), join(dir, 'b'));
  const err = errorOf(() => findKubeconfig([join(dir, 'x'), join(dir, 'y')]));
  t.equal(err.code, 'KUBECONFIG_NOT_FOUND');
  t.match(err.message, `no kubelet kubeconfig found (looked for ${join(dir, 'x')}, ${join(dir, 'y')})`);
});

t.test('credentials: the combined pem is split; a swapped symlink is followed; a briefly missing path is waited for', async (t) => {
  const dir = tmp(t);
  const pki = join(dir, 'pki');
  mkdirSync(pki);
  const one = certAndKey(dir, 'system:node:one');
  const two = certAndKey(dir, 'system:node:two');
  writeFileSync(join(pki, 'kubelet-client-1.pem'), one.cert + one.key, { mode: 0o600 });
  writeFileSync(join(pki, 'kubelet-client-2.pem'), two.cert + two.key, { mode: 0o600 });
  const current = join(pki, 'kubelet-client-current.pem');
  symlinkSync('kubelet-client-1.pem', current);
  const creds = new Credentials({
    file: join(dir, 'kubelet.conf'),
    context: 'c',
    server: 'https://x',
    clusterInfo: { server: 'https://x' },
    clientCert: { file: current },
    clientKey: { file: current },
  });
  const a = await creds.get();
  t.equal(a.cert?.toString(), one.cert, 'only the certificate block');
  t.equal(a.key?.toString(), one.key, 'only the key block');
  t.equal(creds.certificateCommonName(), 'system:node:one');

  // The kubelet's swap: -updated points at the new file, -current is removed, -updated renamed over it.
  symlinkSync('kubelet-client-2.pem', join(pki, 'kubelet-client-updated.pem'));
  unlinkSync(current);
  const pending = creds.get();
  await new Promise((r) => setTimeout(r, 150));
  renameSync(join(pki, 'kubelet-client-updated.pem'), current);
  const b = await pending;
  t.equal(b.cert?.toString(), two.cert, 'read again through the path once it is back');
  t.equal(creds.certificateCommonName(), 'system:node:two');

  unlinkSync(current);
  const err = await rejection(creds.get());
  t.equal(err.code, 'CREDENTIALS_UNREADABLE');
  t.match(err.message, `${current}: cannot read the client-certificate named in ${join(dir, 'kubelet.conf')}: ENOENT`);

  writeFileSync(current, one.cert + two.key);
  t.match((await rejection(creds.get())).message, /does not match its private key/);
});

t.test('a token file is read again when it changes', async (t) => {
  const dir = tmp(t);
  const file = join(dir, 'token');
  writeFileSync(file, 'first\n');
  const creds = new Credentials({ file: '/k', context: 'c', server: 'https://x', clusterInfo: { server: 'https://x' }, tokenFile: file });
  t.equal((await creds.get()).token, 'first');
  writeFileSync(file, 'second-longer\n');
  t.equal((await creds.get()).token, 'second-longer');
});

t.test('exec plugin: KUBERNETES_EXEC_INFO and env given, cached until shortly before expiry, errors name the plugin', async (t) => {
  const dir = tmp(t);
  const calls = join(dir, 'calls');
  const plugin = join(dir, 'plugin.sh');
  writeFileSync(
    plugin,
    `#!/bin/sh
echo "$KUBERNETES_EXEC_INFO $PLUGIN_ENV $*" >> ${calls}
n=$(wc -l < ${calls})
exp=$(date -u -d "@$(( $(date +%s) + $1 ))" +%Y-%m-%dT%H:%M:%SZ)
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok-%s","expirationTimestamp":"%s"}}' "$n" "$exp"
`,
  );
  chmodSync(plugin, 0o755);
  let clock = Date.now();
  const creds = new Credentials(
    {
      file: join(dir, 'kubelet.conf'),
      context: 'c',
      server: 'https://x',
      clusterInfo: { server: 'https://x' },
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, args: ['3600'], env: [{ name: 'PLUGIN_ENV', value: 'from-kubeconfig' }], provideClusterInfo: true },
    },
    () => clock,
  );
  const [a, b] = await Promise.all([creds.get(), creds.get()]);
  t.equal(a.token, 'tok-1');
  t.equal(b.token, 'tok-1', 'concurrent requests share one run');
  const first = readFileSync(calls, 'utf8').trim().split('\n');
  t.equal(first.length, 1);
  const info = JSON.parse((first[0] as string).slice(0, (first[0] as string).lastIndexOf('}') + 1)) as Record<string, unknown>;
  t.same(info, { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false, cluster: { server: 'https://x' } } });
  t.match(first[0], / from-kubeconfig 3600$/);
  clock += 3_000_000;
  t.equal((await creds.get()).token, 'tok-1', 'still valid');
  clock += 600_000 - 5_000;
  t.equal((await creds.get()).token, 'tok-2', 'renewed within the margin before expiry');
  creds.invalidate();
  t.equal((await creds.get()).token, 'tok-3', 'run again after the server rejected it');

  const failing = (command: string, args: string[] = [], installHint?: string) =>
    new Credentials({
      file: '/etc/kubernetes/kubelet.conf',
      context: 'c',
      server: 'https://x',
      clusterInfo: { server: 'https://x' },
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command, args, env: [], provideClusterInfo: false, ...(installHint ? { installHint } : {}) },
    }).get();
  const missing = await rejection(failing('aws-iam-authenticator-missing', [], 'install aws-iam-authenticator'));
  t.equal(missing.code, 'EXEC_PLUGIN_FAILED');
  t.equal(missing.message, 'exec plugin aws-iam-authenticator-missing (user of /etc/kubernetes/kubelet.conf): not found; install aws-iam-authenticator');
  t.match((await rejection(failing('sh', ['-c', 'echo "no role for this instance" >&2; exit 3']))).message, /exec plugin sh .*: exited with 3: no role for this instance$/);
  t.match((await rejection(failing('sh', ['-c', 'echo hello']))).message, /did not print an ExecCredential as JSON \(got "hello\\n"\)/);
});

t.test('ExecCredential documents: tokens, certificates, expiry, and what is refused', async (t) => {
  const v1 = 'client.authentication.k8s.io/v1';
  const doc = (status: unknown, apiVersion = v1) => JSON.stringify({ apiVersion, kind: 'ExecCredential', status });
  t.same(parseExecCredential(doc({ token: 'a' }), v1), { token: 'a' });
  t.equal(parseExecCredential(doc({ token: 'a', expirationTimestamp: '2030-01-01T00:00:00Z' }), v1).expires, Date.parse('2030-01-01T00:00:00Z'));
  t.ok(parseExecCredential(doc({ clientCertificateData: 'C', clientKeyData: 'K' }), v1).cert);
  t.throws(() => parseExecCredential(doc({ clientCertificateData: 'C' }), v1), /without its key/);
  t.throws(() => parseExecCredential(doc({}), v1), /without a token or client certificate/);
  t.throws(() => parseExecCredential(doc({ token: 'a' }, 'client.authentication.k8s.io/v1beta1'), v1), /but the kubeconfig asks for client\.authentication\.k8s\.io\/v1/);
  t.throws(() => parseExecCredential(doc({ token: 'a', expirationTimestamp: 'soon' }), v1), /not a time/);
});

t.test('node name: flag, config, NODE_NAME, certificate CN, the server, the hostname — in that order', async (t) => {
  const base = { configured: '', env: {}, hostname: () => 'Host-1' };
  t.same(await resolveNodeName({ ...base, flag: 'a', configured: 'b', env: { NODE_NAME: 'c' }, certificateCN: 'system:node:d' }), {
    name: 'a',
    source: 'flag',
    identity: 'system:node:d',
  });
  t.equal((await resolveNodeName({ ...base, configured: 'b', env: { NODE_NAME: 'c' } })).source, 'config');
  t.equal((await resolveNodeName({ ...base, env: { NODE_NAME: 'c' } })).name, 'c');
  t.same(await resolveNodeName({ ...base, certificateCN: 'system:node:d' }), { name: 'd', source: 'certificate', identity: 'system:node:d' });
  t.same(await resolveNodeName({ ...base, whoAmI: async () => 'system:node:e' }), { name: 'e', source: 'server', identity: 'system:node:e' });
  t.same(await resolveNodeName({ ...base, whoAmI: async () => 'system:serviceaccount:kube-system:x' }), {
    name: 'host-1',
    source: 'hostname',
    identity: 'system:serviceaccount:kube-system:x',
  });
  t.same(await resolveNodeName(base), { name: 'host-1', source: 'hostname' });
  await t.rejects(resolveNodeName({ ...base, whoAmI: async () => Promise.reject(new Error('connect ECONNREFUSED')) }), /ECONNREFUSED/, 'no guessing while the server is away');
  const bad = await rejection(resolveNodeName({ ...base, configured: 'Worker_1' }));
  t.equal(bad.code, 'NODE_NAME_INVALID');
  t.equal(bad.message, `node name "Worker_1" (from [kubernetes] node_name) is not a valid Node name: use lowercase letters, digits, '-' and '.'`);
});

t.test('back-off doubles up to its maximum with jitter in [½, 1]; the token bucket refills over time', async (t) => {
  const low = new Backoff(1000, 8000, () => 0);
  const high = new Backoff(1000, 8000, () => 1);
  t.same([1, 2, 3, 4, 5].map(() => low.next()), [500, 1000, 2000, 4000, 4000]);
  t.same([1, 2, 3, 4, 5].map(() => high.next()), [1000, 2000, 4000, 8000, 8000]);
  high.reset();
  t.equal(high.next(), 1000);

  let now = 0;
  const bucket = new TokenBucket(3, 1000, () => now);
  t.same([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
  t.equal(bucket.waitMs(), 1000);
  now += 500;
  t.equal(bucket.waitMs(), 500);
  now += 500;
  t.equal(bucket.take(), true);
  t.equal(bucket.full(), false);
  now += 10_000;
  t.equal(bucket.full(), true, 'never more than the burst');
});

t.test('the rate limit keeps its own clock: a wall clock stepped back an hour does not starve it', async (t) => {
  const clock = wallClock(t);
  const bucket = new TokenBucket(1, 50);
  t.equal(bucket.take(), true);
  t.equal(bucket.take(), false);
  clock.step(-3_600_000);
  await new Promise((r) => setTimeout(r, 80));
  t.equal(bucket.take(), true, 'a token again after refillMs, not an hour later');
});
