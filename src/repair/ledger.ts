// The repair ledger: every action the agent takes (or, in dry-run, would take) as JSON lines in the state
// directory. The intent is written and fsynced before acting and the outcome after, so an agent killed
// mid-repair finds the intent without an outcome when it comes back: it resolves it from the unit's
// state instead of repeating it blindly or forgetting it. Budgets and back-off are computed from the
// ledger, so they survive restarts too.
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';

export const LEDGER_FILE = 'repair-ledger.jsonl';
/** Actions kept when the file is compacted: more than any budget window can need, enough for status. */
const KEEP_ACTIONS = 500;

export type ActionKind = 'restart' | 'start' | 'mask' | 'stop-disable';

export type OutcomeResult =
  /** The job finished and the unit is active (or masked). */
  | 'done'
  /** The job hung and was escalated (SIGKILL to the main process, start), then finished. */
  | 'escalated'
  /** systemd refused the action or the job failed. */
  | 'failed'
  /** Dry-run: nothing was done. */
  | 'skipped'
  /** The agent stopped mid-action; after its restart the unit showed the action had taken effect. */
  | 'completed-while-down'
  /** The agent stopped mid-action; whether it took effect is unknown. Not repeated: it counts as a repair. */
  | 'interrupted';

export interface UnitSnapshot {
  activeState: string;
  subState: string;
  mainPid: number;
  inactiveExitUs: number;
}

export interface Intent {
  kind: 'intent';
  id: string;
  /** ISO 8601 */
  at: string;
  component: string;
  unit: string;
  action: ActionKind;
  dryRun: boolean;
  /** The condition reason that led to the action. */
  reason: string;
  message: string;
  before?: UnitSnapshot;
}

export interface Outcome {
  kind: 'outcome';
  id: string;
  at: string;
  result: OutcomeResult;
  detail: string;
  durationMs: number;
  after?: UnitSnapshot;
}

/** An action with its outcome, if it has one yet. */
export interface LedgerEntry extends Intent {
  outcome?: Outcome;
}

export class LedgerError extends Error {
  override name = 'LedgerError';
}

export class RepairLedger {
  private readonly entries: LedgerEntry[] = [];
  private readonly byId = new Map<string, LedgerEntry>();
  private lines = 0;
  /** Problems met while reading the file (a torn last line after a crash, a corrupt line). */
  readonly warnings: string[] = [];

  private constructor(readonly path: string) {}

  /** Reads the ledger at `<stateDir>/repair-ledger.jsonl` (creating nothing until the first action). */
  static open(stateDir: string): RepairLedger {
    const ledger = new RepairLedger(join(stateDir, LEDGER_FILE));
    ledger.load();
    return ledger;
  }

  /** Records that `action` is about to happen; returns only once it is on disk. */
  intent(fields: Omit<Intent, 'kind' | 'id' | 'at'>, now: Date = new Date()): LedgerEntry {
    const intent: Intent = { kind: 'intent', id: randomUUID(), at: now.toISOString(), ...fields };
    this.append(intent);
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
    this.append(outcome);
    entry.outcome = outcome;
    this.maybeCompact();
    return entry;
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

  private load(): void {
    if (!existsSync(this.path)) return;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new LedgerError(`${this.path}: cannot read the repair ledger (${(err as Error).message}); fix its permissions or remove it`);
    }
    const lines = text.split('\n');
    // A crash during a write leaves a last line without its newline: drop it (its action never began,
    // since acting waits for the intent's fsync).
    const torn = lines.pop();
    if (torn) {
      this.warnings.push(`${this.path}: dropped an incomplete last line (${torn.length} bytes) left by a crash`);
      this.truncateTo(Buffer.byteLength(text) - Buffer.byteLength(torn));
    }
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let record: Intent | Outcome;
      try {
        record = JSON.parse(line) as Intent | Outcome;
      } catch {
        this.warnings.push(`${this.path}:${i + 1}: not a JSON record; skipped`);
        return;
      }
      this.lines++;
      if (record.kind === 'intent') {
        const entry: LedgerEntry = { ...record };
        this.entries.push(entry);
        this.byId.set(entry.id, entry);
      } else if (record.kind === 'outcome') {
        const entry = this.byId.get(record.id);
        if (entry) entry.outcome = record;
        else this.warnings.push(`${this.path}:${i + 1}: outcome of unknown action ${record.id}; skipped`);
      } else {
        this.warnings.push(`${this.path}:${i + 1}: unknown record kind; skipped`);
      }
    });
    if (this.entries.length > KEEP_ACTIONS) this.compact();
  }

  private append(record: Intent | Outcome): void {
    const fresh = !existsSync(this.path);
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'a', 0o600);
      writeSync(fd, `${JSON.stringify(record)}\n`);
      fsyncSync(fd);
    } catch (err) {
      throw new LedgerError(`${this.path}: cannot write the repair ledger (${(err as Error).message}); no repair is made without it`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    // A new file's directory entry must be durable too, or a crash could lose the whole file.
    if (fresh) syncDir(dirname(this.path));
    this.lines++;
  }

  /** Two lines per action: compact once the file holds twice what is kept. Called after memory is updated. */
  private maybeCompact(): void {
    if (this.lines > 4 * KEEP_ACTIONS) this.compact();
  }

  /** Rewrites the file with the last KEEP_ACTIONS actions: written aside, fsynced, renamed over. */
  private compact(): void {
    this.entries.splice(0, Math.max(0, this.entries.length - KEEP_ACTIONS));
    this.byId.clear();
    for (const e of this.entries) this.byId.set(e.id, e);
    const records = this.entries.flatMap((e) => {
      const { outcome, ...intent } = e;
      return outcome ? [intent, outcome] : [intent];
    });
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    syncDir(dirname(this.path));
    this.lines = records.length;
  }

  private truncateTo(bytes: number): void {
    const fd = openSync(this.path, 'r+');
    try {
      ftruncateSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
