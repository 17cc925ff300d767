import { TmeError } from '@tme/formats';
import { dataLines, toNumber, type ParseOptions } from './text';

export interface ColumnOptions extends ParseOptions {
  /** 0-based column to read from whitespace-separated rows. Default 0. */
  column?: number;
}

/** One numeric column of a whitespace-separated text file (blank lines and # comments skipped). */
export function parseNumberColumn(text: string, what: string, options: ColumnOptions = {}): number[] {
  const col = options.column ?? 0;
  const lines = dataLines(text);
  if (lines.length === 0) throw new TmeError('ERR_TME_FORMAT', `No ${what} values found`, { file: options.file });
  return lines.map((l, i) => toNumber(l.split(/[\s,]+/)[col], what, options.file, i + 1));
}

/** IMOD .tlt / .rawtlt: one tilt angle (degrees) per line; multi-column files read `column` (default the first). */
export function parseTiltAngles(text: string, options: ColumnOptions = {}): number[] {
  const angles = parseNumberColumn(text, 'tilt angle', options);
  const bad = angles.find((a) => !(a > -90 && a < 90));
  if (bad !== undefined) throw new TmeError('ERR_TME_FORMAT', `Tilt angle ${bad} is outside (−90°, 90°)`, { file: options.file });
  return angles;
}

/** Per-tilt accumulated dose file (e⁻/Å², one value per line, same order as the .tlt). */
export function parseDoseFile(text: string, options: ColumnOptions = {}): number[] {
  const doses = parseNumberColumn(text, 'dose', options);
  const bad = doses.find((d) => !(d >= 0));
  if (bad !== undefined) throw new TmeError('ERR_TME_FORMAT', `Dose ${bad} is negative`, { file: options.file });
  return doses;
}
