// The journal as a source kind (src/registry.ts): the log rules of the config, read from the journal by
// one reader per source.
import type { LoadedConfig } from '../../config/load';
import type { NativeLoader } from '../../system/native';
import type { SourceKind } from '../../types';
import { buildRuleSet } from '../rules/rule-set';
import { journalCheck } from './check';
import { JournalMonitor, journalDeclarations } from './monitor';

export function journalSource(native: NativeLoader): SourceKind<LoadedConfig> {
  return {
    name: 'journal',
    plan(loaded) {
      const { config } = loaded;
      if (!config.journal.enabled) return undefined;
      const rules = buildRuleSet(loaded);
      return {
        declarations: journalDeclarations(rules),
        diagnose: () => [journalCheck(rules, config.journal, native)],
        async open(env) {
          if (rules.sources.length === 0) return { start() {}, stop() {}, status: () => ({}) };
          const monitor = new JournalMonitor(rules, config.journal, {
            stateDir: env.stateDir,
            sink: env.sink,
            log: env.log,
            native,
            cursorHealth: env.health('journal-cursor'),
          });
          return {
            start() {
              try {
                monitor.start();
                env.health('journal').recovered();
              } catch (err) {
                // A state directory gone bad since start: the journal waits for the next reload or restart.
                env.health('journal').failed(err);
              }
            },
            stop: () => monitor.stop(),
            status: () => ({ journal: monitor.status() }),
          };
        },
      };
    },
  };
}
