// The `node-health-agent` command. Thin: parse arguments, call the module, map the outcome to an exit code.
import { Command, CommanderError } from 'commander';
import { AgentError, messageOf } from '../errors';
import { VERSION } from '../version';
import { bundle } from './bundle';
import { configCheck } from './config-check';
import { diagnose } from './diagnose';
import { rulesTest } from './rules-test';
import { run } from './run';
import { status } from './status';

/** Exit code for "could not run" (bad config, bad usage, daemon unreachable). */
const EXIT_CANNOT_RUN = 2;

/** The command definitions; also read by the man page and completion generator (src/cli/manual/), so nothing may run here. */
export function buildProgram(): Command {
  const program = new Command('node-health-agent')
    .description('Detects, reports and safely repairs Kubernetes node problems.')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('diagnose')
    .description('run the enabled local checks once and print the findings (exit 0 healthy, 1 problems, 2 could not run)')
    .option('-c, --config-dir <dir>', 'directory of *.ini files (default /etc/node-health)')
    .option('--json', 'print one JSON object per finding')
    .action(async (opts: { configDir?: string; json?: boolean }) => {
      process.exitCode = await diagnose(opts);
    });

  program
    .command('run')
    .description('run the daemon in the foreground (as systemd does)')
    .option('-c, --config-dir <dir>', 'directory of *.ini files (default /etc/node-health)')
    .option('--node-name <name>', 'the Node to report on (default: [kubernetes] node_name, $NODE_NAME, the kubelet certificate, the hostname)')
    .action(async (opts: { configDir?: string; nodeName?: string }) => {
      await run(opts);
    });

  program
    .command('status')
    .description('show the live state of the running daemon')
    .option('-c, --config-dir <dir>', 'directory of *.ini files, to find the socket (default /etc/node-health)')
    .option('-s, --socket <path>', 'status socket of the daemon (default <runtime_dir>/agent.sock)')
    .option('--json', 'print the state as JSON')
    .action(async (opts: { configDir?: string; socket?: string; json?: boolean }) => {
      process.exitCode = await status(opts);
    });

  const config = program.command('config').description('work with the configuration');
  config
    .command('check')
    .description('validate the configuration and print the effective merged values')
    .argument('[section.key...]', 'print only these sections or keys, e.g. disk or disk.interval')
    .option('-d, --dir <dir>', 'directory of *.ini files (default /etc/node-health)')
    .action((only: string[], opts: { dir?: string }) => {
      process.exitCode = configCheck(opts.dir, only);
    });

  program
    .command('bundle')
    .description('write a support bundle (tar.gz) to attach to a ticket: config, status, state, journal, host inputs, versions; secrets redacted')
    .option('--since <duration>', 'journal window, e.g. 30m, 2h, 1d', '2h')
    .option('-o, --output <file>', 'where to write it, - for stdout (default ./node-health-bundle-<host>-<time>.tar.gz)')
    .option('-c, --config-dir <dir>', 'directory of *.ini files (default /etc/node-health)')
    .action(async (opts: { since: string; output?: string; configDir?: string }) => {
      process.exitCode = await bundle(opts);
    });

  const rules = program.command('rules').description('work with the journal log rules');
  rules
    .command('test')
    .description('run lines (plain text, or journalctl -o export output) through the configured rules and print what each raised')
    .argument('[file]', "input file; '-' or none reads stdin")
    .option('-c, --config-dir <dir>', 'directory of *.ini files (default /etc/node-health)')
    .option('-s, --source <name>', 'the source plain-text lines are fed to (default kernel); with export input, only this source')
    .option('--json', 'print one JSON object per input line')
    .action(async (file: string | undefined, opts: { configDir?: string; source?: string; json?: boolean }) => {
      process.exitCode = await rulesTest({ ...opts, ...(file !== undefined ? { input: file } : {}) });
    });

  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`node-health-agent ${VERSION}\n`);
    });

  return program;
}

/** Runs the command line; the executable's entry point is bin.ts, so importing this module runs nothing. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.hook('preAction', (_program, command) => {
    // The daemon prints nothing and must outlive a closed stdout (its crash policy, system/background.ts).
    if (command.name() === 'run') return;
    // `diagnose | head` closes our stdout early: that ends the output, it is not a crash.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(process.exitCode ?? 0);
    });
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end here with code 0; usage errors were already printed by commander.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_CANNOT_RUN;
      return;
    }
    const text = err instanceof AgentError ? err.message : `unexpected error: ${messageOf(err)}`;
    for (const line of text.split('\n')) process.stderr.write(`node-health-agent: ${line}\n`);
    if (!(err instanceof AgentError) && process.env.NODE_HEALTH_DEBUG) console.error(err);
    process.exitCode = EXIT_CANNOT_RUN;
  }
}

