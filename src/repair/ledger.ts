// The repair ledger: every action the agent takes (or, in dry-run, would take) as JSON lines in the state
// directory. The intent is written and fsynced before acting and the outcome after, so an agent killed
// mid-repair finds the intent without an outcome when it comes back: it resolves it from the unit's
// state instead of repeating it blindly or forgetting it. Budgets and back-off are computed from the
// ledger, so they survive restarts too.
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { WriteHealth } from '../system/degraded';
import { JsonLinesFile } from '../system/jsonl-file';
import type { ActionKind, OutcomeResult, UnitSnapshot, Intent, Outcome, LedgerEntry } from '../types';
export type { ActionKind, OutcomeResult, UnitSnapshot, Intent, Outcome, LedgerEntry };

export const LEDGER_FILE = 'repair-ledger.jsonl';
/** Actions kept when the file is compacted: more than any budget window can need, enough for status. */
const KEEP_ACTIONS = 500;

export class LedgerError extends Error {
  override name = 'LedgerError';
}

export class RepairLedger {
  private readonly entries: LedgerEntry[] = [];
  private readonly byId = new Map<string, LedgerEntry>();
  private readonly file: JsonLinesFile<Intent | Outcome>;
  /** Problems met while reading the file (a torn last line after a crash, a corrupt line). */
  readonly warnings: string[];

  private constructor(
    readonly path: string,
    health: WriteHealth | undefined,
  ) {
    this.file = new JsonLinesFile(path, {
      what: 'the repair ledger',
      withoutIt: 'no repair is made without it',
      error: (message) => new LedgerError(message),
      ...(health ? { health } : {}),
    });
    this.warnings = this.file.read((record) => this.load(record));
    if (this.entries.length > KEEP_ACTIONS) this.compact();
  }

  /**
   * Reads the ledger at `<stateDir>/repair-ledger.jsonl` (creating nothing until the first action).
   * With `health`, an outcome the disk refuses is kept and retried instead of thrown.
   */
  static open(stateDir: string, health?: WriteHealth): RepairLedger {
    return new RepairLedger(join(stateDir, LEDGER_FILE), health);
  }

  /** Records that `action` is about to happen; returns only once it is on disk. */
  intent(fields: Omit<Intent, 'kind' | 'id' | 'at'>, now: Date = new Date()): LedgerEntry {
    const intent: Intent = { kind: 'intent', id: randomUUID(), at: now.toISOString(), ...fields };
    this.file.append(intent);
    const entry: LedgerEntry = { ...intent };
    this.entries.push(entry);
    this.byId.set(entry.id, entry);
    this.maybeCompact();
    return entry;
  }

  outcome(id: string, fields: Omit<Outcome, 'kind' | 'id' | 'at'>, now: Date = new Date()): LedgerEntry {
    const entry = this.byId.get(id);
    if (!entry) throw new LedgerError(`${this.path}: no intent ${id} to record an outcome for`);
    const outcome: Outcome = { kind: 'outcome', id, at: now.toISOString(), ...fields };
    // What happened is known in memory either way: it reaches the disk now or when the disk takes it.
    this.file.record(outcome);
    entry.outcome = outcome;
    this.maybeCompact();
    return entry;
  }

  /** Stops retrying outcomes the disk refused. */
  close(): void {
    this.file.close();
  }

  /** Intents without an outcome: actions a previous run of the agent did not see to the end. */
  dangling(): LedgerEntry[] {
    return this.entries.filter((e) => !e.outcome);
  }

  /** Times (ms since the epoch) of the component's actions since `sinceMs`, dry-run ones or real ones. */
  actionTimes(component: string, dryRun: boolean, sinceMs: number): number[] {
    return this.entries
      .filter((e) => e.component === component && e.dryRun === dryRun)
      .map((e) => Date.parse(e.at))
      .filter((t) => t > sinceMs);
  }

  /** The last `n` actions, newest first. */
  recent(n: number): LedgerEntry[] {
    return this.entries.slice(-n).reverse().map((e) => ({ ...e }));
  }

  /** Takes in a record read from the file; returns why it was skipped, if it was. */
  private load(record: Intent | Outcome): string | undefined {
    if (record.kind === 'intent') {
      const entry: LedgerEntry = { ...record };
      this.entries.push(entry);
      this.byId.set(entry.id, entry);
    } else if (record.kind === 'outcome') {
      const entry = this.byId.get(record.id);
      if (!entry) return `outcome of unknown action ${record.id}; skipped`;
      entry.outcome = record;
    } else {
      return 'unknown record kind; skipped';
    }
    return undefined;
  }

  /** Two lines per action: compact once the file holds twice what is kept. Called after memory is updated. */
  private maybeCompact(): void {
    if (this.file.lines > 4 * KEEP_ACTIONS) this.compact();
  }

  /** Rewrites the file with the last KEEP_ACTIONS actions. */
  private compact(): void {
    this.entries.splice(0, Math.max(0, this.entries.length - KEEP_ACTIONS));
    this.byId.clear();
    for (const e of this.entries) this.byId.set(e.id, e);
    this.file.rewrite(
      this.entries.flatMap((e) => {
        const { outcome, ...intent } = e;
        return outcome ? [intent, outcome] : [intent];
      }),
    );
  }
}
