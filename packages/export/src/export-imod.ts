import { writeFileAtomic } from '@tme/formats';
import { encodeImodModel, formatPoint2ModelText, type ImodModelOptions } from './imod-model';
import { prepareOutputs, type OutputOptions } from './output-folder';
import { validateGeometry, validatePicks, type ExportPick, type TomogramGeometry } from './pick';
import type { ExportSummary } from './export-relion';

export interface ExportImodOptions extends OutputOptions, ImodModelOptions {}

/** IMOD: OUTDIR/picks.mod (binary model) and OUTDIR/picks.txt (the same points as point2model text). */
export function exportImod(picks: readonly ExportPick[], geometry: TomogramGeometry, options: ExportImodOptions): ExportSummary {
  validateGeometry(geometry);
  validatePicks(picks);
  const [mod, txt] = prepareOutputs(options, ['picks.mod', 'picks.txt']) as [string, string];
  writeFileAtomic(mod, encodeImodModel(picks, geometry, options));
  writeFileAtomic(txt, formatPoint2ModelText(picks));
  return { written: picks.length, padded: 0, skipped: 0, files: [mod, txt] };
}
