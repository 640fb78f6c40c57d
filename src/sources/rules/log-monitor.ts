// Applies one source's log rules to its journal lines, with node-problem-detector's semantics and the
// fixes NPD lacks:
//   temporary rule → one event per matching line (flood-aggregated downstream);
//   permanent rule → its condition True with the rule's reason and the matched text, cleared by a
//                    revert pattern, a quiet period, or a reboot (per condition);
//   count rule     → condition True while matches − revert matches within the window reach the count.
import { formatDuration } from '../../config/values';
import type { ConditionReport, EventReport } from '../../types';
import { literalGate, type LiteralScan } from './literal-gate';
import type { CompiledPattern } from './pattern';

export interface LogLine {
  message: string;
  realtimeUs: number;
  /** The boot the line was logged in (journal _BOOT_ID). */
  bootId: string;
}

export interface RuleSpec {
  name: string;
  kind: 'temporary' | 'permanent' | 'count';
  /** The condition type a permanent or count rule sets. */
  condition: string;
  reason: string;
  pattern: CompiledPattern;
  revert?: CompiledPattern;
  count: number;
  windowMs: number;
  /** Temporary rules: an identical match within this long of the previous one is not a new event. */
  repeatWindowMs?: number;
}

export interface LogConditionSpec {
  type: string;
  reason: string;
  message: string;
  clearOnReboot: boolean;
  clearAfterMs?: number;
}

export interface SourceSpec {
  name: string;
  bufferSize: number;
  rules: RuleSpec[];
}

/** A journal source: its rules and where in the journal it reads. */
export interface JournalSourceSpec extends SourceSpec {
  /** journald matches FIELD=value (same field: either; different fields: both). */
  matches: string[];
  lookbackMs: number;
  delayMs: number;
}

export interface LogMonitorOutput {
  event(e: EventReport): void;
  condition(r: ConditionReport): void;
  /**
   * Every match of a rule's pattern or revert pattern, reported downstream or not (a repeated permanent
   * match is not): what `rules test` shows. The daemon leaves it unset.
   */
  match?(m: RuleMatch): void;
}

export interface RuleMatch {
  rule: RuleSpec;
  /** The revert pattern matched: it clears a permanent rule's condition or takes one from a count rule. */
  revert: boolean;
  /** The message the event or condition carries: the matched text; for a count rule at its threshold, the count summary. */
  message: string;
  /** count rules: matches minus revert matches within the window, this line included. */
  net?: number;
}

interface RuleState {
  spec: RuleSpec;
  id: string;
  active: boolean;
  /** The message last reported with the condition. */
  reported: string;
  /** count rules: the latest matching text. */
  latestMatch: string;
  lastMatchUs: number;
  /** count rules: times of matches (+1) and revert matches (−1) within the window, oldest first. */
  hits: Array<{ us: number; delta: 1 | -1 }>;
  /** temporary rules with a repeat window: recent matched texts and when, oldest first (at most MAX_RECENT). */
  recent?: Map<string, number>;
}

/**
 * How many distinct recent matches a repeat window remembers: a memory.oom.group kill prints each member of
 * the group, then the victim again somewhere among them, so the repeat need not follow its first print.
 */
const MAX_RECENT = 64;

interface Probe {
  state: RuleState;
  pattern: CompiledPattern;
  revert: boolean;
  /** Its literal's index among the source's distinct single-line literals (what the scan lists). */
  literal: number;
}

const ascending = (a: number, b: number): number => a - b;

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * V8 runs an alternation of a few literals faster than the table (it skips ahead), but its cost grows
 * with their number; past this many the table wins (measured: docs/rules.md "Matching cost").
 */
const REGEXP_GATE_MAX = 32;

