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
  /**
   * Mean and standard deviation of each rotation's scores (one entry per rotation), when the search recorded them.
   * The false-alarm model then sums each rotation's own Gaussian tail instead of one pooled Gaussian: scores whose
   * spread differs between rotations (cc and lcc, whose template norm changes with the rotation) are otherwise
   * dominated by the widest rotations' tails, and a pooled σ puts the threshold far too low.
   */
  perRotation?: { mean: ArrayLike<number>; std: ArrayLike<number> };
}

/**
 * The search statistics of a job record (job.json's `statistics`) or of a call report (its `searchStatistics`) as the
 * noise model wants them; undefined when absent or unusable. Tolerant of key spellings (voxelCount or voxels,
 * rotationCount or rotations, flat or nested per-rotation lists), which are taken only with one entry per rotation.
 */
export function statisticsFromJob(raw: unknown): ScoreStatistics | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const s = raw as Record<string, unknown>;
  const num = (...keys: string[]): number | undefined => {
    for (const k of keys) if (typeof s[k] === 'number' && Number.isFinite(s[k])) return s[k] as number;
    return undefined;
  };
  const mean = num('mean');
  const std = num('std');
  const rotations = num('rotationCount', 'rotations');
  const voxels = num('voxelCount', 'voxels');
  if (mean === undefined || std === undefined || rotations === undefined || voxels === undefined || !(std > 0)) return undefined;
  const count = num('count');
  const list = (v: unknown): number[] | undefined =>
    (Array.isArray(v) && v.length === rotations && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? v as number[] : undefined);
  // job.json spells the per-rotation lists flat; a call report (PeakCallReport.searchStatistics) nests them.
  const nested = typeof s['perRotation'] === 'object' && s['perRotation'] !== null ? s['perRotation'] as Record<string, unknown> : {};
  const perMean = list(s['perRotationMean']) ?? list(nested['mean']);
  const perStd = list(s['perRotationStd']) ?? list(nested['std']);
  return {
    mean, std, rotations, voxels, ...(count !== undefined ? { count } : {}),
    ...(perMean && perStd ? { perRotation: { mean: perMean, std: perStd } } : {}),
  };
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
  /** Where the threshold was raised near the faces (see CallPeaksOptions.faceThresholds): within `within` voxels of
   * a face, up to `highest` at `atDistance` voxels, where the best-score map's spread is `spreadRatio` × the
   * interior's; `thresholds` per distance 0 … within − 1. Absent when nothing was raised. */
  faces?: { within: number; highest: number; atDistance: number; spreadRatio: number; thresholds: number[] };
}

function checkStatistics(stats: ScoreStatistics): void {
  if (!Number.isFinite(stats.mean)) throw invalidOption('statistics.mean', 'finite number', stats.mean);
  if (!(Number.isFinite(stats.std) && stats.std > 0)) throw invalidOption('statistics.std', 'finite number > 0', stats.std);
  if (!(Number.isInteger(stats.rotations) && stats.rotations >= 1)) throw invalidOption('statistics.rotations', 'integer ≥ 1', stats.rotations);
  const per = stats.perRotation;
  if (per) {
    if (per.mean.length !== stats.rotations || per.std.length !== stats.rotations) {
      throw invalidOption('statistics.perRotation', `${stats.rotations} means and standard deviations (one per rotation)`, `${per.mean.length} and ${per.std.length}`);
    }
    for (let r = 0; r < stats.rotations; r++) {
      if (!(Number.isFinite(per.mean[r]) && Number.isFinite(per.std[r]) && (per.std[r] as number) >= 0)) {
        throw invalidOption('statistics.perRotation', 'finite means and standard deviations ≥ 0', `rotation ${r}: ${per.mean[r]} ± ${per.std[r]}`);
      }
    }
  }
}

/** Expected exceedances of `threshold` per voxel: Σ over rotations of each rotation's Gaussian tail. */
function tailPerVoxel(per: NonNullable<ScoreStatistics['perRotation']>, threshold: number): number {
  let sum = 0;
  for (let r = 0; r < per.mean.length; r++) {
    const m = per.mean[r] as number;
    const s = per.std[r] as number;
    sum += s > 0 ? 0.5 * erfc((threshold - m) / (Math.SQRT2 * s)) : (m >= threshold ? 1 : 0);
  }
  return sum;
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
  const per = stats.perRotation;
  if (!per) return stats.mean + Math.SQRT2 * stats.std * erfcinv(p);
  // Σ_r voxels·P_r(score > t) = nFalsePositives is decreasing in t and lies between the smallest and the largest
  // of the rotations' own cut-offs at nFalsePositives / (voxels × rotations) each: bisection.
  let lo = Infinity;
  let hi = -Infinity;
  const q = Math.SQRT2 * erfcinv(p);
  for (let r = 0; r < stats.rotations; r++) {
    const t = (per.mean[r] as number) + (per.std[r] as number) * q;
    lo = Math.min(lo, t);
    hi = Math.max(hi, t);
  }
  if (!(hi > lo)) return lo;
  for (let i = 0; i < 100 && hi - lo > 1e-12 * Math.max(1, Math.abs(hi)); i++) {
    const mid = 0.5 * (lo + hi);
    if (voxels * tailPerVoxel(per, mid) > nFalsePositives) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** The inverse: how many of `voxels × rotations` Gaussian noise scores are expected at or above `threshold`. */
export function expectedFalsePositives(stats: ScoreStatistics, threshold: number, voxels: number): number {
  checkStatistics(stats);
  if (threshold === -Infinity) return voxels * stats.rotations;
  if (stats.perRotation) return voxels * tailPerVoxel(stats.perRotation, threshold);
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
