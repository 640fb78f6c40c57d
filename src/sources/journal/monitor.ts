// Runs the log rules on the journal: one reader per source (each with its own matches and saved
// position), each line through that source's LogMonitor, conditions to the engine, events through the
// flood aggregator.
import { join } from 'node:path';
import type { Config } from '../../config/schema';
import type { ConditionDeclaration, Logger, ProblemSink } from '../../types';
import { EventAggregator } from '../rules/event-aggregator';
import { LogMonitor, type JournalSourceSpec } from '../rules/log-monitor';
import type { RuleSet } from '../rules/rule-set';
import { currentBoot, bootTimeMs, type BootIdentity } from '../../system/boot';
import { background } from '../../system/background';
import type { WriteHealth } from '../../system/degraded';
import { makeDirs } from '../../system/files';
import type { NativeLoader } from '../../system/native';
import { CursorStore } from './cursor';
import { JournalReader } from './reader';
import { startPoint } from './start-point';
import type { JournalSourceStatus } from '../../types';
export type { JournalSourceStatus };

/** journald matches FIELD=value: the same field twice means either, different fields both. As a
 * disjunction of conjunctions that is the product of each field's alternatives. */
export function matchGroups(matches: readonly string[]): Array<Record<string, string>> {
  const byField = new Map<string, string[]>();
  for (const m of matches) {
    const eq = m.indexOf('=');
    const field = m.slice(0, eq);
    byField.set(field, [...(byField.get(field) ?? []), m.slice(eq + 1)]);
  }
  let groups: Array<Record<string, string>> = [{}];
  for (const [field, values] of byField) {
    groups = groups.flatMap((g) => values.map((v) => ({ ...g, [field]: v })));
  }
  return groups;
}

/** Whether an entry's fields satisfy matchGroups(), as sd-journal judges it: a field given more than once
 * in the entry matches when any of its values does. */
export function entryMatches(groups: ReadonlyArray<Record<string, string>>, fields: ReadonlyMap<string, readonly string[]>): boolean {
  return groups.some((group) => Object.entries(group).every(([field, value]) => fields.get(field)?.includes(value) === true));
}

export function journalDeclarations(ruleSet: RuleSet): ConditionDeclaration[] {
  return [...ruleSet.conditions.values()].map((c) => ({
    type: c.type,
    owner: 'journal',
    reason: c.reason,
    message: c.message,
    clearOnReboot: c.clearOnReboot,
  }));
}

interface Running {
  source: JournalSourceSpec;
  reader: JournalReader;
  cursor: CursorStore;
  monitor: LogMonitor;
}

export interface JournalMonitorDeps {
  stateDir: string;
  sink: ProblemSink;
  log: Logger;
  /** The native addon (sd-journal). */
  native: NativeLoader;
  /** Where failed cursor saves are reported (the agent's degraded state). */
  cursorHealth?: WriteHealth;
  /** Read these instead of the system journal (tests). */
  directory?: string;
}

export class JournalMonitor {
  private readonly running: Running[] = [];
  private readonly aggregator: EventAggregator;
  private ticker: NodeJS.Timeout | undefined;
  private readonly boot: BootIdentity;

  constructor(
    private readonly ruleSet: RuleSet,
    private readonly cfg: Config['journal'],
    private readonly deps: JournalMonitorDeps,
  ) {
    this.boot = currentBoot(deps.native);
    this.aggregator = new EventAggregator(cfg.event_window, (e) => deps.sink.event(e));
  }

  start(): void {
    const dir = join(this.deps.stateDir, 'journal');
    makeDirs(dir, 0o700);
    if (this.boot.source === 'journal') {
      this.deps.log.info(`journal: this boot is ${this.boot.id} as the journal records it; /proc shows this process ${this.boot.procId} (a container's own boot ID hidden by the unit's sandboxing)`);
    }
    for (const source of this.ruleSet.sources) {
      const cursor = new CursorStore(join(dir, `${source.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.cursor`), {
        everyEntries: this.cfg.cursor_every_entries,
        everyMs: this.cfg.cursor_every,
        ...(this.deps.cursorHealth ? { health: this.deps.cursorHealth } : {}),
        ...(this.deps.sink.settle ? { before: () => this.deps.sink.settle?.() ?? true } : {}),
      });
      const saved = cursor.load();
      const monitor = new LogMonitor(source, this.ruleSet.conditions, {
        event: (e) => this.aggregator.report(e),
        condition: (c) => this.deps.sink.condition(c),
      }, this.boot.id);
      const reader = new JournalReader(
        {
          native: this.deps.native(),
          ...(this.deps.directory !== undefined ? { directory: this.deps.directory } : {}),
          matches: matchGroups(source.matches),
          // A saved cursor that no longer parses falls back to the start point, not the tail.
          ...(saved !== undefined ? { cursor: saved } : {}),
          sinceUs: startPoint({ lookbackMs: source.lookbackMs, delayMs: source.delayMs, now: Date.now(), bootTimeMs: bootTimeMs() }),
          maxMessageBytes: this.cfg.max_message_bytes,
          batchSize: 1000,
          onWarning: (m) => this.deps.log.warning(`journal source ${source.name}: ${m}`),
        },
        (entries, position) => {
          for (const e of entries) monitor.process(e);
          // On the next loop turn: a save (two fsyncs) must not hold back the condition write a match
          // just queued. A cursor saved a turn later is still only ever behind what was handed on.
          setImmediate(() => void background(`saving the journal cursor of ${source.name}`, () => cursor.offer(position, entries.length)));
        },
      );
      this.running.push({ source, reader, cursor, monitor });
      reader.start();
      this.deps.log.info(`journal source ${source.name}: ${source.rules.length} rules, ${saved ? 'resuming after the saved position' : 'first start, reading back the lookback window'}`);
    }
    this.ticker = setInterval(() => this.tick(), 1000);
    this.ticker.unref();
  }

  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    for (const r of this.running) {
      r.reader.stop();
      r.cursor.flush();
    }
    this.running.length = 0;
    this.aggregator.flush();
  }

  status(): JournalSourceStatus[] {
    return this.running.map((r) => ({ source: r.source.name, rules: r.source.rules.length, ...r.reader.state() }));
  }

  private tick(): void {
    const nowUs = Date.now() * 1000;
    for (const r of this.running) r.monitor.tick(nowUs);
    this.aggregator.tick();
  }
}
