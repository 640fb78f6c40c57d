// The shipped alerting rules: valid for Prometheus (promtool check rules), each alert firing when it
// should and not before or otherwise (promtool test rules, alerts.promtest.yaml), the PrometheusRule made
// from the same file, a runbook line for each alert in docs/metrics.md, and the dashboard's queries valid
// PromQL (that they return series is tested end to end: test/e2e/prometheus.test.ts).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { dashboardFile, grafanaExpr, prometheusBinaries, PrometheusServer, rulesFile } from '../helpers/prometheus';

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert: string; expr: string; for?: string; labels?: Record<string, string> }> }>;
}

const root = join(__dirname, '../..');
const promtest = join(__dirname, 'alerts.promtest.yaml');
const rules = parse(readFileSync(rulesFile, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));

function promtool(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(prometheusBinaries().promtool, args, { encoding: 'utf8', cwd: root });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

t.test('promtool accepts the rule file', async (t) => {
  const r = promtool(['check', 'rules', rulesFile]);
  t.equal(r.code, 0, r.out);
  t.match(r.out, `SUCCESS: ${alerts.length} rules found`);
  t.same(alerts.sort(), [
    'NodeHealthAgentDegraded',
    'NodeHealthAgentDown',
    'NodeHealthAgentNotReporting',
    'NodeHealthApiErrors',
    'NodeHealthApiUnreachable',
    'NodeHealthConditionTrue',
    'NodeHealthEventsSuppressed',
    'NodeHealthJournalLag',
    'NodeHealthLadderStuck',
    'NodeHealthRepairBudgetExhausted',
  ]);
  for (const g of rules.groups) for (const r of g.rules) t.ok(['info', 'warning', 'critical'].includes(r.labels?.severity ?? ''), `${r.alert} has a severity`);
});

t.test('promtool test rules: each alert fires when it should, not earlier, and not for the healthy nodes', async (t) => {
  const tested = new Set((parse(readFileSync(promtest, 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string }> }> }).tests.flatMap((x) => x.alert_rule_test.map((a) => a.alertname)));
  t.same([...alerts].filter((a) => !tested.has(a)), [], 'every alert has a unit test');
  const r = promtool(['test', 'rules', promtest]);
  t.equal(r.code, 0, r.out);
  t.match(r.out, 'SUCCESS');
});

t.test('the unit tests catch a changed threshold', async (t) => {
  // The same tests against a copy of the rules with one `for` shortened must fail, and name the alert.
  const dir = mkdtempSync(join(tmpdir(), 'nha-rules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const text = readFileSync(rulesFile, 'utf8');
  const changed = text.replace(/(alert: NodeHealthAgentDown\n\s+expr: .*\n\s+for: )5m/, '$14m');
  t.not(changed, text, 'the copy differs');
  writeFileSync(join(dir, 'rules.yaml'), changed);
  writeFileSync(join(dir, 'test.yaml'), readFileSync(promtest, 'utf8').replace('../../packaging/monitoring/node-health-agent.rules.yaml', 'rules.yaml'));
  const r = promtool(['test', 'rules', join(dir, 'test.yaml')]);
  t.equal(r.code, 1, r.out);
  t.match(r.out, /alertname: NodeHealthAgentDown/);
});

t.test('the PrometheusRule holds the same groups', async (t) => {
  const r = spawnSync(process.execPath, [join(root, 'packaging/monitoring/prometheusrule.mjs')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const manifest = parse(r.stdout) as { apiVersion: string; kind: string; metadata: { name: string }; spec: RuleFile };
  t.match(manifest, { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: 'node-health-agent' } });
  t.same(manifest.spec, rules);
  // And Prometheus reads the spec as a rule file.
  const dir = mkdtempSync(join(tmpdir(), 'nha-rules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'spec.yaml'), JSON.stringify(manifest.spec));
  const check = promtool(['check', 'rules', join(dir, 'spec.yaml')]);
  t.equal(check.code, 0, check.out);
});

t.test('docs/metrics.md has a runbook line for each alert', async (t) => {
  const doc = readFileSync(join(root, 'docs/metrics.md'), 'utf8');
  for (const a of alerts) t.match(doc, new RegExp(`^\\| \`${a}\` \\|`, 'm'), a);
});

t.test('the dashboard: unique panel ids, a description and queries Prometheus accepts in every panel', async (t) => {
  const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
    uid: string;
    panels: Array<{ id: number; type: string; title: string; description?: string; targets?: Array<{ refId: string; expr: string }> }>;
  };
  t.equal(dashboard.uid, 'node-health-agent');
  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const prom = await PrometheusServer.start(t, 'global:\n  evaluation_interval: 1m\n');
  for (const p of dashboard.panels.filter((x) => x.type !== 'row')) {
    t.ok(p.description, `${p.title}: has a description`);
    t.ok(p.targets?.length, `${p.title}: has a query`);
    for (const q of p.targets ?? []) {
      // An instant query on an empty Prometheus: parsed and evaluated, no series.
      await t.resolves(prom.query(grafanaExpr(q.expr)), `${p.title} (${q.refId}) is valid PromQL`);
    }
  }
});
