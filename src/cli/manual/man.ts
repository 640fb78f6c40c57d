// The manual pages, written from the definitions they describe so they cannot drift from them:
// node-health-agent(8) from the commander program (src/cli/main.ts), node-health.ini(5) from the config
// schema (src/config/schema.ts, and the probes' own sections through the registry). The prose around
// the generated parts is kept short and lives here.
import type { Command, Option } from 'commander';
import type { KeySpec } from '../../config/key';
import { bold, esc, italic, para, tagged, title } from './roff';

/** A command with the words that invoke it, e.g. ['config', 'check']. */
export interface CommandEntry {
  path: string[];
  command: Command;
}

/** Every command below the program, depth first, parents before their subcommands. */
export function commandTree(program: Command): CommandEntry[] {
  const walk = (cmd: Command, path: string[]): CommandEntry[] =>
    cmd.commands.flatMap((sub) => [{ path: [...path, sub.name()], command: sub }, ...walk(sub, [...path, sub.name()])]);
  return walk(program, []);
}

/** The options a command accepts as its help lists them (--version on the program), without --help, which all have. */
export function optionsOf(cmd: Command): Option[] {
  return cmd.createHelp().visibleOptions(cmd).filter((o) => o.long !== '--help');
}

/** `-c, --config-dir <dir>` as roff: the flags bold, the value's placeholder italic. */
function optionTerm(option: Option): string {
  const [flags, ...placeholder] = option.flags.split(/ (?=[<[])/);
  return `${bold(flags ?? option.flags)}${placeholder.length > 0 ? ` ${italic(placeholder.join(' '))}` : ''}`;
}

export function commandPage(program: Command, version: string): string {
  const name = program.name();
  const entries = commandTree(program);
  const lines = [
    title(name, 8, `${name} ${version}`, 'System Administration'),
    '.SH NAME',
    `${esc(name, true)} \\- ${esc(program.description())}`,
    '.SH SYNOPSIS',
    ...entries
      .filter((e) => e.command.commands.length === 0)
      .flatMap((e) => ['.br', `${bold(`${name} ${e.path.join(' ')}`)}${optionsOf(e.command).length > 0 ? ` [${italic('options')}]` : ''}`]),
    '.SH DESCRIPTION',
    ...para(
      `${name} watches a Kubernetes node: the journal, the container runtime, the kubelet, the kernel and the ` +
        "host's resources. It reports what it finds as NodeConditions and Events with the node's own kubelet " +
        'credentials, exports Prometheus metrics, and repairs what can safely be repaired (restarting containerd ' +
        'or the kubelet through systemd, with cooldowns and budgets).',
    ),
    ...para(
      `It runs as the systemd service ${name}.service (${name} run); the other commands are for the operator. ` +
        'The configuration is described in node-health.ini(5).',
    ),
    '.SH COMMANDS',
  ];
  for (const { path, command } of entries) {
    const args = command.registeredArguments.map((a) => {
      const n = `${a.name()}${a.variadic ? '...' : ''}`;
      return a.required ? `<${n}>` : `[${n}]`;
    });
    lines.push(`.SS "${esc([name, ...path, ...args].join(' '), true)}"`, esc(command.description()));
    for (const a of command.registeredArguments) {
      if (a.description) lines.push(...tagged(italic(a.name()), a.description));
    }
    for (const option of optionsOf(command)) {
      const def = option.defaultValue === undefined ? '' : ` (default ${String(option.defaultValue)})`;
      lines.push(...tagged(optionTerm(option), `${option.description}${def}`));
    }
  }
  lines.push(
    '.SH OPTIONS',
    ...tagged(bold('-h, --help'), 'Print the usage of the program or of a command.'),
    ...optionsOf(program).flatMap((o) => tagged(optionTerm(o), o.description)),
    '.SH EXIT STATUS',
    ...tagged(bold('0'), 'Success (diagnose: the node is healthy).'),
    ...tagged(bold('1'), 'diagnose found problems.'),
    ...tagged(
      bold('2'),
      'Could not run: bad usage, a bad configuration, an unwritable state directory, another daemon already ' +
        'running, the daemon unreachable. A one-line message names the file, key or path and what to do.',
    ),
    '.SH ENVIRONMENT',
    ...tagged(bold('NODE_NAME'), 'The Node to report on when [kubernetes] node_name is empty.'),
    ...tagged(bold('NODE_HEALTH_DEBUG'), 'When set, an unexpected error also prints its stack trace.'),
    '.SH FILES',
    ...tagged(italic('/etc/node-health/*.ini'), 'The configuration, merged in lexical order; see node-health.ini(5).'),
    ...tagged(italic('/var/lib/node-health/'), 'State ([agent] state_dir): conditions, journal cursors, repair and ladder ledgers.'),
    ...tagged(italic('/run/node-health/agent.sock'), "The daemon's status socket ([agent] runtime_dir)."),
    ...tagged(italic('/usr/share/node-health-agent/'), 'Manifests and other files for the cluster side.'),
    '.SH SEE ALSO',
    `${bold('node-health.ini')}(5), ${bold('systemctl')}(1), ${bold('journalctl')}(1)`,
    '',
  );
  return lines.join('\n');
}

/** A section of the config, as the man page lists it. */
export interface ConfigSection {
  /** [disk] or [rule "name"] */
  header: string;
  keys: Readonly<Record<string, KeySpec<unknown>>>;
}

export function configPage(
  sections: readonly ConfigSection[],
  families: readonly ConfigSection[],
  program: string,
  version: string,
): string {
  const keyEntry = (name: string, spec: KeySpec<unknown>): string[] => {
    const value = spec.default === undefined ? ` (${italic('required')})` : spec.default === '' ? ' (empty)' : ` = ${italic(spec.default)}`;
    return tagged(`${bold(name)}${value}`, spec.doc, `Value: ${spec.type.expects}.`);
  };
  const section = (s: ConfigSection): string[] => [
    `.SS "${esc(s.header, true)}"`,
    ...Object.entries(s.keys).flatMap(([name, spec]) => keyEntry(name, spec)),
  ];
  return [
    title('node-health.ini', 5, `${program} ${version}`, 'File Formats'),
    '.SH NAME',
    `node\\-health.ini \\- configuration of ${esc(program, true)}`,
    '.SH SYNOPSIS',
    italic('/etc/node-health/*.ini'),
    '.SH DESCRIPTION',
    ...para(
      `${program} reads every *.ini file in /etc/node-health (another directory with --config-dir), in byte order ` +
        'of their names, and merges them key by key: a later file overrides only the keys it sets, like systemd ' +
        'drop-in files. The package ships node-health.ini with every setting at its default; keep changes in a ' +
        'file of your own, e.g. 50-local.ini, so upgrades never conflict with them.',
    ),
    ...para(
      'Every file and the directory must be owned by root and not writable by group or others. An unknown ' +
        'section or key, a key set twice in one file and a value of the wrong type are errors that name ' +
        `file:line; "${program} config check" validates the files and prints the effective values.`,
    ),
    ...para(
      'As in systemd unit files, ";" or "#" start a comment only at the start of a line, and a value is taken ' +
        'verbatim to the end of its line; a value in double quotes is decoded like a JSON string. Durations: ' +
        '500ms, 30s, 2m, 1h30m; percentages: 85%; sizes: 16Ki, 512Mi; booleans: true or false; lists are ' +
        'separated by commas.',
    ),
    '.SH SECTIONS',
    ...sections.flatMap(section),
    '.SH NAMED SECTIONS',
    ...para(
      'These come in any number of named sections, [family "name"]. A later file may set keys of a section an ' +
        'earlier file defined (e.g. enabled = false for a shipped rule); required keys must be set somewhere.',
    ),
    ...families.flatMap(section),
    '.SH FILES',
    ...tagged(italic('/etc/node-health/node-health.ini'), 'The shipped defaults.'),
    ...tagged(italic('/etc/node-health/*.ini'), 'Files of the operator, merged after it in name order.'),
    '.SH SEE ALSO',
    `${bold(program)}(8)`,
    '',
  ].join('\n');
}