export class LogMonitor {
  /**
   * The rules time acts on: count rules (their window slides) and permanent rules whose condition clears
   * after a quiet period. Ticking only these keeps the 1 s tick of a large library as cheap as a small one's.
   */
  private readonly timed: RuleState[];
  private readonly singleLine: Probe[] = [];
  private readonly multiLine: Probe[] = [];
  /**
   * One pass over a line finds which single-line rules it may match: which of their required literals
   * does it contain? With many literals a table scan lists the ones found, and only the rules with those
   * literals (`byLiteral`) are checked, so a line's cost does not grow with the library; with few, a V8
   * alternation says whether any is. Neither when a rule has no literal (every line is a candidate for
   * every rule).
   */
  private readonly scan: LiteralScan | undefined;
  private readonly anyLiteral: RegExp | undefined;
  /** The indices in `singleLine` of the rules with each literal, ascending. */
  private readonly byLiteral: number[][];
  private readonly seen: Uint32Array;
  private mark = 0;
  private readonly found: number[] = [];
  private readonly candidates: number[] = [];
  private readonly recent: string[] = [];

  constructor(
    readonly source: SourceSpec,
    private readonly conditions: ReadonlyMap<string, LogConditionSpec>,
    private readonly out: LogMonitorOutput,
    private readonly currentBootId: string,
  ) {
    const states: RuleState[] = source.rules.map((spec) => ({
      spec,
      id: `journal/${source.name}/${spec.name}`,
      active: false,
      reported: '',
      latestMatch: '',
      lastMatchUs: 0,
      hits: [],
    }));
    const literals: string[] = [];
    for (const state of states) {
      for (const [pattern, revert] of [[state.spec.pattern, false], [state.spec.revert, true]] as const) {
        if (!pattern) continue;
        let literal = -1;
        if (pattern.singleLine) {
          literal = literals.indexOf(pattern.literal);
          if (literal < 0) literal = literals.push(pattern.literal) - 1;
        }
        (pattern.singleLine ? this.singleLine : this.multiLine).push({ state, pattern, revert, literal });
      }
    }
    this.timed = states.filter(
      (s) => s.spec.kind === 'count' || (s.spec.kind === 'permanent' && conditions.get(s.spec.condition)?.clearAfterMs !== undefined),
    );
    const gated = literals.length > 0 && literals.every((l) => l !== '');
    this.scan = gated && literals.length > REGEXP_GATE_MAX ? literalGate(literals) : undefined;
    this.anyLiteral = gated && !this.scan ? new RegExp(literals.map(escape).join('|')) : undefined;
    this.seen = new Uint32Array(this.scan ? literals.length : 0);
    this.byLiteral = this.scan ? literals.map(() => []) : [];
    if (this.scan) this.singleLine.forEach((probe, i) => this.byLiteral[probe.literal]?.push(i));
  }

  process(line: LogLine): void {
    // NPD trims each message (strings.TrimSpace in its journald and kmsg watchers) before matching, so a
    // trailing blank cannot defeat a pattern's end anchor; the same here.
    const text = line.message.trim();
    if (this.multiLine.length > 0) {
      this.recent.push(text);
      if (this.recent.length > this.source.bufferSize) this.recent.shift();
    }
    if (this.singleLine.length > 0) this.processSingleLine(text, line);
    if (this.multiLine.length > 0) {
      const joined = this.recent.join('\n');
      for (const probe of this.multiLine) {
        if (probe.pattern.literal !== '' && !joined.includes(probe.pattern.literal)) continue;
        const matched = probe.pattern.matchEnd(joined);
        if (matched !== null) this.hit(probe, matched, line);
      }
    }
  }

  private processSingleLine(text: string, line: LogLine): void {
    if (this.scan) {
      this.scanLine(text, line);
      return;
    }
    if (this.anyLiteral && !this.anyLiteral.test(text)) return;
    for (const probe of this.singleLine) this.tryProbe(probe, text, line);
  }

  private scanLine(text: string, line: LogLine): void {
    if (this.mark === 0xffffffff) {
      this.seen.fill(0);
      this.mark = 0;
    }
    const found = this.found;
    found.length = 0;
    this.scan?.(text, this.seen, ++this.mark, found);
    if (found.length === 0) return;
    // The rules of the literals found, in the library's order (the order a line's matches are reported in).
    const candidates = this.candidates;
    candidates.length = 0;
    for (const l of found) for (const i of this.byLiteral[l] ?? []) candidates.push(i);
    if (found.length > 1) candidates.sort(ascending);
    for (const i of candidates) this.tryProbe(this.singleLine[i] as Probe, text, line);
  }

