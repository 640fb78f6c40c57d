// The ladder wired as the daemon would wire it, as a program of its own for the reboot test in a box:
// the shipped journal rules feed the condition table, conditions and events go to the Node with the
// kubelet's credentials, the Lease gate (coordination identity) hands out the slot, and the ladder
// reboots through logind. Run as an enabled unit, it starts again after the reboot and finishes the run.
// Records (started, condition, event, stopping) are appended as JSON lines to the output file.
// Usage: node harness.js <config dir> <remediate JSON file> <output file>
//   the JSON file: {"KernelDeadlock": {"after_ms": "3000", "steps": "cordon, drain, reboot"}}, in place of
//   [remediate "KernelDeadlock"] sections, which ini files can hold only once the schema lists the family.
import { appendFileSync, readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/load';
import { ladderFamilies } from '../../src/config/sections/ladder';
import { ConditionTable } from '../../src/engine/conditions';
import { buildRuleSet } from '../../src/engine/rules/rule-set';
import { KubeClient } from '../../src/outputs/kubernetes/client';
import { findKubeconfig, loadKubeconfig } from '../../src/outputs/kubernetes/kubeconfig';
import { NodeReporter, userAgent } from '../../src/outputs/kubernetes/reporter';
import { createLogger } from '../../src/outputs/log';
import { Coordinator } from '../../src/repair/fleet/coordinator';
import { Ladder } from '../../src/repair/ladder/ladder';
import { LadderLedger } from '../../src/repair/ladder/ledger';
import { Login1 } from '../../src/repair/ladder/login1';
import { NodeApi } from '../../src/repair/ladder/node-api';
import { ladderSettings, type RemediateSection } from '../../src/repair/ladder/settings';
import { journalDeclarations, JournalMonitor } from '../../src/sources/journal/monitor';
import { currentBootId } from '../../src/system/boot';
import { loadNative } from '../../src/system/native';

async function main(): Promise<void> {
  const [configDir, remediateFile, out] = process.argv.slice(2) as [string, string, string];
  const write = (record: object) => appendFileSync(out, `${JSON.stringify({ t: Date.now(), ...record })}\n`);
  const loaded = loadConfig(configDir, { required: true });
  const { config } = loaded;
  const log = createLogger(config.agent.log_level, () => loadNative());
  const bootId = currentBootId();

  const specs = ladderFamilies.remediate;
  const remediate = new Map<string, RemediateSection>(
    Object.entries(JSON.parse(readFileSync(remediateFile, 'utf8')) as Record<string, Record<string, string>>).map(([type, v]) => [
      type,
      {
        enabled: specs.enabled.type.parse(v.enabled ?? (specs.enabled.default as string)),
        // Parsed as a duration without the family's one-minute floor, so the test does not wait minutes.
        after: Number(v.after_ms ?? specs.after.type.parse(specs.after.default as string)),
        steps: specs.steps.type.parse(v.steps ?? (specs.steps.default as string)),
      },
    ]),
  );

  const rules = buildRuleSet(loaded);
  const table = new ConditionTable();
  for (const d of journalDeclarations(rules)) table.declare(d);

  const reporter = await NodeReporter.create(config.kubernetes, log);
  await reporter.whenAdopted();
  const nodeName = reporter.status().nodeName;
  const client = new KubeClient(loadKubeconfig(findKubeconfig(config.kubernetes.kubeconfig_paths)), {
    userAgent: userAgent(config.kubernetes.field_manager),
    timeoutMs: config.kubernetes.request_timeout,
  });
  const gate = new Coordinator(config, nodeName, { log });
  const unavailable = await gate.check();
  if (unavailable) throw new Error(`coordination: ${unavailable}`);

  const ladder = new Ladder({
    settings: ladderSettings(config, remediate),
    gate,
    node: new NodeApi(client, nodeName, config.kubernetes.field_manager),
    rebooter: new Login1(),
    ledger: LadderLedger.open(config.agent.state_dir),
    events: {
      event: (e) => {
        write({ kind: 'event', ...e });
        reporter.event(e);
      },
      flush: async (ms) => {
        const until = Date.now() + ms;
        while (Date.now() < until && reporter.status().events.queued > 0) await new Promise((r) => setTimeout(r, 50));
      },
    },
    condition: (type) => table.get(type),
    log,
    bootId,
    pollMs: 1000,
    recheckMs: 5000,
  });

  table.onChange((c) => {
    write({ kind: 'condition', ...c });
    reporter.setConditions(table.conditions());
    ladder.conditionChanged(c);
  });
  reporter.setConditions(table.conditions());
  const journal = new JournalMonitor(rules, config.journal, config.agent.state_dir, { condition: (r) => table.report(r), event: (e) => reporter.event(e) }, log);
  journal.start();
  ladder.start();
  write({ kind: 'started', pid: process.pid, bootId, node: nodeName });

  process.on('SIGTERM', () => {
    write({ kind: 'stopping', ladder: ladder.status() });
    journal.stop();
    void ladder.stop().then(async () => {
      gate.stop();
      client.close();
      await reporter.stop();
      log.close();
      process.exit(0);
    });
  });
  // Keep running until SIGTERM (the agent's own timers are unref'ed, as in the daemon).
  setInterval(() => undefined, 1 << 30);
}

main().catch((err: unknown) => {
  process.stderr.write(`harness: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(2);
});
