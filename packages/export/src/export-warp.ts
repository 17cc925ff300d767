import { writeStar } from '@tme/formats';
import { prepareOutputs, type OutputOptions } from './output-folder';
import { validatePicks, type ExportPick, type TomogramGeometry } from './pick';
import { warpMatchingTable, warpStarFile } from './warp-table';
import type { ExportSummary } from './export-relion';

export const WARP_FILE = 'warp.star';

/** Warp/WarpTools: OUTDIR/warp.star in the layout of Warp's template matching (normalised coordinates). */
export function exportWarp(picks: readonly ExportPick[], geometry: TomogramGeometry, options: OutputOptions): ExportSummary {
  validatePicks(picks);
  const table = warpMatchingTable(picks, geometry);
  const [file] = prepareOutputs(options, [WARP_FILE]) as [string];
  writeStar(file, warpStarFile([table]));
  return { written: picks.length, padded: 0, skipped: 0, files: [file] };
}
