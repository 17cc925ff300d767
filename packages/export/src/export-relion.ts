import * as fs from 'node:fs';
import * as path from 'node:path';
import { createVolume, TmeError, writeMrc, writeStar, type Volume, type VolumeRegionSource } from '@tme/formats';
import { prepareOutputs, type OutputOptions } from './output-folder';
import { validateGeometry, validatePicks, type ExportPick, type TomogramGeometry } from './pick';
import { relionParticlesTables, type RelionParticleEntry, type RelionParticlesOptions } from './relion-particles';
import { starFileOf } from './star-table';
import { extractSubtomogram, type EdgeMode } from './subtomogram';
import { missingWedgeVolume, type TiltRange } from './wedge-mask';

export const SUBTOMOGRAM_FOLDER = 'Subtomograms';
export const RELION_PARTICLES_FILE = 'particles.star';

export interface ExportRelionOptions extends OutputOptions, Omit<RelionParticlesOptions, 'ctfImage'> {
  /**
   * Boxes that reach past a tomogram face: 'pad' fills the outside with the mean of the box's voxels inside the
   * tomogram (0 after normalisation) and marks the particle; 'skip' leaves the pick out. Default 'pad'.
   */
  edge?: EdgeMode;
  /** Multiply subtomograms by −1. Default false. */
  invert?: boolean;
  /** Normalise each subtomogram to mean 0, std 1 over its voxels inside the tomogram. Default true. */
  normalise?: boolean;
  /** Tilt range, degrees: writes the missing-wedge volume and rlnCtfImage. Default: none. */
  tiltRange?: TiltRange;
  /** Tilt axis of the tomogram, for the missing-wedge volume. Default 'y'. */
  tiltAxis?: 'y' | 'x';
}

export interface ExportSummary {
  /** Picks written. */
  written: number;
  /** Of those, boxes that cross a tomogram face (the outside filled). */
  padded: number;
  /** Picks left out (edge boxes with edge 'skip', or centre outside the tomogram). */
  skipped: number;
  /** Files written, full paths. */
  files: string[];
  /** RELION only: per input pick, the fraction of its box outside the tomogram (filled); NaN where skipped. */
  outsideFractions?: number[];
}

/** The name of pick i's subtomogram (1-based, RELION style), relative to OUTDIR. Skipped picks leave a gap. */
export function subtomogramName(tomoName: string, index: number): string {
  return `${SUBTOMOGRAM_FOLDER}/${tomoName}_${String(index + 1).padStart(6, '0')}.mrc`;
}

/**
 * RELION 3.1/4 subtomogram averaging: extracts an even box around every pick into OUTDIR/Subtomograms, writes
 * the tomogram's missing-wedge volume when a tilt range is given, and OUTDIR/particles.star. Run RELION from OUTDIR
 * (paths in the STAR are relative to it). A tomogram on disk (VolumeRegionSource) is read one box at a time.
 */
export function exportRelion(picks: readonly ExportPick[], tomogram: Volume | VolumeRegionSource, geometry: TomogramGeometry, options: ExportRelionOptions): ExportSummary {
  validateGeometry(geometry);
  validatePicks(picks);
  if (tomogram.shape.some((n, a) => n !== geometry.shape[a])) {
    throw new TmeError('ERR_TME_MISMATCH', `tomogram shape (${tomogram.shape.join(', ')}) differs from the geometry (${geometry.shape.join(', ')})`);
  }
  const [starPath] = prepareOutputs(options, [RELION_PARTICLES_FILE]) as [string];
  fs.mkdirSync(path.join(options.outDir, SUBTOMOGRAM_FOLDER), { recursive: true });
  const files: string[] = [];
  let ctfImage: string | undefined;
  if (options.tiltRange) {
    ctfImage = `${SUBTOMOGRAM_FOLDER}/${geometry.name}_wedge.mrc`;
    const full = path.join(options.outDir, ctfImage);
    writeMrc(full, createVolume(missingWedgeVolume(options.box, options.tiltRange, options.tiltAxis), [options.box, options.box, options.box], geometry.voxelSize));
    files.push(full);
  }
  const entries: RelionParticleEntry[] = [];
  const outsideFractions: number[] = [];
  let padded = 0;
  let skipped = 0;
  picks.forEach((pick, i) => {
    const r = extractSubtomogram(tomogram, pick.position, {
      box: options.box, edge: options.edge, invert: options.invert, normalise: options.normalise,
    });
    if (r.status === 'skipped') { skipped += 1; outsideFractions.push(Number.NaN); return; }
    if (r.status === 'padded') padded += 1;
    const imageName = subtomogramName(geometry.name, i);
    const full = path.join(options.outDir, imageName);
    writeMrc(full, createVolume(r.data, [options.box, options.box, options.box], geometry.voxelSize));
    files.push(full);
    entries.push({ pick, imageName, outsideFraction: r.outsideFraction });
    outsideFractions.push(r.outsideFraction);
  });
  writeStar(starPath, starFileOf(relionParticlesTables(entries, geometry, { ...options, ctfImage }), '30001'));
  files.push(starPath);
  return { written: entries.length, padded, skipped, files, outsideFractions };
}
