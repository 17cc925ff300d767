import { invalidOption } from '@tme/formats';
import { matrixToRelionEuler } from '@tme/rotations';
import { fixed, integerOrFixed } from './number-format';
import type { ExportPick, TomogramGeometry } from './pick';
import { resolveOptics, type OpticsOptions } from './relion-common';
import type { StarLoopTable } from './star-table';
import { boxCentreOf } from './subtomogram';

/** One extracted particle as the RELION 3.1 table lists it. */
export interface RelionParticleEntry {
  pick: ExportPick;
  /** Path of the subtomogram MRC, relative to the folder RELION runs in (OUTDIR). */
  imageName: string;
  /** Fraction of the subtomogram's box outside the tomogram (filled at extraction). Default 0. */
  outsideFraction?: number;
}

/**
 * tme's own particle label: the fraction of the box outside the tomogram. Not a RELION label: RELION 3.1.3 reads
 * the file anyway ("will ignore (but maintain) values for the unknown label") and carries it into its outputs.
 */
export const RELION_OUTSIDE_LABEL = 'tmeBoxOutsideFraction';

export interface RelionParticlesOptions extends OpticsOptions {
  /** Cubic box edge of the subtomograms, voxels (even). */
  box: number;
  /** rlnCtfImage for every particle: the tomogram's missing-wedge volume (path relative to OUTDIR). */
  ctfImage?: string;
  /** rlnMicrographName: the tomogram the boxes were cut from (the CLI writes its absolute path). Default `<tomo name>.mrc`. */
  micrographName?: string;
  /** Binning of the matched tomogram: rlnCoordinateX/Y/Z are written in bin-1 pixels (box centre × binning). Default 1. */
  binning?: number;
}

/**
 * RELION's angles for a pick: the (rot, tilt, psi) whose Euler_angles2matrix equals R (relion-imod.md §2, verified
 * with relion_reconstruct and a blind relion_refine).
 */
export function relionAnglesOf(pick: ExportPick): [number, number, number] {
  return matrixToRelionEuler(pick.rotation);
}

/**
 * rlnOriginX/Y/ZAngst of a pick extracted on its integer voxel: the template centre sits at d = position − centre
 * voxels from box//2, and RELION re-centres an object shifted by +d with origin −d·pixel, in the box frame
 * (relion-imod.md §3, verified: NCC 0.9999 for −d vs 0.14 for +d). Returned as (x, y, z) Å.
 */
export function relionOriginAngstOf(pick: ExportPick, pixelSize: number): [number, number, number] {
  const c = boxCentreOf(pick.position);
  return [
    -(pick.position[2] - c[2]) * pixelSize,
    -(pick.position[1] - c[1]) * pixelSize,
    -(pick.position[0] - c[0]) * pixelSize,
  ];
}

/**
 * The gold-standard half (rlnRandomSubset) of the i-th particle of a set: halves alternate, so that any set of two
 * or more particles fills both. Without the column relion_refine --split_random_halves draws them at random, and a
 * small set (3 particles: one time in four) can leave a half empty, which stops it.
 */
export function randomSubsetOf(index: number): 1 | 2 {
  return index % 2 === 0 ? 1 : 2;
}

/**
 * The two tables of a RELION 3.1/4 subtomogram-averaging particles STAR: data_optics (with rlnImageDimensionality 3,
 * which relion_refine needs to treat the images as 3D) and data_particles. rlnCoordinateX/Y/Z are the integer voxel
 * the box was cut on (× binning); position = coordinate/binning − origin/pixel, RELION's own reading.
 */
export function relionParticlesTables(
  entries: readonly RelionParticleEntry[],
  geometry: TomogramGeometry,
  options: RelionParticlesOptions,
): [StarLoopTable, StarLoopTable] {
  const optics = resolveOptics(options);
  const binning = options.binning ?? 1;
  if (!(Number.isFinite(binning) && binning > 0)) throw invalidOption('binning', 'number > 0', binning);
  const px = geometry.voxelSize;
  const opticsTable: StarLoopTable = {
    name: 'optics',
    labels: ['rlnOpticsGroup', 'rlnOpticsGroupName', 'rlnImagePixelSize', 'rlnImageSize', 'rlnImageDimensionality',
      'rlnVoltage', 'rlnSphericalAberration', 'rlnAmplitudeContrast'],
    rows: [['1', optics.opticsGroupName, fixed(px), String(options.box), '3',
      integerOrFixed(optics.voltage), integerOrFixed(optics.sphericalAberration), integerOrFixed(optics.amplitudeContrast)]],
  };
  const withClass = entries.some((e) => e.pick.detail !== undefined);
  const labels = ['rlnImageName', ...(options.ctfImage ? ['rlnCtfImage'] : []),
    'rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi', 'rlnOriginXAngst', 'rlnOriginYAngst', 'rlnOriginZAngst', 'rlnOpticsGroup',
    'rlnCoordinateX', 'rlnCoordinateY', 'rlnCoordinateZ', 'rlnMicrographName', 'rlnTomoName', 'rlnAutopickFigureOfMerit',
    ...(withClass ? ['rlnClassNumber'] : []), 'rlnRandomSubset', RELION_OUTSIDE_LABEL];
  const micrograph = options.micrographName ?? `${geometry.name}.mrc`;
  const rows = entries.map(({ pick, imageName, outsideFraction }, i) => {
    const [rot, tilt, psi] = relionAnglesOf(pick);
    const [ox, oy, oz] = relionOriginAngstOf(pick, px);
    // RELION's meaning: the particle is at coordinate − origin/pixel, so the coordinate is the box centre (where the
    // box was cut) and the sub-voxel rest lives in the origin.
    const c = boxCentreOf(pick.position);
    return [imageName, ...(options.ctfImage ? [options.ctfImage] : []),
      fixed(rot), fixed(tilt), fixed(psi), fixed(ox), fixed(oy), fixed(oz), '1',
      fixed(c[2] * binning, 3), fixed(c[1] * binning, 3), fixed(c[0] * binning, 3),
      micrograph, geometry.name, fixed(pick.score),
      ...(withClass ? [String((pick.detail ?? 0) + 1)] : []), String(randomSubsetOf(i)), fixed(outsideFraction ?? 0, 4)];
  });
  return [opticsTable, { name: 'particles', labels, rows }];
}
