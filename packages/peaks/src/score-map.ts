import type { VolumeData, Zyx } from '@tme/formats';
import { TmeError, invalidOption, voxelCount } from '@tme/formats';
import type { ScoreStatistics } from './statistics';

/**
 * What a template-matching search leaves behind, in memory: the best score and the index of the best rotation
 * per voxel (both (z, y, x), x fastest), the rotation table, and the statistics of all scores.
 */
export interface ScoreMaps {
  /** Best score per voxel over all rotations. NaN = not scored. */
  scores: Float32Array;
  /** 0-based index into `rotations` of the best rotation per voxel; < 0 = not scored (the engine writes −1). */
  rotationIndices: Int32Array | Float32Array;
  /** (z, y, x) voxels. */
  shape: Zyx;
  /** Rotation matrices, 9 per rotation (row-major, xyz frame, active template→tomogram). */
  rotations: Float64Array;
  /** Statistics of every score of every rotation (job.json); needed for the false-alarm threshold. */
  statistics?: ScoreStatistics;
  /** Target mask, same shape: only voxels with mask ≥ 0.5 are called and counted in the search space. */
  mask?: VolumeData;
  /** Å per voxel, (z, y, x). Default 1. */
  voxelSize?: Zyx;
  /** Å position of voxel (0, 0, 0), (z, y, x). Default 0. */
  origin?: Zyx;
  /** Template box (z, y, x) voxels: sets the default minimum distance. */
  templateShape?: Zyx;
}

/** Checks lengths and shapes once, so the hot loops can index without checks. */
export function checkScoreMaps(maps: ScoreMaps): void {
  const { shape } = maps;
  if (!(shape.length === 3 && shape.every((n) => Number.isInteger(n) && n > 0))) {
    throw invalidOption('shape', 'three positive integers (z, y, x)', shape);
  }
  const n = voxelCount(shape);
  if (n >= 2 ** 32) throw new TmeError('ERR_TME_UNSUPPORTED_SIZE', `score maps of ${n} voxels (≥ 2^32) are not supported`);
  if (maps.scores.length !== n) {
    throw new TmeError('ERR_TME_MISMATCH', `the score map has ${maps.scores.length} values but the shape (${shape.join(', ')}) needs ${n}`);
  }
  if (maps.rotationIndices.length !== n) {
    throw new TmeError('ERR_TME_MISMATCH', `the rotation-index map has ${maps.rotationIndices.length} values but the shape (${shape.join(', ')}) needs ${n}`);
  }
  if (maps.mask !== undefined && maps.mask.length !== n) {
    throw new TmeError('ERR_TME_MISMATCH', `the mask has ${maps.mask.length} values but the score map has ${n}`);
  }
  if (maps.rotations.length % 9 !== 0 || maps.rotations.length === 0) {
    throw new TmeError('ERR_TME_MISMATCH', `the rotation table has ${maps.rotations.length} numbers, not a positive multiple of 9`);
  }
}
