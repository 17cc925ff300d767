import { invalidOption, TmeError, type Zyx } from '@tme/formats';
import { matrixToRelionEuler } from '@tme/rotations';
import { fixed, integerOrFixed } from './number-format';
import type { ExportPick, TomogramGeometry } from './pick';
import { resolveOptics, type OpticsOptions } from './relion-common';
import type { StarLoopTable } from './star-table';

/**
 * Where RELION 5's centred coordinates have their zero, in bin-1 pixels of a tomogram of N bin-1 pixels:
 * 'relion' = N/2.0, what RELION's C++ uses to de-centre (TomogramSet: centre = size/2.0);
 * 'minus-one' = N/2 − 1, the variant of RELION's own Python picker and pytom (3dem/relion #1137).
 */
export type CentreConvention = 'relion' | 'minus-one';

export interface Relion5Options extends OpticsOptions {
  /** Binning of the matched tomogram relative to the tilt series (bin-1 pixels per voxel). Default: from
   * tiltSeriesPixelSize, else 1. */
  binning?: number;
  /** rlnTomoTiltSeriesPixelSize, Å. Default voxelSize / binning. */
  tiltSeriesPixelSize?: number;
  /** Default 'relion'. */
  centreConvention?: CentreConvention;
}

export interface Relion5Scale { binning: number; tiltSeriesPixelSize: number }

/** Binning and tilt-series pixel size from either one (the other follows from the voxel size); both must agree. */
export function resolveRelion5Scale(geometry: TomogramGeometry, options: Pick<Relion5Options, 'binning' | 'tiltSeriesPixelSize'>): Relion5Scale {
  const { binning, tiltSeriesPixelSize } = options;
  if (binning !== undefined && !(Number.isFinite(binning) && binning > 0)) throw invalidOption('binning', 'number > 0', binning);
  if (tiltSeriesPixelSize !== undefined && !(Number.isFinite(tiltSeriesPixelSize) && tiltSeriesPixelSize > 0)) {
    throw invalidOption('tiltSeriesPixelSize', 'number > 0 (Å)', tiltSeriesPixelSize);
  }
  if (binning !== undefined && tiltSeriesPixelSize !== undefined) {
    const implied = geometry.voxelSize / tiltSeriesPixelSize;
    if (Math.abs(implied - binning) > 1e-3 * binning) {
      throw new TmeError('ERR_TME_MISMATCH', `binning ${binning} and tilt-series pixel size ${tiltSeriesPixelSize} Å disagree with the voxel size ${geometry.voxelSize} Å (binning would be ${implied.toFixed(4)})`);
    }
  }
  if (tiltSeriesPixelSize !== undefined) return { binning: geometry.voxelSize / tiltSeriesPixelSize, tiltSeriesPixelSize };
  const b = binning ?? 1;
  return { binning: b, tiltSeriesPixelSize: geometry.voxelSize / b };
}

/**
 * rlnCenteredCoordinateX/Y/ZAngst of a position (z, y, x voxels of the matched tomogram), returned (x, y, z):
 * (p·B − centre)·P with P the tilt-series pixel size and centre from the convention in bin-1 pixels. With 'relion'
 * this is (p − n/2)·voxel, independent of B.
 */
export function centredCoordinateAngst(position: Zyx, shape: Zyx, scale: Relion5Scale, convention: CentreConvention = 'relion'): [number, number, number] {
  const { binning: b, tiltSeriesPixelSize: p } = scale;
  const one = (a: number): number => {
    const size = (shape[a] as number) * b;
    const centre = convention === 'relion' ? size / 2 : size / 2 - 1;
    return ((position[a] as number) * b - centre) * p;
  };
  return [one(2), one(1), one(0)];
}

/** The inverse of centredCoordinateAngst: (z, y, x) voxels of the matched tomogram from centred Å (x, y, z). */
export function positionFromCentredAngst(angst: readonly [number, number, number], shape: Zyx, scale: Relion5Scale, convention: CentreConvention = 'relion'): [number, number, number] {
  const { binning: b, tiltSeriesPixelSize: p } = scale;
  const one = (a: number, value: number): number => {
    const size = (shape[a] as number) * b;
    const centre = convention === 'relion' ? size / 2 : size / 2 - 1;
    return (value / p + centre) / b;
  };
  return [one(0, angst[2]), one(1, angst[1]), one(2, angst[0])];
}

/** data_optics + data_particles of a RELION 5 tomography particles STAR (coordinates, no extracted images). */
export function relion5ParticlesTables(picks: readonly ExportPick[], geometry: TomogramGeometry, options: Relion5Options = {}): [StarLoopTable, StarLoopTable] {
  const optics = resolveOptics(options);
  const scale = resolveRelion5Scale(geometry, options);
  const convention = options.centreConvention ?? 'relion';
  if (convention !== 'relion' && convention !== 'minus-one') throw invalidOption('centreConvention', "'relion' or 'minus-one'", convention);
  const opticsTable: StarLoopTable = {
    name: 'optics',
    labels: ['rlnOpticsGroup', 'rlnOpticsGroupName', 'rlnTomoTiltSeriesPixelSize', 'rlnVoltage', 'rlnSphericalAberration', 'rlnAmplitudeContrast'],
    rows: [['1', optics.opticsGroupName, fixed(scale.tiltSeriesPixelSize), integerOrFixed(optics.voltage),
      integerOrFixed(optics.sphericalAberration), integerOrFixed(optics.amplitudeContrast)]],
  };
  const withClass = picks.some((p) => p.detail !== undefined);
  const labels = ['rlnTomoName', 'rlnCenteredCoordinateXAngst', 'rlnCenteredCoordinateYAngst', 'rlnCenteredCoordinateZAngst',
    'rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi', 'rlnOpticsGroup', 'rlnAutopickFigureOfMerit', ...(withClass ? ['rlnClassNumber'] : [])];
  const rows = picks.map((pick) => {
    const [x, y, z] = centredCoordinateAngst(pick.position, geometry.shape, scale, convention);
    const [rot, tilt, psi] = matrixToRelionEuler(pick.rotation);
    return [geometry.name, fixed(x, 3), fixed(y, 3), fixed(z, 3), fixed(rot), fixed(tilt), fixed(psi), '1', fixed(pick.score),
      ...(withClass ? [String((pick.detail ?? 0) + 1)] : [])];
  });
  return [opticsTable, { name: 'particles', labels, rows }];
}

/** A tomograms.star stub (data_global) naming the tomogram, its bin-1 size and pixel size, for RELION 5 imports. */
export function relion5TomogramsTable(geometry: TomogramGeometry, options: Relion5Options = {}): StarLoopTable {
  const optics = resolveOptics(options);
  const scale = resolveRelion5Scale(geometry, options);
  const [nz, ny, nx] = geometry.shape;
  const bin1 = (n: number): string => integerOrFixed(Math.round(n * scale.binning * 1000) / 1000, 3);
  return {
    name: 'global',
    labels: ['rlnTomoName', 'rlnVoltage', 'rlnSphericalAberration', 'rlnAmplitudeContrast', 'rlnTomoTiltSeriesPixelSize',
      'rlnTomoTomogramBinning', 'rlnTomoSizeX', 'rlnTomoSizeY', 'rlnTomoSizeZ'],
    rows: [[geometry.name, integerOrFixed(optics.voltage), integerOrFixed(optics.sphericalAberration), integerOrFixed(optics.amplitudeContrast),
      fixed(scale.tiltSeriesPixelSize), integerOrFixed(Math.round(scale.binning * 1e6) / 1e6), bin1(nx), bin1(ny), bin1(nz)]],
  };
}
