import type { Command } from 'commander';
import * as fs from 'node:fs';
import {
  DEFAULT_MRC_LABEL, TmeError, invalidOption, readVolume, volumeFormatOf, writeVolume,
} from '@tme/formats';

export interface ConvertFlags {
  /** '2' (float32, default) or '12' (float16), MRC output only. */
  mode?: string;
  /** Replace an existing output. */
  force?: boolean;
}

/** What `tme convert` does; exported for tests. Values are kept (as float32, or rounded to float16 with --mode 12). */
export function runConvert(input: string, output: string, flags: ConvertFlags): void {
  const modeText = flags.mode ?? '2';
  if (modeText !== '2' && modeText !== '12') throw invalidOption('--mode', '2 or 12', modeText);
  const mode = Number(modeText) as 2 | 12;
  const outFormat = volumeFormatOf(output);
  if (outFormat === undefined) throw invalidOption('OUT', 'a path ending in .mrc, .map, .mrcs, .rec, .st, .ccp4 or .em', output);
  if (volumeFormatOf(input) === undefined) throw invalidOption('IN', 'a path ending in .mrc, .map, .mrcs, .rec, .st, .ccp4 or .em', input);
  if (outFormat === 'em' && mode !== 2) throw invalidOption('--mode', '2 for EM output', modeText, output);
  if (!flags.force && fs.existsSync(output)) {
    throw new TmeError('ERR_TME_EXISTS', 'output exists; use --force to replace it', { file: output });
  }
  const vol = readVolume(input);
  for (const w of vol.header.warnings) process.stderr.write(`tme: warning: ${input}: ${w}\n`);
  // Keep what MRC headers carry beyond the volume: NSTART, labels (plus one naming tme, space permitting), stack flag.
  const labels = vol.format === 'mrc' ? [...vol.header.labels.slice(0, 9), DEFAULT_MRC_LABEL] : [DEFAULT_MRC_LABEL];
  writeVolume(output, vol, vol.format === 'mrc'
    ? { mode, labels, nstart: vol.header.nstart, imageStack: vol.header.isImageStack }
    : { mode, labels });
  const [nz, ny, nx] = vol.shape;
  process.stdout.write(`wrote ${output}: x ${nx}, y ${ny}, z ${nz}, ${outFormat === 'em' ? 'EM float32' : `MRC mode ${mode}`}\n`);
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('Convert a volume between MRC and EM (chosen by extension), keeping its values, voxel size and origin')
    .argument('<in>', 'input .mrc/.map/.mrcs/.rec/.st/.ccp4/.em')
    .argument('<out>', 'output .mrc/.map/.mrcs/.rec/.st/.ccp4/.em (written atomically)')
    .option('--mode <mode>', 'MRC output mode: 2 (float32) or 12 (float16)', '2')
    .option('--force', 'replace OUT if it exists')
    .action((input: string, output: string, flags: ConvertFlags) => { runConvert(input, output, flags); });
}
