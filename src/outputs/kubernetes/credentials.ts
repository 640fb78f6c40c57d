// The credentials a kubeconfig names, kept current without a restart:
// - files (client certificate and key, CA, tokenFile) are re-read whenever the file at the path changes.
//   The kubelet rotates its certificate by swapping the kubelet-client-current.pem symlink, and for a
//   moment the path does not exist: the path (never the resolved target) is read again, retrying ENOENT.
// - exec credential plugins (client.authentication.k8s.io) run when no unexpired credential is cached,
//   and again after the API server rejects the cached one.
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { messageOf } from '../../errors';
import { KubeError } from './errors';
import type { ExecConfig, Kubeconfig, Material } from './kubeconfig';

export interface Auth {
  /** PEM: the CA bundle to verify the server with; absent means the system's CAs. */
  ca?: Buffer;
  /** PEM: client certificate chain and its key. */
  cert?: Buffer;
  key?: Buffer;
  token?: string;
}

/** How long a missing file is waited for: the kubelet's symlink swap takes microseconds. */
const ENOENT_RETRIES = 20;
const ENOENT_DELAY_MS = 50;
/** An exec credential is renewed this long before it expires. */
const EXPIRY_MARGIN_MS = 10_000;
const EXEC_TIMEOUT_MS = 60_000;
const EXEC_OUTPUT_LIMIT = 1 << 20;

// Not unref'ed: the caller awaits it, and the wait is bounded (about a second).
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Cached {
  stamp: string;
  content: Buffer;
}

interface ExecResult {
  token?: string;
  cert?: Buffer;
  key?: Buffer;
  /** ms since epoch; undefined: valid until the server rejects it. */
  expires?: number;
}

export class Credentials {
  private readonly files = new Map<string, Cached>();
  private exec: ExecResult | undefined;
  private execRunning: Promise<ExecResult> | undefined;
  private subject: string | undefined;
  /** The last pair that proved to match, by the PEM buffers it was made from (the file cache keeps them). */
  private checked: { certPem: Buffer; keyPem: Buffer; pair: { cert: Buffer; key: Buffer } } | undefined;

  constructor(
    private readonly config: Kubeconfig,
    private readonly now: () => number = Date.now,
  ) {}

  /** Current credentials; files are re-read when they changed, the exec plugin runs when needed. */
  async get(): Promise<Auth> {
    const c = this.config;
    const auth: Auth = {};
    if (c.ca) auth.ca = await this.material(c.ca, 'certificate-authority');
    if (c.clientCert && c.clientKey) {
      const pair = await this.certificatePair(c.clientCert, c.clientKey);
      auth.cert = pair.cert;
      auth.key = pair.key;
    }
    if (c.exec) {
      const e = await this.execCredential(c.exec);
      if (e.token) auth.token = e.token;
      if (e.cert && e.key) {
        auth.cert = e.cert;
        auth.key = e.key;
        this.subject = subjectOf(e.cert, 'exec plugin');
      }
    }
    if (!auth.token && c.tokenFile) {
      auth.token = (await this.file(c.tokenFile, 'tokenFile')).toString('utf8').trim();
      if (auth.token === '') throw new KubeError('CREDENTIALS_UNREADABLE', `${c.tokenFile}: tokenFile is empty`);
    }
    if (!auth.token && c.token) auth.token = c.token;
    return auth;
  }

  /** After the API server rejected the credentials (401): forget cached files and exec results. */
  invalidate(): void {
    this.files.clear();
    this.exec = undefined;
  }

  /** The subject CN of the client certificate last used, e.g. "system:node:worker-1". */
  certificateCommonName(): string | undefined {
    return this.subject;
  }

  /** A short description for logs and status, e.g. "client certificate /var/lib/kubelet/pki/…". */
  describe(): string {
    const c = this.config;
    if (c.exec) return `exec plugin ${c.exec.command}`;
    if (c.clientCert) return 'file' in c.clientCert ? `client certificate ${c.clientCert.file}` : `client certificate in ${c.file}`;
    if (c.tokenFile) return `token file ${c.tokenFile}`;
    return `token in ${c.file}`;
  }

