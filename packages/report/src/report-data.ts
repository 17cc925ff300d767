import type { Zyx } from '@tme/formats';
import type { VolumePreview } from './volume-preview';

/** One pick as the page shows it. */
export interface ReportPick {
  /** Row of the picks table (0 = best). */
  rank: number;
  /** Position in voxels of the score map, sub-voxel shift included (x the fastest MRC axis). */
  x: number;
  y: number;
  z: number;
  /** tme's RELION ZYZ angles (rot, tilt, psi), degrees: the refined orientation when the run refined it. */
  rot: number;
  tilt: number;
  psi: number;
  score: number;
  /** σ of the best-score map above its mean inside the calling region; null when the table lacks it. */
  zScore: number | null;
  /** Local SNR against a shell around the pick; null when the table lacks it. */
  localSnr: number | null;
  /** Score of the refined orientation, and how far refinement turned it (degrees); null without refinement. */
  refinedScore: number | null;
  angleChange: number | null;
  /** Where the pick's rotation sends the template's z axis: (longitude, latitude) in degrees. */
  direction: [number, number];
  /** Against the truth file: the particle it found (index into truth), how far (voxels) and how far off its
   * rotation is (degrees); null for a false positive; absent without a truth file. */
  truth?: { index: number; distance: number; angularError: number } | null;
}

/** The score histogram with the noise model and the threshold of the peak call. */
export interface ReportHistogram {
  /** bins + 1 edges, the counts of the best-score map in each, and the fitted Gaussian's counts. */
  edges: number[];
  counts: number[];
  fitted: number[];
  fit: { mean: number; std: number; method: string };
  /** The call's cut-off and how it was chosen; null when no call is recorded (or it had no threshold). */
  threshold: number | null;
  thresholdKind: string | null;
  reason: string | null;
  /** Expected false positives at the threshold over regionVoxels, from the search's noise model. */
  expectedFalsePositives: number | null;
  regionVoxels: number | null;
  /** Expected false positives at or above each score (the search's noise model over the calling region): what a
   * threshold there would let through. Null without search statistics. */
  falsePositiveCurve: Array<[number, number]> | null;
  /** Where the histogram comes from: the call's report, or the score map when the folder has none. (Either way it is
   * of the map in ReportData.scoresFile.) */
  source: 'call' | 'scores';
}

/** The against-truth summary (`--truth`). */
export interface ReportTruth {
  file: string;
  /** Picks within this many voxels of a true particle count as finding it (nearest unclaimed, best pick first). */
  maxDistance: number;
  truthCount: number;
  pickCount: number;
  matched: number;
  recall: number;
  precision: number;
  /** Median angle between the matched picks' rotations and the truth, degrees; null without matches. */
  medianAngularError: number | null;
  /** Every true particle (voxels) and whether a pick found it. */
  particles: Array<{ x: number; y: number; z: number; found: boolean }>;
}

/** Everything the page draws, as JSON inside it. */
export interface ReportData {
  title: string;
  /** The job folder, absolute. */
  jobDir: string;
  createdAt: string;
  tmeVersion: string;
  /** Volume shape (z, y, x) and voxel size (Å, z y x). */
  shape: Zyx;
  voxelSize: Zyx;
  /** Radius of a pick's marker in voxels (a third of the template box). */
  markerRadius: number;
  tomogram: { preview: VolumePreview; file: string } | { missing: string; file: string | null };
  /** The map the peaks were called on: scores.mrc (the best score), or the job's --background map. */
  scores: VolumePreview;
  scoresFile: string;
  picks: ReportPick[];
  /** The file the picks came from; null with the reason when there is none. */
  picksFile: string | null;
  picksMissing: string | null;
  histogram: ReportHistogram;
  angles: {
    /** Distinct directions of the template's z axis over the searched rotations (at most a few thousand). */
    sampling: Array<[number, number]>;
    rotations: number;
    symmetry: string | null;
    angularStep: number | null;
    /** Largest angle from any orientation to the nearest searched rotation: the sampling's bound or measured value. */
    covering: number | null;
    coveringSource: 'bound' | 'measured' | null;
  };
  truth: ReportTruth | null;
  /** The job as label → value rows (inputs, parameters, device, rotations, timings, version). */
  job: Array<[string, string]>;
  warnings: string[];
}
