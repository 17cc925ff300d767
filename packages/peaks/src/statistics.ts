import { invalidOption } from '@tme/formats';
import { erfc, erfcinv } from './erfc';

/**
 * The score statistics a search tracked over ALL scores of ALL rotations (not only the best-score map), as the
 * engine writes them into job.json. They model the noise that a false alarm comes from.
 */
export interface ScoreStatistics {
  /** Mean of every score of every rotation. */
  mean: number;
  /** Population standard deviation of every score of every rotation (σ of the noise model). */
  std: number;
  /** Number of rotations searched. */
  rotations: number;
  /** Number of voxels scored per rotation. */
  voxels: number;
  /** voxels × rotations, when the engine recorded it (informative; recomputed from the parts when absent). */
  count?: number;
}

/** How the score threshold of a call was chosen, for the report and the picks table. */
export interface ThresholdReport {
  /** 'false-alarm': from the expected number of false positives; 'z-score': mean + z·σ of the best-score map;
   * 'min-score': given by the user; 'none': no threshold (top N only). */
  kind: 'false-alarm' | 'z-score' | 'min-score' | 'none';
  /** The score cut-off (scores ≥ value are kept); −∞ for 'none'. */
  value: number;
  /** One sentence: which threshold and why. */
  reason: string;
  /** Expected false positives at this cut-off under the Gaussian noise model, or null without statistics. */
  expectedFalsePositives: number | null;
  /** voxels × rotations of the calling region (the number of independent trials of the model), or null. */
  searchSpace: number | null;
  /** Voxels of the calling region (after edge and mask exclusion). */
  regionVoxels: number;
}

function checkStatistics(stats: ScoreStatistics): void {
  if (!Number.isFinite(stats.mean)) throw invalidOption('statistics.mean', 'finite number', stats.mean);
  if (!(Number.isFinite(stats.std) && stats.std > 0)) throw invalidOption('statistics.std', 'finite number > 0', stats.std);
  if (!(Number.isInteger(stats.rotations) && stats.rotations >= 1)) throw invalidOption('statistics.rotations', 'integer ≥ 1', stats.rotations);
}

/**
 * The false-alarm cut-off of Rickgauer et al. 2017 as pytom-match-pick uses it: with N = voxels × rotations
 * independent Gaussian scores of mean μ and spread σ, the cut-off t with N·P(score > t) = nFalsePositives is
 * t = μ + √2·σ·erfcinv(2·nFalsePositives/N). pytom writes it without μ (its scores have μ ≈ 0); keeping μ makes
 * it right for scores with an offset and identical otherwise. `voxels` is the calling region's voxel count
 * (pytom #332: the masked voxels, not the whole tomogram).
 */
export function falseAlarmThreshold(stats: ScoreStatistics, nFalsePositives: number, voxels: number): number {
  checkStatistics(stats);
  if (!(Number.isFinite(nFalsePositives) && nFalsePositives > 0)) throw invalidOption('falseAlarms', 'number > 0', nFalsePositives);
  if (!(Number.isInteger(voxels) && voxels >= 1)) throw invalidOption('voxels', 'integer ≥ 1', voxels);
  const searchSpace = voxels * stats.rotations;
  const p = (2 * nFalsePositives) / searchSpace;
  if (p >= 2) throw invalidOption('falseAlarms', `number < ${searchSpace} (the voxels × rotations searched)`, nFalsePositives);
  return stats.mean + Math.SQRT2 * stats.std * erfcinv(p);
}

/** The inverse: how many of `voxels × rotations` Gaussian noise scores are expected at or above `threshold`. */
export function expectedFalsePositives(stats: ScoreStatistics, threshold: number, voxels: number): number {
  checkStatistics(stats);
  if (threshold === -Infinity) return voxels * stats.rotations;
  return voxels * stats.rotations * 0.5 * erfc((threshold - stats.mean) / (Math.SQRT2 * stats.std));
}

/** Moments of a map inside a region, accumulated in float64 (blocked two-pass so offsets do not cost digits). */
export interface MapMoments {
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
}

export function combineMoments(count: number, sum: number, sumSq: number, min: number, max: number): MapMoments {
  if (count === 0) return { count: 0, mean: NaN, std: NaN, min: NaN, max: NaN };
  const mean = sum / count;
  return { count, mean, std: Math.sqrt(Math.max(0, sumSq / count - mean * mean)), min, max };
}