  private async certificatePair(certM: Material, keyM: Material): Promise<{ cert: Buffer; key: Buffer }> {
    // A certificate and key written as two files may be read between the two writes: retry a mismatch.
    for (let attempt = 0; ; attempt++) {
      const certPem = await this.material(certM, 'client-certificate');
      const keyPem = 'file' in certM && 'file' in keyM && certM.file === keyM.file ? certPem : await this.material(keyM, 'client-key');
      // Unchanged files come back as the same buffers: parsing and matching them again for every request
      // would cost ~0.3 ms each time.
      if (this.checked?.certPem === certPem && this.checked.keyPem === keyPem) return this.checked.pair;
      const where = 'file' in certM ? certM.file : `client-certificate-data in ${this.config.file}`;
      const cert = pemBlocks(certPem, /^CERTIFICATE$/);
      const key = pemBlocks(keyPem, /PRIVATE KEY$/).slice(0, 1);
      if (cert.length === 0) throw new KubeError('CREDENTIALS_UNREADABLE', `${where}: no PEM certificate in it`);
      if (key.length === 0) {
        const keyWhere = 'file' in keyM ? keyM.file : `client-key-data in ${this.config.file}`;
        throw new KubeError('CREDENTIALS_UNREADABLE', `${keyWhere}: no PEM private key in it`);
      }
      const pair = { cert: Buffer.from(cert.join('')), key: Buffer.from(key.join('')) };
      let x509: X509Certificate;
      try {
        x509 = new X509Certificate(pair.cert);
        if (x509.checkPrivateKey(createPrivateKey(pair.key))) {
          this.subject = commonName(x509);
          this.checked = { certPem, keyPem, pair };
          return pair;
        }
      } catch (err) {
        throw new KubeError('CREDENTIALS_UNREADABLE', `${where}: not a usable certificate and key: ${messageOf(err)}`, { cause: err });
      }
      if (attempt >= 3) {
        throw new KubeError('CREDENTIALS_UNREADABLE', `${where}: the client certificate does not match its private key`);
      }
      this.files.clear();
      await sleep(ENOENT_DELAY_MS);
    }
  }

  private async material(m: Material, field: string): Promise<Buffer> {
    return 'data' in m ? m.data : this.file(m.file, field);
  }

  /** The file's content, read again when what the path names changed (another inode, size or mtime). */
  private async file(path: string, field: string): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      try {
        const st = statSync(path);
        const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
        const cached = this.files.get(path);
        if (cached?.stamp === stamp) return cached.content;
        const content = readFileSync(path);
        this.files.set(path, { stamp, content });
        return content;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < ENOENT_RETRIES) {
          await sleep(ENOENT_DELAY_MS);
          continue;
        }
        throw new KubeError(
          'CREDENTIALS_UNREADABLE',
          `${path}: cannot read the ${field} named in ${this.config.file}: ${messageOf(err)}`,
          { cause: err },
        );
      }
    }
  }

  private async execCredential(exec: ExecConfig): Promise<ExecResult> {
    const cached = this.exec;
    if (cached && (cached.expires === undefined || cached.expires - EXPIRY_MARGIN_MS > this.now())) return cached;
    // Concurrent requests share one run of the plugin.
    this.execRunning ??= runExecPlugin(exec, this.config).finally(() => {
      this.execRunning = undefined;
    });
    this.exec = await this.execRunning;
    return this.exec;
  }
}

