import type { Volume, Zyx } from '@tme/formats';
import * as native from '@tme/native';
import { seededRandom } from '@tme/rotations';

/**
 * Background normalisation: what a search does about features that score high for every rotation (membranes, carbon
 * edges, gold, ice).
 * - 'none': the plain best score.
 * - 'rotation-stats': per voxel the mean and σ of the score over all rotations, kept during the search (two float
 *   maps fused into the finalise pass); the normalised score is (best − mean) / σ, a z-score over rotations.
 * - 'random-phase': a second search with a phase-randomised template (same amplitude spectrum, random phases, seeded;
 *   masked like the template), after pytom / STOPGAP; the corrected score is best − the random-phase search's best
 *   (its own max over rotations) per voxel. Costs a second search.
 */
export type Background = 'none' | 'rotation-stats' | 'random-phase';
export const BACKGROUNDS: readonly Background[] = ['none', 'rotation-stats', 'random-phase'];

/** The maps a background option adds to a result. */
export type BackgroundMaps =
  | {
    kind: 'rotation-stats';
    /** Mean and σ of the score over the rotations searched, per voxel. */
    rotationMean: Volume;
    rotationStd: Volume;
    /** (best − mean) / σ per voxel; 0 where σ is 0 (flat voxels, no data). */
    normalised: Volume;
  }
  | {
    kind: 'random-phase';
    seed: number;
    /** The best score of the phase-randomised template per voxel (its own max over rotations). */
    randomPhaseScores: Volume;
    /** scores − randomPhaseScores. */
    corrected: Volume;
  };

/**
 * Mean, σ and z-score maps from per-voxel sums over `rotations` rotations, in place: `sum` becomes the mean and
 * `sumSq` σ (float64 arithmetic per voxel on the float32 sums).
 */
export function rotationStatsMaps(
  best: Volume, sum: Float32Array, sumSq: Float32Array, rotations: number, noData?: Uint8Array,
): Extract<BackgroundMaps, { kind: 'rotation-stats' }> {
  const normalised = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const m = (sum[i] as number) / rotations;
    const v = (sumSq[i] as number) / rotations - m * m;
    const s = v > 0 ? Math.sqrt(v) : 0;
    const none = noData?.[i] === 1;
    sum[i] = none ? 0 : m;
    sumSq[i] = none ? 0 : s;
    // σ² = E s² − m² from float32 sums is good to ~1e-6 m² (measured, native/src/match/job.h), so a σ under 1e-3 |m| is
    // no measured spread (a voxel that scores the same for every rotation): 0 there, not a z-score of rounding error.
    normalised[i] = !none && s > 0 && s > 1e-3 * Math.abs(m) ? ((best.data[i] as number) - m) / s : 0;
  }
  const like = (data: Float32Array): Volume => ({ data, shape: best.shape, voxelSize: best.voxelSize, origin: best.origin });
  return { kind: 'rotation-stats', rotationMean: like(sum), rotationStd: like(sumSq), normalised: like(normalised) };
}

/**
 * The template with its amplitude spectrum kept and every phase but the mean's replaced by a uniform random one
 * (seeded, so a run is reproducible). The inverse transform keeps a real volume: the half spectrum's Hermitian planes
 * (x = 0 and x = n/2) are read by the C2R as if symmetric, which changes their amplitudes slightly — a few % of the
 * coefficients, immaterial to a noise reference.
 */
export function phaseRandomised(template: Float32Array, shape: Zyx, seed: number): Float32Array {
  const spectrum = native.fftForward('cpu', template, shape, { threads: 1 });
  const random = seededRandom(seed);
  for (let k = 2; k < spectrum.length; k += 2) {
    const re = spectrum[k] as number;
    const im = spectrum[k + 1] as number;
    const amplitude = Math.hypot(re, im);
    const phase = 2 * Math.PI * random();
    spectrum[k] = amplitude * Math.cos(phase);
    spectrum[k + 1] = amplitude * Math.sin(phase);
  }
  return native.fftInverse('cpu', spectrum, shape, { threads: 1 });
}

/**
 * The noise model of a background map for the false-alarm threshold (@tme/peaks' ScoreStatistics), or undefined
 * where there is none to give.
 * - rotation-stats: at a voxel that holds only background, whatever its level and spread, the R scores over rotations
 *   have the voxel's own mean and σ, so (best − mean) / σ is the maximum of R standardised scores: the plain map's
 *   model with mean 0 and σ 1 (R rotations, the counted voxels). Like the plain one it treats the rotations as
 *   independent trials, which neighbouring rotations are not, so the threshold errs high (fewer false alarms).
 * - random-phase: the difference of two maxima has no such closed form; the caller's z-score threshold over the map
 *   applies instead.
 */
export function backgroundStatistics(
  kind: 'rotation-stats' | 'random-phase', rotations: number, voxels: number,
): { mean: number; std: number; rotations: number; voxels: number } | undefined {
  return kind === 'rotation-stats' ? { mean: 0, std: 1, rotations, voxels } : undefined;
}
