// What the configured log rules make of given lines, for `rules test`: each source's lines go through
// that source's LogMonitor in order, as in the daemon (multi-line buffers, count windows), and every
// match is reported — also the repeats of a permanent match the daemon does not report again.
import { formatDuration } from '../../config/values';
import { LogMonitor, type RuleMatch, type RuleSpec, type JournalSourceSpec } from './log-monitor';
import type { RuleSet } from './rule-set';

export interface Raised {
  source: string;
  rule: string;
  kind: RuleSpec['kind'];
  reason: string;
  /** The condition type a permanent or count rule sets; null for an event. */
  condition: string | null;
  /** The event's or condition's message. */
  message: string;
}

/** A count rule's match that has not reached its threshold within the window. */
export interface Counted {
  source: string;
  rule: string;
  reason: string;
  condition: string;
  /** Matches minus revert matches within the window, this line included. */
  matches: number;
  count: number;
  window: string;
}

/** A revert pattern's match: clears a permanent rule's condition, takes one from a count rule's count. */
export interface Reverted {
  source: string;
  rule: string;
  kind: RuleSpec['kind'];
  condition: string;
  /** count rules: matches minus revert matches within the window after this line. */
  matches?: number;
}

export interface LineResult {
  raised: Raised[];
  counted: Counted[];
  reverted: Reverted[];
}

export class RuleTester {
  private readonly monitors = new Map<string, LogMonitor>();
  private current: LineResult = { raised: [], counted: [], reverted: [] };

  constructor(readonly ruleSet: RuleSet) {
    for (const source of ruleSet.sources) {
      const quiet = (): void => {};
      // No boot ID: every line counts as this boot's, so a line exported from an earlier boot still shows
      // what its rules raise.
      const monitor = new LogMonitor(source, ruleSet.conditions, { event: quiet, condition: quiet, match: (m) => this.record(source, m) }, '');
      this.monitors.set(source.name, monitor);
    }
  }

  source(name: string): JournalSourceSpec | undefined {
    return this.ruleSet.sources.find((s) => s.name === name);
  }

  /** Feeds one line to the named sources (in the order given) and returns what their rules made of it. */
  test(sources: readonly JournalSourceSpec[], message: string, realtimeUs: number): LineResult {
    this.current = { raised: [], counted: [], reverted: [] };
    for (const source of sources) this.monitors.get(source.name)?.process({ message, realtimeUs, bootId: '' });
    return this.current;
  }

  private record(source: JournalSourceSpec, m: RuleMatch): void {
    const { rule } = m;
    if (m.revert) {
      this.current.reverted.push({ source: source.name, rule: rule.name, kind: rule.kind, condition: rule.condition, ...(m.net !== undefined ? { matches: m.net } : {}) });
    } else if (rule.kind === 'count' && (m.net ?? 0) < rule.count) {
      this.current.counted.push({
        source: source.name,
        rule: rule.name,
        reason: rule.reason,
        condition: rule.condition,
        matches: m.net ?? 0,
        count: rule.count,
        window: formatDuration(rule.windowMs),
      });
    } else {
      this.current.raised.push({
        source: source.name,
        rule: rule.name,
        kind: rule.kind,
        reason: rule.reason,
        condition: rule.kind === 'temporary' ? null : rule.condition,
        message: m.message,
      });
    }
  }
}
