import * as nodePath from 'node:path';
import { invalidOption } from './errors';
import { EmHeader, readEm, writeEm } from './em';
import { MrcHeader } from './mrc-header';
import { WriteMrcOptions, readMrc, writeMrc } from './mrc';
import type { Volume, VolumeData } from './volume';

/** Extensions read and written as MRC/CCP4. */
export const MRC_EXTENSIONS = ['.mrc', '.map', '.mrcs', '.rec', '.st', '.ccp4', '.ali', '.preali'] as const;
/** Extensions read and written as EM (TOM toolbox). */
export const EM_EXTENSIONS = ['.em'] as const;

export type VolumeFormat = 'mrc' | 'em';

/** 'mrc' or 'em' by extension (case-insensitive); undefined for anything else. */
export function volumeFormatOf(path: string): VolumeFormat | undefined {
  const ext = nodePath.extname(path).toLowerCase();
  if ((MRC_EXTENSIONS as readonly string[]).includes(ext)) return 'mrc';
  if ((EM_EXTENSIONS as readonly string[]).includes(ext)) return 'em';
  return undefined;
}

function formatOrThrow(path: string): VolumeFormat {
  const f = volumeFormatOf(path);
  if (f === undefined) {
    throw invalidOption('path', `a volume file ending in ${[...MRC_EXTENSIONS, ...EM_EXTENSIONS].join(', ')}`, path, path);
  }
  return f;
}

export type ReadVolumeResult = Volume & ({ format: 'mrc'; header: MrcHeader } | { format: 'em'; header: EmHeader });

/** Reads an MRC or EM file (chosen by extension) as a float32 volume, with its header. */
export function readVolume(path: string, options: { onWarning?: (message: string) => void } = {}): ReadVolumeResult {
  if (formatOrThrow(path) === 'mrc') return { ...readMrc(path, options), format: 'mrc' };
  return { ...readEm(path, options), format: 'em' };
}

/** Writes an MRC (mode 2, or `mode` 12) or EM file, chosen by extension, atomically. */
export function writeVolume(path: string, volume: Volume<VolumeData>, options: WriteMrcOptions = {}): void {
  if (formatOrThrow(path) === 'mrc') writeMrc(path, volume, options);
  else {
    if (options.mode !== undefined && options.mode !== 2) throw invalidOption('mode', '2 for EM output (float32)', options.mode, path);
    writeEm(path, volume);
  }
}
