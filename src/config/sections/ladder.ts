// The disruptive repair ladder (cordon, drain, reboot, uncordon): per condition, disabled until
// configured. Why the defaults: docs/ladder.md.
import { key } from '../key';
import { boolean, duration, ValueError, type ValueType } from '../values';
import { LADDER_STEPS, type LadderStep } from '../../types';
export { LADDER_STEPS, type LadderStep };

/**
 * When a ladder may start, in the node's local time: on `days` (0 = Sunday), from `startMinute` of the
 * day to `endMinute`; an end at or before the start runs past midnight into the next day.
 */
export interface MaintenanceWindow {
  days: readonly number[];
  startMinute: number;
  endMinute: number;
  /** As written, for messages. */
  text: string;
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function dayIndex(name: string, raw: string): number {
  const i = DAY_NAMES.indexOf(name.toLowerCase());
  if (i < 0) throw new ValueError(`"${raw}": "${name}" is not a day (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)`);
  return i;
}

function minuteOfDay(hhmm: string, raw: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm);
  const minutes = m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  if (!m || Number(m[2]) > 59 || minutes > 24 * 60) throw new ValueError(`"${raw}": "${hhmm}" is not a time of day (use HH:MM, 00:00 to 24:00)`);
  return minutes;
}

/** "always", or windows like "Mon-Fri 02:00-05:00, Sat 22:00-06:00, 12:00-13:00" (no days: every day). */
export const maintenanceWindows: ValueType<MaintenanceWindow[]> = {
  expects: 'always, or windows like Mon-Fri 02:00-05:00',
  parse(raw) {
    const v = raw.trim();
    if (v.toLowerCase() === 'always') return [{ days: [0, 1, 2, 3, 4, 5, 6], startMinute: 0, endMinute: 24 * 60, text: 'always' }];
    const parts = v.split(',').map((s) => s.trim());
    if (v === '' || parts.some((p) => p === '')) throw new ValueError(`"${raw}" names no window (use always, or e.g. Mon-Fri 02:00-05:00)`);
    return parts.map((text) => {
      const m = /^(?:([A-Za-z]{3})(?:-([A-Za-z]{3}))?\s+)?(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$/.exec(text);
      if (!m) throw new ValueError(`"${text}" is not a window (use [DAY[-DAY]] HH:MM-HH:MM, e.g. Mon-Fri 02:00-05:00)`);
      const [, from, to, start, end] = m as unknown as [string, string | undefined, string | undefined, string, string];
      let days = [0, 1, 2, 3, 4, 5, 6];
      if (from !== undefined) {
        const first = dayIndex(from, text);
        const last = to === undefined ? first : dayIndex(to, text);
        // A range may wrap the week: Fri-Mon is Fri, Sat, Sun, Mon.
        days = [];
        for (let d = first; ; d = (d + 1) % 7) {
          days.push(d);
          if (d === last) break;
        }
      }
      const startMinute = minuteOfDay(start, text);
      const endMinute = minuteOfDay(end, text);
      if (startMinute === endMinute) throw new ValueError(`"${text}" is empty: its start and end are the same time`);
      if (startMinute === 24 * 60) throw new ValueError(`"${text}" starts at 24:00; write 00:00 of the next day`);
      return { days, startMinute, endMinute, text };
    });
  },
};

// Kubernetes label selector syntax (k8s.io/apimachinery/pkg/labels): requirements joined by commas,
// each `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a, b)` or `key notin (a, b)`.
const LABEL_NAME = '[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const LABEL_KEY = new RegExp(`^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?/)?${LABEL_NAME}$`);
const LABEL_VALUE = new RegExp(`^(?:${LABEL_NAME})?$`);

/** A label selector as the API server takes it; checked here so a typo fails at load, not at the first drain. */
export const labelSelector: ValueType<string> = {
  expects: 'a label selector like app in (etcd, kafka), tier=db',
  parse(raw) {
    const v = raw.trim();
    if (v === '') return '';
    // Split on commas outside parentheses.
    const requirements: string[] = [];
    let depth = 0;
    let current = '';
    for (const c of v) {
      if (c === '(') depth++;
      if (c === ')') depth--;
      if (depth < 0) throw new ValueError(`"${raw}": a ")" without its "("`);
      if (c === ',' && depth === 0) {
        requirements.push(current.trim());
        current = '';
      } else {
        current += c;
      }
    }
    if (depth !== 0) throw new ValueError(`"${raw}": a "(" without its ")"`);
    requirements.push(current.trim());
    for (const r of requirements) checkRequirement(r, raw);
    return v;
  },
};

function checkRequirement(r: string, raw: string): void {
  const bad = (why: string) => new ValueError(`"${raw}": "${r}" ${why} (use key, !key, key=value, key!=value, key in (a, b) or key notin (a, b))`);
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(r);
  let k: string;
  let values: string[];
  if (set) {
    k = set[1] as string;
    values = (set[3] as string).split(',').map((s) => s.trim());
    if (values.length === 1 && values[0] === '') throw bad('lists no values');
  } else {
    const op = /^(!?)([^=!\s]+)\s*(?:(==|=|!=)\s*(.*))?$/.exec(r);
    if (!op) throw bad('is not a requirement');
    if (op[1] === '!' && op[3] !== undefined) throw bad('negates a key and compares it');
    k = op[2] as string;
    values = op[3] === undefined ? [] : [op[4] as string];
  }
  if (!LABEL_KEY.test(k)) throw bad(`has "${k}", which is not a label key`);
  for (const value of values) if (!LABEL_VALUE.test(value)) throw bad(`has "${value}", which is not a label value`);
}

/** The steps of one condition's ladder: a subset of cordon, drain, reboot in that order, cordon first. */
export const ladderSteps: ValueType<LadderStep[]> = {
  expects: 'steps like cordon, drain, reboot',
  parse(raw) {
    const steps = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    for (const s of steps) {
      if (!(LADDER_STEPS as readonly string[]).includes(s)) throw new ValueError(`"${s}" is not a step (use cordon, drain, reboot)`);
    }
    const order = steps.map((s) => LADDER_STEPS.indexOf(s as LadderStep));
    if (steps[0] !== 'cordon') throw new ValueError(`"${raw}" does not start with cordon: a node is cordoned before anything disrupts it`);
    if (order.some((o, i) => i > 0 && o <= (order[i - 1] as number))) {
      throw new ValueError(`"${raw}": steps must appear once each, in the order cordon, drain, reboot`);
    }
    return steps as LadderStep[];
  },
};

export const ladderSections = {
  ladder: {
    enabled: key(
      boolean,
      'false',
      'Walk the repair ladder (cordon, drain, reboot, uncordon) for the conditions of [remediate "Type"] sections; [repair] mode off disables it too.',
    ),
    dry_run: key(
      boolean,
      'false',
      'Walk the ladder without acting: ask for a slot, then log, record and send events saying what would be done ([repair] mode dry-run does the same).',
    ),
    windows: key(
      maintenanceWindows,
      'always',
      'When a ladder may start, in local time: always, or windows like Mon-Fri 02:00-05:00, Sat 22:00-06:00. A ladder that started finishes outside its window.',
    ),
    blocking_pods: key(
      labelSelector,
      '',
      'A label selector (e.g. app in (etcd, kafka)): while a pod on this node that has not finished matches it, no ladder starts. Empty: none blocks.',
    ),
    drain_timeout: key(
      duration({ min: 10_000 }),
      '10m',
      'A drain not finished after this long fails (e.g. PodDisruptionBudgets keep refusing evictions).',
    ),
    uncordon_on_failure: key(
      boolean,
      'true',
      'When the drain or the reboot fails, or the node is not healthy after it, uncordon the node (only if this agent cordoned it); false: leave it cordoned for a person.',
    ),
    reboot: key(
      boolean,
      'true',
      'Allow the reboot step (through logind); false: ladders stop after the drain and wait for the condition to clear.',
    ),
    reboot_timeout: key(
      duration({ min: 60_000 }),
      '10m',
      'The machine still up this long after logind accepted the reboot is a failed reboot.',
    ),
    after_boot_timeout: key(
      duration({ min: 60_000 }),
      '15m',
      'After the reboot (or the last step): how long to wait for the Node Ready and the condition False before the ladder fails.',
    ),
    retry: key(
      duration({ min: 60_000 }),
      '30m',
      'Wait before a new ladder for a condition that stayed True after one failed without rebooting; a reboot that did not help is not repeated for that occurrence.',
    ),
  },
} as const;

export const ladderFamilies = {
  remediate: {
    enabled: key(boolean, 'true', 'Walk the ladder for this condition (the section name is its type, e.g. KernelDeadlock).'),
    after: key(
      duration({ min: 60_000 }),
      '10m',
      'The condition must have been True this long without a break before the ladder starts.',
    ),
    steps: key(ladderSteps, 'cordon, drain, reboot', 'The steps, in order, cordon first; then the agent waits for the condition to clear and uncordons.'),
  },
} as const;
