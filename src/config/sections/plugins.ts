// Custom plugins: executables speaking node-problem-detector's custom-plugin protocol (exit 0 OK, 1 a
// problem, anything else unknown), declared in [plugin "name"] sections or loaded unmodified from NPD
// custom-plugin-monitor JSON configs. src/sources/plugins/ builds and runs them (docs/plugins.md).
import { key, required } from '../key';
import {
  absolutePath,
  boolean,
  duration,
  integer,
  listOf,
  oneOf,
  optional,
  text,
  ValueError,
  type ValueType,
} from '../values';

/** An argv as a JSON array of strings: never a shell string, so spaces, commas and quotes stay verbatim. */
export const argv: ValueType<string[]> = {
  expects: 'a JSON array of strings like ["--component=kubelet", "--timeout=10s"], or nothing',
  parse(raw) {
    const v = raw.trim();
    if (v === '') return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new ValueError(`${v} is not a JSON array of strings`);
    }
    if (!Array.isArray(parsed) || !parsed.every((a): a is string => typeof a === 'string')) {
      throw new ValueError(`${v} is not a JSON array of strings`);
    }
    return parsed;
  },
};

export const pluginSections = {
  plugins: {
    enabled: key(boolean, 'true', 'Run custom plugins: the [plugin "name"] sections and the configs in npd_configs.'),
    npd_configs: key(
      listOf(absolutePath),
      '',
      'node-problem-detector custom-plugin-monitor JSON configs (plugin "custom") to load unmodified; each keeps its own interval, timeout, concurrency and output length.',
    ),
    npd_root: key(
      absolutePath,
      '/',
      'Relative plugin paths in npd_configs (like ./config/plugin/check_ntp.sh) resolve against this directory, and their plugins run in it (NPD resolves them against its working directory).',
    ),
    concurrency: key(integer({ min: 1, max: 64 }), '3', 'Plugins of [plugin] sections running at once.'),
    interval: key(duration({ min: 1000 }), '30s', 'How often a [plugin] runs when it sets no interval.'),
    timeout: key(duration({ min: 100 }), '5s', 'A [plugin] that sets no timeout and runs longer is killed and reports Unknown.'),
    max_output_length: key(integer({ min: 0, max: 4096 }), '80', 'Output of a [plugin] (stdout, trimmed) is cut to this many bytes.'),
    message_change_updates: key(
      boolean,
      'false',
      "A True condition of a [plugin] takes the plugin's new output as its message (NPD enable_message_change_based_condition_update); false: only a new reason or status updates it.",
    ),
    skip_initial_status: key(
      boolean,
      'false',
      'At start, leave the conditions of [plugin] sections as they were until each plugin has run; false: report them False at once, as NPD does.',
    ),
    kill_grace: key(
      duration({ min: 100 }),
      '1s',
      'A plugin killed on timeout that has not exited this long after SIGKILL (stuck in uninterruptible sleep) frees its concurrency slot; it is reaped when it exits and not started again before.',
    ),
  },
} as const;

export const pluginFamilies = {
  plugin: {
    enabled: key(boolean, 'true', 'Run this plugin.'),
    path: required(absolutePath, 'the executable, owned by root and not writable by group or others'),
    args: key(argv, '', 'Arguments, as a JSON array of strings (no shell is involved).'),
    kind: key(
      oneOf(['temporary', 'permanent']),
      'permanent',
      'permanent: exit 1 sets the condition True, exit 0 sets it False; temporary: a Warning event on every run that does not exit 0',
    ),
    condition: key(text, '', 'The NodeCondition type a permanent plugin sets, e.g. NTPProblem.'),
    reason: required(text, 'reason of the condition or event when the plugin exits 1, e.g. NTPIsDown'),
    ok_reason: key(text, '', 'Reason while the condition is False, e.g. NTPIsUp (set once per condition).'),
    ok_message: key(text, '', 'Message while the condition is False (set once per condition).'),
    interval: key(optional(duration({ min: 1000 })), '', 'How often it runs; empty: [plugins] interval.'),
    timeout: key(optional(duration({ min: 100 })), '', 'Longer runs are killed and report Unknown; empty: [plugins] timeout.'),
  },
} as const;
