// Writes the alerting rules (node-health-agent.rules.yaml next to this file) as a PrometheusRule for the
// Prometheus Operator to stdout: the same groups under spec, so the two cannot drift. Run by
// scripts/package.sh; test/monitoring/rules.test.ts checks the result.
//   usage: node packaging/monitoring/prometheusrule.mjs
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

const source = join(import.meta.dirname, 'node-health-agent.rules.yaml');
const rules = parse(readFileSync(source, 'utf8'));
if (!Array.isArray(rules?.groups) || rules.groups.length === 0) {
  console.error(`prometheusrule: ${source}: no groups`);
  process.exit(1);
}
const manifest = {
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'PrometheusRule',
  metadata: {
    name: 'node-health-agent',
    labels: { 'app.kubernetes.io/name': 'node-health-agent' },
  },
  spec: { groups: rules.groups },
};
process.stdout.write(
  '# Generated from node-health-agent.rules.yaml by packaging/monitoring/prometheusrule.mjs; docs/metrics.md.\n' +
    '# The Prometheus Operator loads it when it matches the ruleSelector of your Prometheus (add the labels\n' +
    '# it selects on) and the namespace you apply it to:\n' +
    '#   kubectl -n monitoring apply -f /usr/share/node-health-agent/kubernetes/prometheusrule.yaml\n' +
    stringify(manifest, { lineWidth: 0 }),
);
