import * as fs from 'node:fs';
import * as path from 'node:path';
import { TmeError } from '@tme/formats';

/** Options every exporter shares. */
export interface OutputOptions {
  /** Folder the outputs go to; created if missing. */
  outDir: string;
  /** Replace existing outputs. Default false (ERR_TME_EXISTS). */
  force?: boolean;
}

/** Creates the folder and refuses to overwrite `files` (relative to it) unless forced; returns their full paths. */
export function prepareOutputs(options: OutputOptions, files: readonly string[]): string[] {
  try {
    fs.mkdirSync(options.outDir, { recursive: true });
  } catch (err) {
    throw new TmeError('ERR_TME_IO', `cannot create the output folder: ${(err as Error).message}`, { file: options.outDir, cause: err });
  }
  const full = files.map((f) => path.join(options.outDir, f));
  if (!options.force) {
    for (const f of full) if (fs.existsSync(f)) throw new TmeError('ERR_TME_EXISTS', 'exists (use --force to replace it)', { file: f });
  }
  return full;
}
