// Bash completion, written from the commander program: commands, subcommands, options, the values of
// options whose placeholder names a directory (<dir>) or a file (<path>, <file>), and arguments whose
// name has a list of words (`config check [section.key...]`: the schema's sections and keys). Plain bash
// (compgen, compopt), so it works with or without the bash-completion package's helpers.
import type { Command, Option } from 'commander';
import { commandTree, optionsOf } from './man';

/** What the value of an option is, from its placeholder in the definition: `--dir <dir>` takes a directory. */
export function valueKind(option: Option): 'dir' | 'file' | 'other' | undefined {
  if (!option.required && !option.optional) return undefined;
  const placeholder = option.flags.slice(option.flags.search(/[<[]/));
  if (/\bdir\b/.test(placeholder)) return 'dir';
  if (/\b(path|file)\b/.test(placeholder)) return 'file';
  return 'other';
}

/** Words of the script are command names and flags: refuse anything a shell would read differently. */
function word(text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$|^--?[A-Za-z0-9][A-Za-z0-9_-]*$/.test(text)) {
    throw new Error(`completion: "${text}" cannot be written into the script as a plain word`);
  }
  return text;
}

const flagsOf = (o: Option): string[] => [o.short, o.long].filter((f): f is string => f !== undefined);

/** Words a positional argument takes, by the argument's name, e.g. { 'section.key': ['disk', 'disk.interval', …] }. */
export type ArgumentWords = Record<string, readonly string[]>;

export function bashCompletion(program: Command, argumentWords: ArgumentWords = {}): string {
  const name = word(program.name());
  const fn = `_${name.replace(/-/g, '_')}`;
  const nodes = [{ path: [] as string[], command: program }, ...commandTree(program)];
  const key = (path: string[], w: string): string => `'${path.map(word).join(' ')}|${word(w)}'`;

  const walk: string[] = [];
  const values: Record<'dir' | 'file' | 'other', string[]> = { dir: [], file: [], other: [] };
  const offers: string[] = [];
  for (const { path, command } of nodes) {
    const help = command.createHelp();
    // A command's words are its subcommands, or else what its arguments take.
    const subs = command.commands.length > 0
      ? help.visibleCommands(command).map((c) => c.name())
      : command.registeredArguments.flatMap((a) => argumentWords[a.name()] ?? []);
    for (const sub of command.commands) walk.push(`      ${key(path, sub.name())}) path='${[...path, sub.name()].join(' ')}' ;;`);
    const options = optionsOf(command);
    const takesValue = options.filter((o) => valueKind(o) !== undefined);
    if (takesValue.length > 0) walk.push(`      ${takesValue.flatMap(flagsOf).map((f) => key(path, f)).join(' | ')}) skip=1 ;;`);
    for (const o of takesValue) values[valueKind(o) ?? 'other'].push(...flagsOf(o).map((f) => key(path, f)));
    const flags = [...options.flatMap(flagsOf), '-h', '--help'].map(word);
    offers.push(`    '${path.join(' ')}') subs='${subs.map(word).join(' ')}' opts='${flags.join(' ')}' ;;`);
  }
  const valueCase = (Object.entries(values) as Array<[keyof typeof values, string[]]>)
    .filter(([, keys]) => keys.length > 0)
    .map(([kind, keys]) => `    ${keys.join(' | ')}) kind=${kind} ;;`);

  return `# bash completion for ${name}; generated from its command definitions at build time.
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev= path= kind= skip= subs= opts= w i
  ((COMP_CWORD > 0)) && prev=\${COMP_WORDS[COMP_CWORD-1]}
  # "--dir=<TAB>": bash splits at "=", so the option is one or two words back.
  if [[ $cur == = ]]; then cur=; elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then prev=\${COMP_WORDS[COMP_CWORD-2]}; fi
  COMPREPLY=()
  # Which (sub)command the words so far name; an option's value is skipped, not taken for a command.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if [[ -n $skip ]]; then
      [[ $w == = ]] || skip=
      continue
    fi
    case "$path|$w" in
${walk.join('\n')}
    esac
  done
  case "$path|$prev" in
${valueCase.join('\n')}
  esac
  case $kind in
    dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return ;;
    file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
    other) return ;;
  esac
  case $path in
${offers.join('\n')}
  esac
  if [[ $cur == -* || -z $subs ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  fi
}
complete -F ${fn} ${name}
`;
}