  private tryProbe(probe: Probe, text: string, line: LogLine): void {
    // The scan found the literal's first characters (or no scan ran); the rule needs all of it.
    if (probe.pattern.literal !== '' && !text.includes(probe.pattern.literal)) return;
    const matched = probe.pattern.matchEnd(text);
    if (matched !== null) this.hit(probe, matched, line);
  }

  /** Applies the passage of time: quiet periods end, count windows slide. */
  tick(nowUs: number): void {
    for (const s of this.timed) {
      if (s.spec.kind === 'permanent' && s.active) {
        const quiet = this.conditions.get(s.spec.condition)?.clearAfterMs;
        if (quiet !== undefined && nowUs - s.lastMatchUs >= quiet * 1000) this.setCondition(s, false, '');
      } else if (s.spec.kind === 'count') {
        this.judgeCount(s, nowUs);
      }
    }
  }

  /** The same occurrence logged again within the rule's repeat window (the kernel prints a memory.oom.group victim twice). */
  private repeated(s: RuleState, matched: string, us: number): boolean {
    const windowUs = (s.spec.repeatWindowMs ?? 0) * 1000;
    if (windowUs <= 0) return false;
    const recent = (s.recent ??= new Map());
    for (const [text, at] of recent) {
      if (us - at < windowUs && recent.size < MAX_RECENT) break;
      recent.delete(text);
    }
    const seen = recent.get(matched);
    if (seen !== undefined && us - seen < windowUs) return true;
    recent.delete(matched);
    recent.set(matched, us);
    return false;
  }

  private hit(probe: Probe, matched: string, line: LogLine): void {
    const s = probe.state;
    switch (s.spec.kind) {
      case 'temporary': {
        if (probe.revert) return;
        if (this.repeated(s, matched, line.realtimeUs)) return;
        this.out.event({ source: s.id, severity: 'Warning', reason: s.spec.reason, message: matched });
        this.out.match?.({ rule: s.spec, revert: false, message: matched });
        return;
      }
      case 'permanent': {
        if (probe.revert) {
          this.setCondition(s, false, '');
          this.out.match?.({ rule: s.spec, revert: true, message: matched });
          return;
        }
        // A line from an earlier boot must not set a condition that a reboot clears.
        const cond = this.conditions.get(s.spec.condition);
        if (cond?.clearOnReboot && line.bootId !== '' && line.bootId !== this.currentBootId) return;
        s.lastMatchUs = line.realtimeUs;
        this.setCondition(s, true, matched);
        this.out.match?.({ rule: s.spec, revert: false, message: matched });
        return;
      }
      case 'count': {
        s.hits.push({ us: line.realtimeUs, delta: probe.revert ? -1 : 1 });
        if (!probe.revert) s.latestMatch = matched;
        const { net, message } = this.judgeCount(s, line.realtimeUs);
        this.out.match?.({ rule: s.spec, revert: probe.revert, message: probe.revert ? matched : message || matched, net });
        return;
      }
    }
  }

  private judgeCount(s: RuleState, nowUs: number): { net: number; message: string } {
    const from = nowUs - s.spec.windowMs * 1000;
    while (s.hits.length > 0 && (s.hits[0] as { us: number }).us < from) s.hits.shift();
    const net = s.hits.reduce((n, h) => n + h.delta, 0);
    const active = net >= s.spec.count;
    const message = active ? `${net} times within ${formatDuration(s.spec.windowMs)} (threshold ${s.spec.count}); latest: ${s.latestMatch}` : '';
    this.setCondition(s, active, message);
    return { net, message };
  }

  private setCondition(s: RuleState, active: boolean, message: string): void {
    if (active === s.active && (!active || message === s.reported)) return;
    s.active = active;
    s.reported = message;
    this.out.condition({
      source: s.id,
      type: s.spec.condition,
      status: active ? 'True' : 'False',
      reason: s.spec.reason,
      message,
    });
  }
}
