// The shipped alerting rules and Grafana dashboard against a real Prometheus (the build scripts/setup.sh
// makes) scraping the agent installed from the .deb in a node in a box, reporting to a real API server.
// A kernel hung-task line makes NodeHealthConditionTrue fire, a containerd repair that uses up the budget
// makes NodeHealthRepairBudgetExhausted fire, stopping the agent makes NodeHealthAgentDown fire; the alerts
// of a healthy node stay quiet; every query of every dashboard panel returns series.
//
// The shipped `for` durations are minutes. Prometheus loads the shipped file as it is, and a copy made
// from it here with every `for` set to 3s (group "node-health-agent-short-for"): the shipped rule is seen
// pending, the copy firing; the timing of each `for` is tested by promtool (test/monitoring/).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { writeKernelLine, type Box } from '../helpers/box';
import { Cluster, waitFor } from '../helpers/cluster';
import { freePort } from '../helpers/net';
import { installedNode } from '../helpers/node';
import { dashboardFile, grafanaExpr, prometheusBinaries, PrometheusServer, rulesFile, type RuleView } from '../helpers/prometheus';

const SHIPPED = 'node-health-agent';
const SHORT = 'node-health-agent-short-for';
const SHORT_FOR = '3s';

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert: string; for?: string }> }>;
}

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ refId: string; expr: string }>;
}

/** The shipped rules with every `for` shortened, in groups of their own name. */
function shortForCopy(): string {
  const rules = parse(readFileSync(rulesFile, 'utf8')) as RuleFile;
  for (const g of rules.groups) {
    g.name = SHORT;
    for (const r of g.rules) if (r.for) r.for = SHORT_FOR;
  }
  return stringify(rules);
}

