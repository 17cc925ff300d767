import type { Pick, PeakSet } from './call-peaks';
import type { ScoreHistogram } from './histogram';
import { formatFloat32 } from './orientations-tsv';
import type { RefinedOrientation } from './refine';
import type { MapMoments, ScoreStatistics, ThresholdReport } from './statistics';

/** Columns of the details table (one row per pick, same order as the orientations TSV). */
export const DETAILS_HEADER = [
  'rank', 'x', 'y', 'z', 'shift_x', 'shift_y', 'shift_z', 'x_A', 'y_A', 'z_A', 'score', 'rotation_index',
  'euler_x', 'euler_y', 'euler_z', 'rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi',
  'z_score', 'search_sigmas', 'local_snr', 'template',
  'refined_score', 'refined_rot', 'refined_tilt', 'refined_psi', 'refined_angle_change', 'relion_box_outside',
].join('\t');

function num(v: number, digits = 6): string {
  if (!Number.isFinite(v)) return 'NaN';
  return String(Number(v.toFixed(digits)) || 0);
}

/**
 * The per-pick table tme writes next to the orientations TSV (`<name>.details.tsv`): integer voxel (x, y, z),
 * sub-voxel shift, position in Å (origin + voxel·size), score, rotation index, pyTME and RELION angles, z-score
 * (best-score map), σ above the search noise, local SNR, template, the orientation refinement when done, and — when
 * RELION subtomograms were cut (tme run) — the fraction of the pick's box outside the tomogram (0: inside; > 0: the
 * box crosses a face and was filled; empty: no box, or the pick was skipped).
 */
export function formatPicksDetailsTsv(
  picks: readonly Pick[], refined?: readonly (RefinedOrientation | undefined)[], boxOutside?: readonly number[],
): string {
  const lines = [DETAILS_HEADER];
  picks.forEach((p, k) => {
    const r = refined?.[k];
    lines.push([
      String(k), String(p.position[2]), String(p.position[1]), String(p.position[0]),
      num(p.shift[2], 4), num(p.shift[1], 4), num(p.shift[0], 4),
      num(p.positionAngstrom[2], 3), num(p.positionAngstrom[1], 3), num(p.positionAngstrom[0], 3),
      formatFloat32(p.score), String(p.rotationIndex),
      num(p.pytmeEuler[0], 5), num(p.pytmeEuler[1], 5), num(p.pytmeEuler[2], 5),
      num(p.relionEuler[0], 5), num(p.relionEuler[1], 5), num(p.relionEuler[2], 5),
      num(p.zScore, 4), num(p.searchSigmas, 4), num(p.localSnr, 4), String(p.template),
      r ? formatFloat32(r.score) : '', r ? num(r.relionEuler[0], 5) : '', r ? num(r.relionEuler[1], 5) : '',
      r ? num(r.relionEuler[2], 5) : '', r ? num(r.angularChange, 4) : '',
      boxOutside !== undefined && Number.isFinite(boxOutside[k]) ? num(boxOutside[k] as number, 4) : '',
    ].join('\t'));
  });
  return `${lines.join('\n')}\n`;
}

/** The call's summary as plain JSON (the CLI writes it as `<name>.report.json`): threshold, map, settings. */
export function peakSetSummary(set: PeakSet): PeakSetSummary {
  const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return {
    threshold: { ...set.threshold, value: finite(set.threshold.value) },
    bestScoreMap: set.map,
    candidates: set.candidates,
    edgeDropped: set.edgeDropped,
    picks: set.picks.length,
    settings: {
      numPeaks: set.numPeaks, minDistanceVoxels: set.minDistance, edgeVoxels: set.edge,
      maxScore: finite(set.maxScore), snrShellVoxels: set.snrShell, voxelSize: set.voxelSize,
    },
  };
}

/** peakSetSummary's shape: JSON has no ±Infinity, so an absent threshold or score cap is null. */
export interface PeakSetSummary {
  threshold: Omit<ThresholdReport, 'value'> & { value: number | null };
  bestScoreMap: MapMoments;
  candidates: number;
  edgeDropped: number;
  picks: number;
  settings: {
    numPeaks: number; minDistanceVoxels: number; edgeVoxels: PeakSet['edge']; maxScore: number | null;
    snrShellVoxels: PeakSet['snrShell']; voxelSize: PeakSet['voxelSize'];
  };
}

/**
 * `<name>.report.json`, written next to the picks by `tme peaks` and `tme run`: the call's summary, the noise model
 * it used, the best-score histogram with its fitted noise model, and (tme run) the warnings the run
 * printed and the seconds each step after the match took. `tme report` rebuilds its page from it.
 */
export interface PeakCallReport extends PeakSetSummary {
  /** The job folder, absolute. */
  job: string;
  /** The map the peaks were called on, in the job folder: scores.mrc, or the map of the job's --background option. */
  scores: string;
  searchStatistics: ScoreStatistics | null;
  histogram: {
    edges: number[]; counts: number[]; fitted: number[]; mean: number; std: number;
    fit: ScoreHistogram['fit']; threshold: number | null;
  };
  /** What the run said on its warning channel (input header doubts, a resume without checkpoint). */
  warnings?: string[];
  /** Milliseconds of the steps after the match: peak calling, orientation refinement, exports. */
  timings?: { peaksMs: number; refineMs?: number; exportMs: number };
}

/** The report of one call on `scores` (a map of the job folder `job`), ready for JSON.stringify. */
export function peakCallReport(
  job: string, scores: string, set: PeakSet, histogram: ScoreHistogram, statistics: ScoreStatistics | undefined,
  extra: { warnings?: string[]; timings?: PeakCallReport['timings'] } = {},
): PeakCallReport {
  // Typed arrays would stringify as objects: the per-rotation lists go out as plain arrays.
  const per = statistics?.perRotation;
  return {
    job, scores, ...peakSetSummary(set),
    searchStatistics: statistics
      ? { ...statistics, ...(per ? { perRotation: { mean: Array.from(per.mean), std: Array.from(per.std) } } : {}) } : null,
    histogram: {
      edges: Array.from(histogram.edges), counts: Array.from(histogram.counts), fitted: Array.from(histogram.fitted),
      mean: histogram.mean, std: histogram.std, fit: histogram.fit, threshold: histogram.threshold,
    },
    ...extra,
  };
}