function runExecPlugin(exec: ExecConfig, config: Kubeconfig): Promise<ExecResult> {
  const info = {
    apiVersion: exec.apiVersion,
    kind: 'ExecCredential',
    spec: { interactive: false, ...(exec.provideClusterInfo ? { cluster: config.clusterInfo } : {}) },
  };
  const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) };
  for (const e of exec.env) env[e.name] = e.value;
  const what = `exec plugin ${exec.command} (user of ${config.file})`;
  const fail = (why: string, cause?: unknown) =>
    new KubeError('EXEC_PLUGIN_FAILED', `${what}: ${why}`, cause === undefined ? undefined : { cause });

  return new Promise((resolve, reject) => {
    const child = spawn(exec.command, exec.args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), EXEC_TIMEOUT_MS);
    timer.unref();
    const collect = (into: Buffer[]) => (d: Buffer) => {
      size += d.length;
      if (size > EXEC_OUTPUT_LIMIT) child.kill('SIGKILL');
      else into.push(d);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.on('error', (e) => {
      clearTimeout(timer);
      const hint = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `not found${exec.installHint ? `; ${exec.installHint.trim()}` : ''}` : messageOf(e);
      reject(fail(hint, e));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-3).join(' | ');
      if (signal) {
        reject(fail(size > EXEC_OUTPUT_LIMIT ? 'printed more than 1 MiB' : `killed by ${signal} (no answer within ${EXEC_TIMEOUT_MS / 1000}s?)`));
        return;
      }
      if (code !== 0) {
        reject(fail(`exited with ${code}${stderr ? `: ${stderr}` : ''}`));
        return;
      }
      try {
        resolve(parseExecCredential(Buffer.concat(out).toString('utf8'), exec.apiVersion));
      } catch (e) {
        reject(fail(messageOf(e)));
      }
    });
  });
}

export function parseExecCredential(stdout: string, apiVersion: string): ExecResult {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new Error(`did not print an ExecCredential as JSON (got ${JSON.stringify(stdout.slice(0, 80))})`);
  }
  const d = doc as { apiVersion?: unknown; kind?: unknown; status?: Record<string, unknown> };
  if (d.kind !== 'ExecCredential') throw new Error(`printed kind ${JSON.stringify(d.kind)}, not ExecCredential`);
  if (d.apiVersion !== apiVersion) throw new Error(`printed apiVersion ${JSON.stringify(d.apiVersion)}, but the kubeconfig asks for ${apiVersion}`);
  const s = d.status ?? {};
  const result: ExecResult = {};
  if (typeof s.token === 'string' && s.token !== '') result.token = s.token;
  const certData = s.clientCertificateData;
  const keyData = s.clientKeyData;
  if (typeof certData === 'string' && typeof keyData === 'string' && certData !== '' && keyData !== '') {
    result.cert = Buffer.from(certData);
    result.key = Buffer.from(keyData);
  } else if (certData !== undefined || keyData !== undefined) {
    throw new Error('printed a client certificate without its key (or a key without its certificate)');
  }
  if (!result.token && !result.cert) throw new Error('printed an ExecCredential without a token or client certificate');
  if (s.expirationTimestamp !== undefined) {
    const t = typeof s.expirationTimestamp === 'string' ? Date.parse(s.expirationTimestamp) : NaN;
    if (Number.isNaN(t)) throw new Error(`printed an expirationTimestamp that is not a time: ${JSON.stringify(s.expirationTimestamp)}`);
    result.expires = t;
  }
  return result;
}

/** The PEM blocks whose label matches, each with its BEGIN/END lines. */
function pemBlocks(pem: Buffer, label: RegExp): string[] {
  const blocks: string[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----\r?\n?/g;
  const text = pem.toString('utf8');
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (label.test(m[1] as string)) blocks.push(m[0].endsWith('\n') ? m[0] : `${m[0]}\n`);
  }
  return blocks;
}

function commonName(x509: X509Certificate): string | undefined {
  return /^CN=(.*)$/m.exec(x509.subject)?.[1];
}

function subjectOf(pem: Buffer, where: string): string | undefined {
  try {
    return commonName(new X509Certificate(pem));
  } catch (err) {
    throw new KubeError('EXEC_PLUGIN_FAILED', `${where}: printed a client certificate that does not parse: ${messageOf(err)}`, { cause: err });
  }
}
