// The kubelet's kubeconfig: found among the configured paths, parsed (kubeconfigs are YAML) and reduced
// to the one cluster and user of its current context. Relative paths are relative to the kubeconfig's
// own directory, as kubectl and the kubelet resolve them. Anything that would weaken TLS is refused.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { checkFileOwnership } from '../../config/load';
import { AgentError, messageOf } from '../../errors';
import { KubeError } from './errors';

/** Bytes given inline (`…-data`, base64) or in a file named by the kubeconfig. */
export type Material = { file: string } | { data: Buffer };

export interface ExecConfig {
  apiVersion: 'client.authentication.k8s.io/v1' | 'client.authentication.k8s.io/v1beta1';
  /** Absolute, or a bare name looked up on PATH. */
  command: string;
  args: string[];
  env: Array<{ name: string; value: string }>;
  provideClusterInfo: boolean;
  installHint?: string;
}

export interface Kubeconfig {
  file: string;
  context: string;
  /** The API server's base URL, always https. */
  server: string;
  /** Name checked against the server's certificate instead of the URL's host. */
  tlsServerName?: string;
  /** Absent: the system's trusted CAs. */
  ca?: Material;
  clientCert?: Material;
  clientKey?: Material;
  token?: string;
  tokenFile?: string;
  exec?: ExecConfig;
  /** The cluster entry as written, for exec plugins that ask for it (provideClusterInfo). */
  clusterInfo: { server: string; 'certificate-authority-data'?: string; 'tls-server-name'?: string };
}

/** The first of `paths` that exists. */
export function findKubeconfig(paths: readonly string[]): string {
  const found = paths.find((p) => existsSync(p));
  if (found === undefined) {
    throw new KubeError(
      'KUBECONFIG_NOT_FOUND',
      `no kubelet kubeconfig found (looked for ${paths.join(', ')}); the kubelet writes it when the node joins the cluster, or set [kubernetes] kubeconfig_paths`,
    );
  }
  return found;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function loadKubeconfig(file: string): Kubeconfig {
  let text: string;
  try {
    // Its exec plugin runs as root and its credentials speak for the node: only root may have written it.
    checkFileOwnership(file);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof AgentError) throw new KubeError('KUBECONFIG_INSECURE', err.message, { cause: err });
    const hint = (err as NodeJS.ErrnoException).code === 'EACCES' ? ' (the kubelet keeps it readable by root only: run as root)' : '';
    throw new KubeError('KUBECONFIG_INVALID', `${file}: cannot read the kubeconfig: ${messageOf(err)}${hint}`, { cause: err });
  }
  const config = parseKubeconfig(file, text);
  const command = config.exec?.command;
  if (command !== undefined && isAbsolute(command)) {
    try {
      checkFileOwnership(command);
    } catch (err) {
      // Missing or unreadable is reported when it runs, with the kubeconfig's installHint.
      if (err instanceof AgentError) throw new KubeError('KUBECONFIG_INSECURE', `${file}: exec plugin ${err.message}`, { cause: err });
    }
  }
  return config;
}

