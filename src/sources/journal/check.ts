// `diagnose` for the journal: reads each source's lookback window once and reports what the rules
// found there — conditions they would set and how often each event reason occurred.
import type { Config } from '../../config/schema';
import { LogMonitor } from '../rules/log-monitor';
import type { RuleSet } from '../rules/rule-set';
import { currentBootId, bootTimeMs } from '../../system/boot';
import type { NativeLoader } from '../../system/native';
import type { ConditionReport, Finding, Check } from '../../types';
import { matchGroups } from './monitor';
import { JournalReader } from './reader';
import { startPoint } from './start-point';

export function journalCheck(ruleSet: RuleSet, cfg: Config['journal'], native: NativeLoader, directory?: string): Check {
  return {
    component: 'journal',
    name: 'rules',
    async run() {
      const bootId = currentBootId(native);
      const findings: Finding[] = [];
      for (const source of ruleSet.sources) {
        const events = new Map<string, { count: number; latest: string }>();
        const conditions = new Map<string, ConditionReport>();
        const monitor = new LogMonitor(source, ruleSet.conditions, {
          event: (e) => {
            const seen = events.get(e.reason);
            events.set(e.reason, { count: (seen?.count ?? 0) + 1, latest: e.message });
          },
          condition: (c) => conditions.set(c.type, c),
        }, bootId);
        const reader = new JournalReader(
          {
            native: native(),
            ...(directory !== undefined ? { directory } : {}),
            matches: matchGroups(source.matches),
            sinceUs: startPoint({ lookbackMs: source.lookbackMs, delayMs: source.delayMs, now: Date.now(), bootTimeMs: bootTimeMs() }),
            maxMessageBytes: cfg.max_message_bytes,
            batchSize: 1000,
          },
          (entries) => {
            for (const e of entries) monitor.process(e);
          },
        );
        let read: number;
        try {
          read = reader.drain();
        } finally {
          reader.stop();
        }
        const window = `last ${Math.round(source.lookbackMs / 60_000)}m`;
        for (const c of conditions.values()) {
          if (c.status !== 'True') continue;
          findings.push({ subject: source.name, status: 'problem', reason: c.reason, message: `${c.type} would be set: ${c.message}` });
        }
        for (const [reason, e] of events) {
          findings.push({ subject: source.name, status: 'warning', reason, message: `${e.count} in the ${window}; latest: ${e.latest}` });
        }
        if (conditions.size === 0 && events.size === 0) {
          findings.push({ subject: source.name, status: 'ok', reason: 'NoRuleMatched', message: `${read} entries in the ${window}, no rule matched` });
        }
      }
      return findings;
    },
  };
}
