// Journal monitoring: journal sources, the conditions log rules own, and the rules themselves
// (node-problem-detector's system-log-monitor semantics). Defaults ship in etc/.
import { key, required } from '../key';
import {
  absolutePath,
  boolean,
  bytes,
  duration,
  integer,
  journalMatch,
  listOf,
  NO_TIMER_MAX,
  oneOf,
  optional,
  text,
} from '../values';

export const journalSections = {
  journal: {
    enabled: key(boolean, 'true', 'Read the journal and apply the log rules.'),
    npd_configs: key(
      listOf(absolutePath),
      '',
      "node-problem-detector system-log-monitor JSON configs (plugin journald or kmsg) to load unmodified.",
    ),
    max_message_bytes: key(bytes({ min: 256 }), '16Ki', 'Longer MESSAGE fields are cut to this size before matching.'),
    cursor_every_entries: key(integer({ min: 1 }), '1000', 'Save the read position at most every this many entries or every cursor_every, whichever comes first.'),
    cursor_every: key(duration({ min: 100 }), '5s', 'See cursor_every_entries.'),
    event_window: key(duration({ min: 1000 }), '1m', 'Repeats of one event reason within this window are sent as one event with a count.'),
  },
} as const;

export const journalFamilies = {
  source: {
    enabled: key(boolean, 'true', 'Read this source.'),
    matches: required(listOf(journalMatch), 'journal matches FIELD=value; the same field twice means either, different fields both'),
    buffer_size: key(integer({ min: 1, max: 1000 }), '10', 'Lines kept for multi-line patterns (NPD bufferSize).'),
    lookback: key(duration({ max: NO_TIMER_MAX }), '5m', 'On first start, read back this far (never before boot time + delay).'),
    delay: key(duration({ max: NO_TIMER_MAX }), '0s', 'On first start, skip entries from the first part of the boot.'),
  },
  condition: {
    enabled: key(boolean, 'true', 'Report this condition.'),
    reason: required(text, 'reason while the condition is False, e.g. KernelHasNoDeadlock'),
    message: required(text, 'message while the condition is False'),
    clear_on_reboot: key(boolean, 'true', 'A new boot clears the condition.'),
    clear_after: key(optional(duration({ min: 1000 })), '', 'Clear after this long without a matching line (empty: never).'),
  },
  rule: {
    enabled: key(boolean, 'true', 'Apply this rule.'),
    source: required(text, 'the [source "name"] whose lines the rule reads'),
    kind: key(oneOf(['temporary', 'permanent', 'count']), 'temporary', 'temporary: an event per match; permanent: sets a condition; count: sets a condition at count matches within window'),
    condition: key(text, '', 'the [condition "type"] a permanent or count rule sets'),
    reason: required(text, 'reason of the event or condition, e.g. OOMKilling'),
    pattern: required(text, 'RE2 regular expression matched at the end of the source\'s recent lines'),
    revert_pattern: key(text, '', 'A line matching this clears a permanent rule\'s condition or subtracts one from a count rule.'),
    count: key(integer({ min: 1 }), '1', 'count rules: matches within window that set the condition'),
    window: key(duration({ min: 1000 }), '20m', 'count rules: the sliding window'),
    repeat_window: key(duration(), '0s', 'temporary rules: a match identical to a recent one within this long is the same occurrence logged again, not a new event (0s: every match is one)'),
  },
} as const;
