/** The command line main() parses (pyTME flags already in tme's spelling), for a command that passes part of it on:
 *  `tme slurm` writes the search's own options into each shard's script. */
let current: readonly string[] = [];

export function setCommandLine(argv: readonly string[]): void {
  current = [...argv];
}

export function commandLine(): readonly string[] {
  return current;
}
