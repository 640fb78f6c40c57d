// What a plugin configuration becomes, whether it came from [plugin "name"] sections or an NPD JSON file.

/** A condition's reason and message while it is False (NPD: an entry of "conditions"). */
export interface ConditionDefault {
  type: string;
  reason: string;
  message: string;
  /** Where it was defined, for conflict messages: "file: conditions[0]" or "file:line". */
  origin: string;
}

/** One rule: a plugin invocation and what its result means. */
export interface PluginRule {
  /** The report source, unique per rule: plugin/<group>/rules[i] or plugin/<name>. */
  id: string;
  /** Where it was defined, for messages: "file rules[1]" or [plugin "name"]. */
  label: string;
  /** Short name in diagnose and status: "rules[1] NTPIsDown" or the [plugin] name. */
  subject: string;
  kind: 'temporary' | 'permanent';
  /** The condition type a permanent rule sets; empty for a temporary rule. */
  condition: string;
  reason: string;
  /** Absolute path of the executable. */
  path: string;
  args: string[];
  timeoutMs: number;
  intervalMs: number;
}

/** Rules that share settings: one NPD config file, or all [plugin] sections of the ini files. */
export interface PluginGroup {
  /** The ini's [plugin] sections rather than an NPD file. */
  fromIni: boolean;
  /** The file's base name without .json, or "ini". */
  name: string;
  /** NPD's "source" (the file's base name when absent), or "ini". */
  source: string;
  /** The file, or "[plugin] sections". */
  origin: string;
  /** Working directory of the plugins. */
  cwd: string;
  /** Runs of this group at once. */
  concurrency: number;
  maxOutputLength: number;
  messageChangeUpdates: boolean;
  skipInitialStatus: boolean;
  conditions: ConditionDefault[];
  rules: PluginRule[];
}
