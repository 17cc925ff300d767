import { writeFileAtomic } from '@tme/formats';
import { prepareOutputs, type OutputOptions } from './output-folder';
import { validatePicks, type ExportPick } from './pick';
import { formatStopgapMotl, stopgapMotlRows, type StopgapMotlOptions } from './stopgap-motl';
import type { ExportSummary } from './export-relion';

export const STOPGAP_FILE = 'stopgap.star';

export interface ExportStopgapOptions extends OutputOptions, StopgapMotlOptions {}

/** STOPGAP (and cryoCAT): OUTDIR/stopgap.star, a motive list. */
export function exportStopgap(picks: readonly ExportPick[], options: ExportStopgapOptions): ExportSummary {
  validatePicks(picks);
  const [file] = prepareOutputs(options, [STOPGAP_FILE]) as [string];
  writeFileAtomic(file, formatStopgapMotl(stopgapMotlRows(picks, options)));
  return { written: picks.length, padded: 0, skipped: 0, files: [file] };
}