export function parseKubeconfig(file: string, text: string): Kubeconfig {
  const bad = (what: string): KubeError => new KubeError('KUBECONFIG_INVALID', `${file}: ${what}`);
  const doc = parseDocument(text, { uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const at = first.linePos?.[0];
    const where = at ? `line ${at.line}, column ${at.col}: ` : '';
    throw bad(`not valid YAML (${where}${first.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')})`);
  }
  const root: unknown = doc.toJS();
  if (!isObj(root)) throw bad('not a kubeconfig (expected a mapping with clusters, users and contexts)');
  if (root.kind !== undefined && root.kind !== 'Config') throw bad(`kind is "${String(root.kind)}", not Config`);

  const named = (list: string, name: string, field: string): Obj => {
    const entries = root[list];
    if (entries !== undefined && !Array.isArray(entries)) throw bad(`${list} must be a list`);
    const entry = (entries ?? []).find((e: unknown) => isObj(e) && e.name === name) as Obj | undefined;
    if (!entry) throw bad(`no ${list.slice(0, -1)} named "${name}" (used by context "${contextName}")`);
    const body = entry[field];
    if (!isObj(body)) throw bad(`${list.slice(0, -1)} "${name}" has no ${field} mapping`);
    return body;
  };

  const contexts = Array.isArray(root.contexts) ? (root.contexts as unknown[]).filter(isObj) : [];
  let contextName = typeof root['current-context'] === 'string' ? root['current-context'] : '';
  if (contextName === '') {
    // A kubeconfig with one context needs no current-context to be unambiguous.
    if (contexts.length !== 1 || typeof contexts[0]?.name !== 'string') {
      throw bad('no current-context set; set current-context to the context the kubelet uses');
    }
    contextName = contexts[0].name;
  }
  const context = named('contexts', contextName, 'context');
  const clusterName = context.cluster;
  const userName = context.user;
  if (typeof clusterName !== 'string' || clusterName === '') throw bad(`context "${contextName}" names no cluster`);
  if (typeof userName !== 'string' || userName === '') throw bad(`context "${contextName}" names no user`);
  const cluster = named('clusters', clusterName, 'cluster');
  const user = named('users', userName, 'user');

  const dir = dirname(resolve(file));
  const path = (v: unknown, field: string): string | undefined => {
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') throw bad(`${field} must be a path`);
    return isAbsolute(v) ? v : resolve(dir, v);
  };
  const base64 = (v: unknown, field: string): Buffer | undefined => {
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/=\s]+$/.test(v)) throw bad(`${field} is not base64`);
    return Buffer.from(v, 'base64');
  };
  const material = (dataField: string, fileField: string, obj: Obj, owner: string): Material | undefined => {
    const data = base64(obj[dataField], `${owner} ${dataField}`);
    if (data) return { data };
    const f = path(obj[fileField], `${owner} ${fileField}`);
    return f === undefined ? undefined : { file: f };
  };

  const server = cluster.server;
  if (typeof server !== 'string' || server === '') throw bad(`cluster "${clusterName}" has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw bad(`cluster "${clusterName}" server "${server}" is not a URL`);
  }
  if (url.protocol !== 'https:') {
    throw bad(`cluster "${clusterName}" server "${server}" is not https; the agent sends the node's credentials only over TLS`);
  }
  if (cluster['insecure-skip-tls-verify'] === true) {
    throw bad(
      `cluster "${clusterName}" sets insecure-skip-tls-verify; the agent always verifies the API server: set certificate-authority or certificate-authority-data instead`,
    );
  }
  if (cluster['proxy-url'] !== undefined) {
    throw bad(`cluster "${clusterName}" sets proxy-url, which the agent does not support; reach the API server directly`);
  }
  if (user['auth-provider'] !== undefined) {
    throw bad(`user "${userName}" uses an auth-provider plugin (removed from Kubernetes in 1.26); use an exec credential plugin`);
  }
  if (user.username !== undefined || user.password !== undefined) {
    throw bad(`user "${userName}" uses basic authentication, which Kubernetes no longer accepts; use the kubelet's certificate or token`);
  }

  const ownerUser = `user "${userName}"`;
  const token = user.token;
  if (token !== undefined && typeof token !== 'string') throw bad(`${ownerUser} token must be a string`);
  const tlsServerName = cluster['tls-server-name'];
  const config: Kubeconfig = {
    file,
    context: contextName,
    server: server.replace(/\/+$/, ''),
    ...(typeof tlsServerName === 'string' && tlsServerName !== '' ? { tlsServerName } : {}),
    clusterInfo: {
      server,
      ...(typeof cluster['certificate-authority-data'] === 'string'
        ? { 'certificate-authority-data': cluster['certificate-authority-data'] }
        : {}),
      ...(typeof tlsServerName === 'string' ? { 'tls-server-name': tlsServerName } : {}),
    },
  };
  const ca = material('certificate-authority-data', 'certificate-authority', cluster, `cluster "${clusterName}"`);
  if (ca) config.ca = ca;
  const cert = material('client-certificate-data', 'client-certificate', user, ownerUser);
  const key = material('client-key-data', 'client-key', user, ownerUser);
  if ((cert === undefined) !== (key === undefined)) {
    throw bad(`${ownerUser} has a client certificate without its key or a key without its certificate; set both`);
  }
  if (cert && key) {
    config.clientCert = cert;
    config.clientKey = key;
  }
  if (typeof token === 'string' && token !== '') config.token = token;
  const tokenFile = path(user.tokenFile, `${ownerUser} tokenFile`);
  if (tokenFile !== undefined) config.tokenFile = tokenFile;
  if (user.exec !== undefined) config.exec = parseExec(user.exec, dir, bad, ownerUser);

  if (!config.clientCert && !config.token && !config.tokenFile && !config.exec) {
    throw bad(`${ownerUser} has no credentials (client-certificate, token, tokenFile or exec)`);
  }
  return config;
}

function parseExec(v: unknown, dir: string, bad: (what: string) => KubeError, owner: string): ExecConfig {
  if (!isObj(v)) throw bad(`${owner} exec must be a mapping`);
  const apiVersion = v.apiVersion;
  if (apiVersion !== 'client.authentication.k8s.io/v1' && apiVersion !== 'client.authentication.k8s.io/v1beta1') {
    throw bad(`${owner} exec apiVersion "${String(apiVersion)}" is not supported; use client.authentication.k8s.io/v1`);
  }
  const command = v.command;
  if (typeof command !== 'string' || command === '') throw bad(`${owner} exec has no command`);
  if (v.interactiveMode === 'Always') {
    throw bad(`${owner} exec sets interactiveMode Always, but the agent runs without a terminal; the plugin must work non-interactively`);
  }
  const args = v.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw bad(`${owner} exec args must be a list of strings`);
  const env = v.env ?? [];
  if (!Array.isArray(env) || !env.every((e) => isObj(e) && typeof e.name === 'string' && typeof e.value === 'string')) {
    throw bad(`${owner} exec env must be a list of {name, value}`);
  }
  return {
    apiVersion,
    // Like kubectl: a command with a slash is a path, relative ones from the kubeconfig's directory.
    command: command.includes('/') && !isAbsolute(command) ? resolve(dir, command) : command,
    args: args as string[],
    env: env as Array<{ name: string; value: string }>,
    provideClusterInfo: v.provideClusterInfo === true,
    ...(typeof v.installHint === 'string' ? { installHint: v.installHint } : {}),
  };
}
