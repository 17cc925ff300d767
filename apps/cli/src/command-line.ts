/** The command line main() parses (pyTME flags already in tme's spelling), for a command that passes part of it on:
 *  `tme slurm` writes the search's own options into each shard's script. */
let current: readonly string[] = [];

export function setCommandLine(argv: readonly string[]): void {
  current = [...argv];
}

export function commandLine(): readonly string[] {
  return current;
}

/**
 * `args` without the options in `drop`, as `--flag value` or `--flag=value` (`switches` take no value): what a
 * command passes on to the scripts it writes, less its own options.
 */
export function withoutOptions(args: readonly string[], drop: ReadonlySet<string>, switches: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const flag = arg.startsWith('--') && arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg;
    if (drop.has(flag)) {
      if (!switches.has(flag) && !arg.includes('=')) i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}
