// The ladder's ledger: every run and every step of it as JSON lines in the state directory, beside the
// unit-repair ledger (whose intents name systemd units; a step of the ladder is not one). A step's
// intent is written and fsynced before the step acts, so an agent that stops mid-run — above all in the
// reboot it asked for — finds the run open when it starts again and finishes it instead of starting over.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { JsonLinesFile } from '../../system/jsonl-file';
import type { WriteHealth } from '../../system/degraded';
import type { StepName, StepResult, RunResult, RunFields, StepEntry, RunEntry } from '../../types';
export type { StepName, StepResult, RunResult, StepEntry, RunEntry };

export const LADDER_LEDGER_FILE = 'ladder-ledger.jsonl';
/** Runs kept when the file is compacted (once it holds twice as many): far more than status or the retry rule need. */
const KEEP_RUNS = 200;

interface BeginRecord extends RunFields {
  kind: 'begin';
  run: string;
}

interface IntentRecord {
  kind: 'intent';
  run: string;
  step: StepName;
  at: string;
  bootId: string;
}

interface OutcomeRecord {
  kind: 'outcome';
  run: string;
  step: StepName;
  at: string;
  result: StepResult;
  detail: string;
  durationMs: number;
}

interface EndRecord {
  kind: 'end';
  run: string;
  at: string;
  result: RunResult;
  detail: string;
}

type LedgerRecord = BeginRecord | IntentRecord | OutcomeRecord | EndRecord;

export class LadderLedgerError extends Error {
  override name = 'LadderLedgerError';
}

export class LadderLedger {
  private readonly runs: RunEntry[] = [];
  private readonly byId = new Map<string, RunEntry>();
  private readonly file: JsonLinesFile<LedgerRecord>;
  /** Problems met while reading the file (a torn last line after a crash, a corrupt line). */
  readonly warnings: string[];

  private constructor(
    readonly path: string,
    health: WriteHealth | undefined,
  ) {
    this.file = new JsonLinesFile(path, {
      what: 'the ladder ledger',
      withoutIt: 'no ladder step is taken without it',
      error: (message) => new LadderLedgerError(message),
      ...(health ? { health } : {}),
    });
    this.warnings = this.file.read((record) => {
      if (!['begin', 'intent', 'outcome', 'end'].includes(record.kind)) return 'unknown record kind; skipped';
      return this.apply(record) ? undefined : `record of unknown run ${record.run}; skipped`;
    });
  }

  /** Reads `<stateDir>/ladder-ledger.jsonl` (the file is created by the first run). */
  static open(stateDir: string, health?: WriteHealth): LadderLedger {
    return new LadderLedger(join(stateDir, LADDER_LEDGER_FILE), health);
  }

  /** Stops retrying records the disk refused. */
  close(): void {
    this.file.close();
  }

  begin(fields: Omit<BeginRecord, 'kind' | 'run' | 'at'>, now = new Date()): RunEntry {
    const record: BeginRecord = { kind: 'begin', run: randomUUID(), at: now.toISOString(), ...fields };
    this.file.append(record);
    return this.apply(record) as RunEntry;
  }

  /** Records that `step` is about to act; returns only once that is on disk. */
  intent(run: string, step: StepName, bootId: string, now = new Date()): StepEntry {
    this.find(run);
    const record: IntentRecord = { kind: 'intent', run, step, at: now.toISOString(), bootId };
    this.file.append(record);
    this.apply(record);
    return this.step(run, step) as StepEntry;
  }

  outcome(run: string, step: StepName, fields: Omit<OutcomeRecord, 'kind' | 'run' | 'step' | 'at'>, now = new Date()): void {
    if (!this.step(run, step)) throw new LadderLedgerError(`${this.path}: run ${run} has no ${step} step to record an outcome for`);
    const record: OutcomeRecord = { kind: 'outcome', run, step, at: now.toISOString(), ...fields };
    // Outcomes and ends report what happened: kept and retried when the disk refuses them (with `health`).
    this.file.record(record);
    this.apply(record);
  }

  end(run: string, result: RunResult, detail: string, now = new Date()): void {
    this.find(run);
    const record: EndRecord = { kind: 'end', run, at: now.toISOString(), result, detail };
    this.file.record(record);
    this.apply(record);
    if (this.runs.length > 2 * KEEP_RUNS) this.compact();
  }

  /** The run a previous start of the agent did not finish, if any (there is at most one at a time). */
  unfinished(): RunEntry | undefined {
    const open = this.runs.filter((r) => !r.end);
    return open.length > 0 ? clone(open[open.length - 1] as RunEntry) : undefined;
  }

  /** The latest run for `condition`, finished or not. */
  lastRun(condition: string): RunEntry | undefined {
    for (let i = this.runs.length - 1; i >= 0; i--) if ((this.runs[i] as RunEntry).condition === condition) return clone(this.runs[i] as RunEntry);
    return undefined;
  }

  /** The last `n` runs, newest first. */
  recent(n: number): RunEntry[] {
    return this.runs.slice(-n).reverse().map(clone);
  }

  /** The latest record of `step` in `run`. */
  step(run: string, step: StepName): StepEntry | undefined {
    const steps = this.byId.get(run)?.done ?? [];
    for (let i = steps.length - 1; i >= 0; i--) if ((steps[i] as StepEntry).step === step) return { ...(steps[i] as StepEntry) };
    return undefined;
  }

  private find(run: string): RunEntry {
    const entry = this.byId.get(run);
    if (!entry) throw new LadderLedgerError(`${this.path}: no run ${run}`);
    return entry;
  }

  /** Applies a record to memory; returns the run it belongs to (undefined: an unknown run, skipped). */
  private apply(record: LedgerRecord): RunEntry | undefined {
    if (record.kind === 'begin') {
      const { kind: _kind, run, ...rest } = record;
      const entry: RunEntry = { id: run, ...rest, done: [] };
      this.runs.push(entry);
      this.byId.set(run, entry);
      return entry;
    }
    const entry = this.byId.get(record.run);
    if (!entry) return undefined;
    if (record.kind === 'intent') entry.done.push({ step: record.step, at: record.at, bootId: record.bootId });
    else if (record.kind === 'outcome') {
      const open = [...entry.done].reverse().find((s) => s.step === record.step);
      if (open) open.outcome = { at: record.at, result: record.result, detail: record.detail, durationMs: record.durationMs };
    } else entry.end = { at: record.at, result: record.result, detail: record.detail };
    return entry;
  }

  /** Rewrites the file with the last KEEP_RUNS runs. */
  private compact(): void {
    const drop = this.runs.splice(0, this.runs.length - KEEP_RUNS);
    for (const r of drop) this.byId.delete(r.id);
    this.file.rewrite(
      this.runs.flatMap(({ id, done, end, ...fields }): LedgerRecord[] => [
        { kind: 'begin', run: id, ...fields },
        ...done.flatMap((s): LedgerRecord[] => [
          { kind: 'intent', run: id, step: s.step, at: s.at, bootId: s.bootId },
          ...(s.outcome ? [{ kind: 'outcome' as const, run: id, step: s.step, ...s.outcome }] : []),
        ]),
        ...(end ? [{ kind: 'end' as const, run: id, ...end }] : []),
      ]),
    );
  }
}

function clone(r: RunEntry): RunEntry {
  return { ...r, steps: [...r.steps], done: r.done.map((s) => ({ ...s, ...(s.outcome ? { outcome: { ...s.outcome } } : {}) })) };
}
