import type { StarFile } from '@tme/formats';
import { matrixToRelionEuler } from '@tme/rotations';
import { fixed } from './number-format';
import { validateGeometry, type ExportPick, type TomogramGeometry } from './pick';
import type { StarLoopTable } from './star-table';

/**
 * The columns of Warp's template-matching table, in its order: `TiltSeries.MatchLargeVolume.cs` (warpem/warp
 * WarpTools 2.0.0, commit e321344), the `warp_tiltseries/matching/<ts>_<Apx>Apx_<template>.star` that
 * `WarpTools ts_export_particles --normalized_coords` reads.
 */
export const WARP_COLUMNS = [
  'rlnCoordinateX', 'rlnCoordinateY', 'rlnCoordinateZ', 'rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi',
  'rlnMicrographName', 'rlnAutopickFigureOfMerit',
] as const;

/** Warp names a tilt series by its `.tomostar` file; ts_export_particles groups particles by this name. */
export function warpTiltSeriesName(tomoName: string): string {
  return `${tomoName}.tomostar`;
}

/**
 * Warp's table of one tomogram's picks. Coordinates are normalised as Warp's matcher writes them: the position in Å
 * from voxel 0 divided by the tomogram's physical size, i.e. x / N for 0-based voxel x of an N-voxel axis (the
 * binning cancels). Angles are RELION's (`matrixToRelionEuler`): Warp's `Matrix3.Euler` is RELION's
 * Euler_angles2matrix, and ts_export_particles passes the angles into RELION particles unchanged. The score is
 * rlnAutopickFigureOfMerit; rows keep the picks' order (Warp sorts by z, y, x; its readers do not care).
 */
export function warpMatchingTable(picks: readonly ExportPick[], geometry: TomogramGeometry): StarLoopTable {
  validateGeometry(geometry);
  const [nz, ny, nx] = geometry.shape;
  const micrograph = warpTiltSeriesName(geometry.name);
  const rows = picks.map((pick) => {
    const [rot, tilt, psi] = matrixToRelionEuler(pick.rotation);
    // 9 decimals: 1e-9 of a 10⁴-voxel axis is 1e-5 voxel.
    return [fixed(pick.position[2] / nx, 9), fixed(pick.position[1] / ny, 9), fixed(pick.position[0] / nz, 9),
      fixed(rot), fixed(tilt), fixed(psi), micrograph, fixed(pick.score)];
  });
  return { name: '', labels: [...WARP_COLUMNS], rows };
}

/** Tables of several tomograms as one Warp STAR (Warp's own writer: a nameless `data_` block, no version line). */
export function warpStarFile(tables: readonly StarLoopTable[]): StarFile {
  return { blocks: [{ name: '', comments: [], pairs: [], loops: [{ labels: [...WARP_COLUMNS], rows: tables.flatMap((t) => t.rows.map((r) => [...r])) }] }] };
}