t.test('alerts fire and every dashboard query returns series with a real Prometheus scraping the agent in a box', async (t) => {
  prometheusBinaries(); // missing: fail now, naming scripts/setup.sh
  const node = `e2e-prom-${process.pid}`;
  const cluster = await Cluster.up(t, [node]);
  const port = await freePort();
  const target = `127.0.0.1:${port}`;
  // containerd repaired fast and at most once in 10 minutes, so one repair uses up the budget.
  const ini = `[repair]
allowed_units = containerd.service
[containerd]
interval = 1s
timeout = 1s
failure_duration = 2s
cooldown = 2s
backoff = 1s
backoff_max = 2s
max_repairs = 1
repair_window = 10m
`;
  const box: Box = await installedNode(t, cluster, node, {
    ini: { name: '50-prometheus-test.ini', text: ini },
    metricsPort: port,
    before: (b) => b.check(['systemctl', 'start', 'containerd']),
  });

  const prom = await PrometheusServer.start(
    t,
    `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [shipped.rules.yaml, short-for.rules.yaml]
scrape_configs:
  - job_name: ${SHIPPED}
    static_configs:
      - targets: ['${target}']
`,
    { 'shipped.rules.yaml': readFileSync(rulesFile, 'utf8'), 'short-for.rules.yaml': shortForCopy() },
  );

  const rule = async (group: string, alert: string): Promise<RuleView> => {
    const r = (await prom.rules()).find((g) => g.name === group)?.rules.find((x) => x.name === alert);
    if (!r) throw new Error(`no rule ${alert} in group ${group}`);
    return r;
  };
  /** Waits until `alert` of `group` has an alert in `state` whose labels include `labels`. */
  const alertIn = (group: string, alert: string, state: 'pending' | 'firing', labels: Record<string, string>, timeoutMs = 30_000) =>
    waitFor(`${alert} ${state} in ${group} with ${JSON.stringify(labels)}`, async () => {
      const r = await rule(group, alert);
      return r.alerts?.find((a) => a.state === state && Object.entries(labels).every(([k, v]) => a.labels[k] === v));
    }, timeoutMs, 250);

  await t.test('Prometheus scrapes the agent and sees it connected to the API server', async (t) => {
    await waitFor('the target up', async () => ((await prom.query(`up{job="${SHIPPED}"} == 1`)).length === 1 ? true : undefined), 60_000, 250);
    const [tg] = await prom.targets();
    t.match(tg, { scrapeUrl: `http://${target}/metrics`, health: 'up', lastError: '' });
    await waitFor('connected and conditions written', async () =>
      (await prom.query('node_health_kubernetes_connected == 1 and on(instance) node_health_kubernetes_last_write_timestamp_seconds')).length === 1 ? true : undefined,
    60_000, 250);
  });

  await t.test('a healthy node: the alerts about the agent, its state directory, the API and the journal stay inactive', async (t) => {
    // Long enough for a short-for alert to fire, were its expression true.
    await new Promise((r) => setTimeout(r, 5_000));
    for (const name of ['NodeHealthAgentDown', 'NodeHealthAgentNotReporting', 'NodeHealthApiUnreachable', 'NodeHealthApiErrors', 'NodeHealthJournalLag', 'NodeHealthLadderStuck', 'NodeHealthRepairBudgetExhausted', 'NodeHealthAgentDegraded']) {
      const r = await rule(SHORT, name);
      t.equal(r.state, 'inactive', `${name}: ${JSON.stringify(r.alerts)}`);
    }
    const deadlock = (await rule(SHORT, 'NodeHealthConditionTrue')).alerts?.filter((a) => a.labels.type === 'KernelDeadlock') ?? [];
    t.same(deadlock, [], 'no KernelDeadlock alert yet');
  });

  await t.test('a kernel hung task: KernelDeadlock True makes NodeHealthConditionTrue fire', async (t) => {
    const written = Date.now();
    await writeKernelLine(box, 'INFO: task docker:7 blocked for more than 300 seconds.');
    const labels = { job: SHIPPED, instance: target, type: 'KernelDeadlock', reason: 'DockerHung', severity: 'warning' };
    await alertIn(SHORT, 'NodeHealthConditionTrue', 'firing', labels);
    t.comment(`kernel line → NodeHealthConditionTrue firing (for ${SHORT_FOR}): ${Date.now() - written} ms`);
    const shipped = await alertIn(SHIPPED, 'NodeHealthConditionTrue', 'pending', labels);
    t.equal(Number(shipped.value), 1, 'the shipped rule is pending: its for is 15m');
  });

  await t.test('containerd hung and repaired once: the budget is used up and NodeHealthRepairBudgetExhausted fires', async (t) => {
    const pid = (await box.check(['systemctl', 'show', '-p', 'MainPID', '--value', 'containerd'])).trim();
    await box.check(['kill', '-STOP', pid]);
    const labels = { job: SHIPPED, instance: target, component: 'containerd', unit: 'containerd.service', severity: 'critical' };
    // No `for`: both copies fire.
    await alertIn(SHIPPED, 'NodeHealthRepairBudgetExhausted', 'firing', labels, 60_000);
    t.pass('fired');
    const now = await waitFor('containerd running again with a new main PID', async () => {
      const main = (await box.check(['systemctl', 'show', '-p', 'MainPID', '--value', 'containerd'])).trim();
      const state = (await box.check(['systemctl', 'show', '-p', 'ActiveState', '--value', 'containerd'])).trim();
      return state === 'active' && main !== pid && main !== '0' ? main : undefined;
    }, 30_000, 250);
    t.pass(`containerd was restarted by the agent (main PID ${pid} → ${now})`);
  });

  await t.test('every query of every dashboard panel returns series', async (t) => {
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: Panel[] };
    const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((q) => ({ panel: p.title, ref: q.refId, expr: grafanaExpr(q.expr) })));
    t.ok(queries.length >= 15, `${queries.length} queries`);
    // A 1-minute rate window needs two scrapes in it; the repair above needs one more scrape to show.
    await new Promise((r) => setTimeout(r, 3_000));
    const empty: string[] = [];
    for (const q of queries) {
      const result = await prom.query(q.expr);
      if (result.length === 0) empty.push(`${q.panel} (${q.ref}): ${q.expr}`);
    }
    t.same(empty, [], 'no panel query without series');
  });

  await t.test('the agent stopped: NodeHealthAgentDown fires', async (t) => {
    await box.check(['systemctl', 'stop', 'node-health-agent']);
    await alertIn(SHORT, 'NodeHealthAgentDown', 'firing', { job: SHIPPED, instance: target, severity: 'warning' });
    t.equal((await rule(SHIPPED, 'NodeHealthAgentDown')).state, 'pending', 'the shipped rule is pending: its for is 5m');
  });
});
