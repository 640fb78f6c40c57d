// What the support bundle withholds: keys, certificates, tokens, passwords; and what it keeps.
import t from 'tap';
import { stringify } from 'yaml';
import { redactKubeconfig, redactText } from '../../../src/support/redact';

const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
const JWT = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLXBhcnQ';

t.test('redactText withholds secrets wherever they sit in a text', async (t) => {
  const cases: Array<[string, string]> = [
    [`key: ${PEM_KEY}\nnext`, 'key: <redacted PRIVATE KEY>\nnext'],
    [JSON.stringify({ msg: `cert ${PEM_KEY}` }), '{"msg":"cert <redacted PRIVATE KEY>"}'],
    ['-----BEGIN CERTIFICATE-----\nMIIB cut off', '<redacted CERTIFICATE>'],
    [`data: ${Buffer.from(PEM_KEY).toString('base64')}`, 'data: <redacted base64 PEM>'],
    [`Authorization: Bearer ${JWT}`, 'Authorization: Bearer <redacted token>'],
    ['Authorization: Bearer abcdefghijkl', 'Authorization: Bearer <redacted>'],
    ['join with abcdef.0123456789abcdef now', 'join with <redacted token> now'],
    ['token = s3cr3t-value', 'token = <redacted>'],
    ['{"password":"hunter2","user":"me"}', '{"password":"<redacted>","user":"me"}'],
    ['--client-secret=xyz --verbose', '--client-secret=<redacted> --verbose'],
    ['args = ["--token", "abc123", "--v=2"]', 'args = ["--token", "<redacted>", "--v=2"]'],
  ];
  for (const [input, want] of cases) t.equal(redactText(input), want, input.split('\n')[0]!);
});

t.test('redactText keeps what is not secret', async (t) => {
  for (const keep of [
    'token_file = /var/run/secrets/token  ; /etc/node-health/50.ini:3',
    'condition KernelDeadlock is now True: task hung for 120s',
    '[kubernetes]\nkubeconfig_paths = /etc/kubernetes/kubelet.conf',
    '2026-01-01T00:00:00.000Z kernel: Out of memory: Killed process 1234 (stress)',
  ]) {
    t.equal(redactText(keep), keep);
  }
});

t.test('a kubeconfig keeps servers, paths and names, and withholds every secret field', async (t) => {
  const kubeconfig = stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'default',
    clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': Buffer.from('-----BEGIN CERTIFICATE-----').toString('base64') } }],
    contexts: [{ name: 'default', context: { cluster: 'c', user: 'u' } }],
    users: [
      {
        name: 'u',
        user: {
          'client-certificate': '/var/lib/kubelet/pki/kubelet-client-current.pem',
          'client-key-data': 'S0VZLURBVEEtUExBTlRFRA==',
          token: 'plain-token-value',
          password: 'pw-value',
          'auth-provider': { name: 'oidc', config: { 'id-token': 'idt-value' } },
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: 'aws',
            args: ['eks', 'get-token', '--token', 'arg-value'],
            env: [{ name: 'AWS_SECRET_ACCESS_KEY', value: 'env-value' }],
          },
        },
      },
    ],
    preferences: { colors: true },
  });
  const out = JSON.stringify(redactKubeconfig(kubeconfig));
  for (const secret of ['S0VZLURBVEEtUExBTlRFRA==', 'plain-token-value', 'pw-value', 'idt-value', 'arg-value', 'env-value', 'LS0tLS1CRUdJT']) {
    t.notMatch(out, secret, `${secret} is withheld`);
  }
  type Doc = {
    'current-context': string;
    clusters: Array<{ cluster: Record<string, string> }>;
    users: Array<{ user: Record<string, string> & { exec: { command: string; args: string[]; env: unknown[] } } }>;
  };
  const r = redactKubeconfig(kubeconfig) as Doc;
  t.equal(r.clusters[0]!.cluster.server, 'https://10.0.0.1:6443');
  t.match(r.clusters[0]!.cluster['certificate-authority-data'], /^<redacted: \d+ bytes>$/);
  t.equal(r.users[0]!.user['client-certificate'], '/var/lib/kubelet/pki/kubelet-client-current.pem');
  t.equal(r.users[0]!.user.exec.command, 'aws');
  t.same(r.users[0]!.user.exec.args.slice(0, 3), ['eks', 'get-token', '--token']);
  t.same(r.users[0]!.user.exec.env, [{ name: 'AWS_SECRET_ACCESS_KEY', value: '<redacted: 9 bytes>' }], 'the variable is named, its value is not');
  t.equal(r['current-context'], 'default');
  t.match(redactKubeconfig('{ not: yaml: ['), /^<not YAML/);
});
