#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { releaseJobLocks } from '@tme/engine';
import { registerCommands } from './commands';
import { exitCodeFor, formatError } from './format-error';
import { setCommandLine } from './command-line';
import { translatePytmeFlags } from './pytme-flags';
import { VERSION } from './version';

export function buildProgram(): Command {
  const program = new Command('tme')
    .description('Template matching for cryo-electron tomography: find copies of a molecule in a tomogram.')
    .version(VERSION, '-V, --version', 'print the version of tme')
    .option('--debug', 'print stack traces with errors')
    // Usage errors too are one line `tme: problem (hint)` on stderr, like every other error (subcommands inherit this).
    .configureOutput({ outputError: (str, write) => write(`${oneLineUsageError(str)}\n`) })
    .exitOverride();
  registerCommands(program);
  // Subcommands throw instead of exiting, so main() decides the exit code for every error alike.
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

/** commander's `error: problem\n` as tme's one-line `tme: problem (run … --help for usage)`. */
export function oneLineUsageError(text: string): string {
  const problem = text.replace(/^\s*error:\s*/i, '').replace(/\s*\n\s*/g, ' ').trim();
  return `tme: ${problem} (run with --help for usage)`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug');
  try {
    const translated = translatePytmeFlags(argv);
    setCommandLine(translated);
    await program.parseAsync(translated, { from: 'user' });
    releaseJobLocks();
    return 0;
  } catch (err) {
    releaseJobLocks();
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
  // Each device's search occupies one of libuv's pool threads for its whole run (4 by default): a node with 8 GPUs
  // needs 8, plus room for file I/O. Read once, at the pool's first use, which is after this line.
  process.env['UV_THREADPOOL_SIZE'] ??= '16';
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => { process.stderr.write(`tme: internal error: ${String(err)}\n`); process.exitCode = 1; },
  );
}
