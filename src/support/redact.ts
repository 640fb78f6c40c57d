// Keeps secrets out of the support bundle. Every text the bundle holds passes through redactText (keys,
// certificates, tokens, password-like settings); kubeconfigs are rebuilt from an allowlist of fields, so
// a field nobody thought of is withheld rather than copied.
import { parse } from 'yaml';
import { messageOf } from '../errors';

/** Names whose value is a secret: token=, "password": , --client-secret=, api_key: … */
const SECRET_NAME = String.raw`[A-Za-z0-9_.-]*(?:token|passw(?:or)?d|secret|api[_-]?key|private[_-]?key|client[_-]?key|bearer)[A-Za-z0-9_.-]*`;

const RULES: Array<[RegExp, string | ((...groups: string[]) => string)]> = [
  // PEM blocks (keys, certificates, CSRs), also cut off without their END line, also inside JSON strings.
  [/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?(?:-----END \1-----|$)/g, (_m, label) => `<redacted ${label}>`],
  // The same base64-encoded, as kubeconfigs and Secrets carry them ("-----BEGIN" is "LS0tLS1CRUdJT").
  [/LS0tLS1CRUdJT[A-Za-z0-9+/=]*/g, '<redacted base64 PEM>'],
  // JSON Web Tokens (ServiceAccount tokens) and bootstrap tokens.
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, '<redacted token>'],
  [/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g, '<redacted token>'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 <redacted>'],
  // name=value, name: value, "name": "value", --name=value, where the name says secret. Paths stay.
  [
    new RegExp(String.raw`(["']?)(${SECRET_NAME})\1(\s*[:=]\s*)(["']?)(?![/<])([^\s"',;}\]]+)`, 'gi'),
    (_m, q, name, sep, vq) => `${q}${name}${q}${sep}${vq}<redacted>`,
  ],
  // An argv in JSON: "--token", "value".
  [new RegExp(String.raw`("--?${SECRET_NAME}"\s*,\s*")(?![/<])[^"]*`, 'gi'), '$1<redacted>'],
];

export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of RULES) {
    out = out.replace(pattern, replacement as (substring: string, ...args: string[]) => string);
  }
  return out;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const withheld = (v: unknown): string => `<redacted: ${typeof v === 'string' ? `${Buffer.byteLength(v)} bytes` : 'not shown'}>`;

/** Keeps the fields of `from` named in `keep` (mapped through its function), withholds every other one. */
function only(from: unknown, keep: Record<string, (v: unknown) => unknown>): Obj | string {
  if (!isObj(from)) return withheld(from);
  const out: Obj = {};
  for (const [k, v] of Object.entries(from)) out[k] = keep[k] ? keep[k](v) : withheld(v);
  return out;
}

const asIs = (v: unknown): unknown => (typeof v === 'object' && v !== null ? withheld(v) : v);
const scrubbed = (v: unknown): unknown => (typeof v === 'string' ? redactText(v) : asIs(v));
const list = (item: (v: unknown) => unknown) => (v: unknown): unknown => (Array.isArray(v) ? v.map(item) : withheld(v));

/** Exec plugin arguments: each scrubbed, and the one after a --token-like flag withheld. */
function execArgs(v: unknown): unknown {
  if (!Array.isArray(v)) return withheld(v);
  const secretFlag = new RegExp(String.raw`^--?${SECRET_NAME}$`, 'i');
  return v.map((a, i) => (i > 0 && typeof v[i - 1] === 'string' && secretFlag.test(v[i - 1] as string) ? withheld(a) : scrubbed(a)));
}

const KUBECONFIG = {
  apiVersion: asIs,
  kind: asIs,
  'current-context': asIs,
  clusters: list((c) =>
    only(c, {
      name: asIs,
      cluster: (v) =>
        only(v, {
          server: scrubbed,
          'certificate-authority': asIs,
          'insecure-skip-tls-verify': asIs,
          'tls-server-name': asIs,
          'proxy-url': (u) => (typeof u === 'string' ? u.replace(/\/\/[^/@]*@/, '//<redacted>@') : asIs(u)),
        }),
    }),
  ),
  contexts: list((c) => only(c, { name: asIs, context: (v) => only(v, { cluster: asIs, user: asIs, namespace: asIs }) })),
  users: list((u) =>
    only(u, {
      name: asIs,
      user: (v) =>
        only(v, {
          'client-certificate': asIs,
          'client-key': asIs,
          tokenFile: asIs,
          username: asIs,
          exec: (e) =>
            only(e, {
              apiVersion: asIs,
              command: scrubbed,
              args: execArgs,
              env: list((x) => only(x, { name: asIs })),
              interactiveMode: asIs,
              provideClusterInfo: asIs,
              installHint: scrubbed,
            }),
        }),
    }),
  ),
};

/**
 * A kubeconfig with only what helps a diagnosis: servers, file paths, context, user names, the exec
 * command. Inline certificates, keys, tokens, passwords and exec environment values are withheld.
 */
export function redactKubeconfig(text: string): unknown {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    return `<not YAML (${redactText(messageOf(err)).split('\n')[0]}); contents withheld>`;
  }
  return only(doc, KUBECONFIG);
}
