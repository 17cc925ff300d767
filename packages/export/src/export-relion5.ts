import { writeStar } from '@tme/formats';
import { prepareOutputs, type OutputOptions } from './output-folder';
import { validateGeometry, validatePicks, type ExportPick, type TomogramGeometry } from './pick';
import { relion5ParticlesTables, relion5TomogramsTable, type Relion5Options } from './relion5-particles';
import { starFileOf } from './star-table';
import type { ExportSummary } from './export-relion';

export const RELION5_TOMOGRAMS_FILE = 'tomograms.star';

export interface ExportRelion5Options extends OutputOptions, Relion5Options {
  /** Also write a tomograms.star stub (name, bin-1 size, pixel size). Default false. */
  tomogramsStar?: boolean;
}

/** RELION 5 tomography: OUTDIR/particles.star (centred Å coordinates) and optionally OUTDIR/tomograms.star. */
export function exportRelion5(picks: readonly ExportPick[], geometry: TomogramGeometry, options: ExportRelion5Options): ExportSummary {
  validateGeometry(geometry);
  validatePicks(picks);
  const names = ['particles.star', ...(options.tomogramsStar ? [RELION5_TOMOGRAMS_FILE] : [])];
  const [particlesPath, tomogramsPath] = prepareOutputs(options, names);
  writeStar(particlesPath!, starFileOf(relion5ParticlesTables(picks, geometry, options), '50001'));
  if (tomogramsPath) writeStar(tomogramsPath, starFileOf([relion5TomogramsTable(geometry, options)], '50001'));
  return { written: picks.length, padded: 0, skipped: 0, files: [particlesPath!, ...(tomogramsPath ? [tomogramsPath] : [])] };
}
