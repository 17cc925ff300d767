#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands';
import { exitCodeFor, formatError } from './format-error';
import { VERSION } from './version';

export function buildProgram(): Command {
  const program = new Command('tme')
    .description('Template matching for cryo-electron tomography: find copies of a molecule in a tomogram.')
    .version(VERSION, '-V, --version', 'print the version of tme')
    .option('--debug', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  // Subcommands throw instead of exiting, so main() decides the exit code for every error alike.
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; commander has already printed its message.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    process.stderr.write(`${formatError(err, debug)}\n`);
    return exitCodeFor(err);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => { process.stderr.write(`tme: internal error: ${String(err)}\n`); process.exitCode = 1; },
  );
}
