import type { Zyx } from '@tme/formats';
import { TmeError, invalidOption } from '@tme/formats';
import { matrixFrom, matrixToPytmeEuler, matrixToRelionEuler } from '@tme/rotations';
import type { EulerTriple } from '@tme/rotations';
import { collectCandidates } from './candidates';
import { faceThresholds, type FaceThresholds } from './faces';
import { localSnr } from './local-snr';
import { marginSlabs, regionFor, regionMoments } from './region';
import type { ScoreMaps } from './score-map';
import { checkScoreMaps } from './score-map';
import { selectPeaks } from './select';
import type { MapMoments, ThresholdReport } from './statistics';
import { expectedFalsePositives, falseAlarmThreshold } from './statistics';
import { subvoxelShift } from './subvoxel';

export interface CallPeaksOptions {
  /** Most picks returned. Default 1000. */
  numPeaks?: number;
  /** Minimum Euclidean distance between picks, voxels: a pick closer than this to a higher pick is dropped.
   * Default: half the smallest template box edge (floor), or 5 without a template shape. */
  minDistance?: number;
  /** The same in Å (converted with the voxel size, which must then be isotropic). Overrides minDistance. */
  minDistanceAngstrom?: number;
  /** Keep scores ≥ minScore. At most one of minScore, falseAlarms, zScore. */
  minScore?: number;
  /** Threshold such that this many false positives are expected in the calling region under the Gaussian
   * noise model of the search statistics. Default 1 when statistics exist and no other threshold is given. */
  falseAlarms?: number;
  /** Keep scores ≥ mean + zScore·std of the best-score map inside the calling region. */
  zScore?: number;
  /** Drop scores > maxScore (e.g. gold beads). Default none. */
  maxScore?: number;
  /** Margin at the volume faces not called, voxels, per axis (z, y, x) or one number. Default 0: every voxel
   * where the score is defined is called (the search pads the target, so a particle cut by a face still scores). */
  edge?: number | Zyx;
  /** Candidates must be 26-neighbour local maxima. Default true (no picks on the shoulders of higher peaks). */
  localMaxima?: boolean;
  /** Parabolic sub-voxel refinement of each pick's position. Default false. */
  subvoxel?: boolean;
  /** Shell [inner, outer] radii in voxels for the local SNR. Default [max(2, ⌈d/2⌉), max(inner + 2, d)],
   * d = minDistance. */
  snrShell?: readonly [number, number];
  /** Template index written as `detail`. Default 0. */
  template?: number;
  /** A search of several templates in one pass: where each template's rotations start in the rotation table
   *  (ascending, from 0). A pick's template is then the one its rotation belongs to, and `template` is not given. */
  templateStarts?: readonly number[];
  /** With templateStarts: call only the voxels this template won (per-template picks). Default: every voxel, so
   *  that one particle gives one pick whichever templates score high on it. */
  onlyTemplate?: number;
  /** Raise a false-alarm or z-score threshold within half a template box of a face (of the volume or of a region
   * without data) where the best-score map is wider there than inside, so noise peaks are as rare at the faces as
   * inside (see faces.ts). Needs the template shape. Default true. */
  faceThresholds?: boolean;
}

/** One pick. Positions (z, y, x) voxels inside the score map (0-based), rotation active template→tomogram. */
export interface Pick {
  /** Voxel of the maximum. */
  position: Zyx;
  /** Sub-voxel offset of the peak from `position`, voxels, each in [−0.5, 0.5]; zeros without `subvoxel`. */
  shift: Zyx;
  /** origin + (position + shift)·voxelSize, Å, (z, y, x). */
  positionAngstrom: Zyx;
  score: number;
  rotationIndex: number;
  /** Row-major 3×3, xyz frame. */
  rotation: Float64Array;
  /** pyTME orientations columns (euler_x, euler_y, euler_z), degrees. */
  pytmeEuler: EulerTriple;
  /** RELION (rot, tilt, psi), degrees. */
  relionEuler: EulerTriple;
  /** (score − mean)/std of the best-score map inside the calling region (the scale of --z-score). */
  zScore: number;
  /** (score − μ)/σ with μ, σ over all scores of all rotations (pytom's LCCmax/SearchStd); NaN without statistics. */
  searchSigmas: number;
  /** Local SNR against a shell of the best-score map around the pick (see localSnr). */
  localSnr: number;
  /** Template index (the TSV `detail`). */
  template: number;
}

export interface PeakSet {
  picks: Pick[];
  threshold: ThresholdReport;
  /** Best-score map moments inside the calling region. */
  map: MapMoments;
  /** Number of candidate voxels above the threshold that competed in the suppression. */
  candidates: number;
  /** Candidates (local maxima above the threshold, inside the mask) that lay in the edge margin and were not
   * called; 0 when the edge is 0. */
  edgeDropped: number;
  /** Effective settings. */
  minDistance: number;
  edge: Zyx;
  numPeaks: number;
  maxScore: number;
  snrShell: [number, number];
  voxelSize: Zyx;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function resolveEdge(edge: number | Zyx | undefined): Zyx {
  if (edge === undefined) return [0, 0, 0];
  const e: Zyx = typeof edge === 'number' ? [edge, edge, edge] : edge;
  if (!e.every((v) => Number.isInteger(v) && v >= 0)) throw invalidOption('edge', 'integer ≥ 0 (voxels)', typeof edge === 'number' ? edge : `[${e.join(', ')}]`);
  return e;
}

function resolveMinDistance(options: CallPeaksOptions, voxelSize: Zyx, templateShape: Zyx | undefined): number {
  if (options.minDistanceAngstrom !== undefined) {
    const a = options.minDistanceAngstrom;
    if (!(isFiniteNumber(a) && a >= 0)) throw invalidOption('minDistanceAngstrom', 'number ≥ 0 (Å)', a);
    const v = voxelSize[0];
    if (!voxelSize.every((s) => Math.abs(s - v) <= 1e-3 * v)) {
      throw new TmeError('ERR_TME_UNSUPPORTED', `a minimum distance in Å needs isotropic voxels, but the voxel size is (${voxelSize.join(', ')}) Å; give it in voxels`);
    }
    return a / v;
  }
  if (options.minDistance !== undefined) {
    if (!(isFiniteNumber(options.minDistance) && options.minDistance >= 0)) throw invalidOption('minDistance', 'number ≥ 0 (voxels)', options.minDistance);
    return options.minDistance;
  }
  return templateShape ? Math.floor(Math.min(...templateShape) / 2) : 5;
}

/**
 * Calls peaks on a best-score map: the threshold first (it filters BEFORE the top-N cut, unlike pyTME's
 * postprocess), then local maxima in the calling region (edge margin, mask, scored voxels), then exact greedy
 * non-maximum suppression with minDistance, then the top numPeaks. Memory: typed arrays for the candidates only.
 */
export function callPeaks(maps: ScoreMaps, options: CallPeaksOptions = {}): PeakSet {
  checkScoreMaps(maps);
  const { scores, rotationIndices: rot, shape, statistics } = maps;
  const voxelSize: Zyx = maps.voxelSize ?? [1, 1, 1];
  const origin: Zyx = maps.origin ?? [0, 0, 0];
  const numPeaks = options.numPeaks ?? 1000;
  if (!(Number.isInteger(numPeaks) && numPeaks >= 1)) throw invalidOption('numPeaks', 'integer ≥ 1', numPeaks);
  const maxScore = options.maxScore ?? Infinity;
  if (typeof maxScore !== 'number' || Number.isNaN(maxScore)) throw invalidOption('maxScore', 'number', maxScore);
  const given = (['minScore', 'falseAlarms', 'zScore'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1) throw invalidOption('threshold', 'at most one of minScore, falseAlarms, zScore', given.join(' and '));
  const template = options.template ?? 0;
  if (!(Number.isInteger(template) && template >= 0)) throw invalidOption('template', 'integer ≥ 0', template);
  const starts = options.templateStarts;
  if (starts !== undefined) {
    if (options.template !== undefined) throw invalidOption('template', 'no single template with templateStarts', template);
    if (!(starts.length >= 1 && starts[0] === 0 && starts.every((v, k) => Number.isInteger(v) && (k === 0 || v > (starts[k - 1] as number))))) {
      throw invalidOption('templateStarts', 'ascending rotation indices from 0', starts.join(','));
    }
  }
  const templateOf = (rotation: number): number => {
    if (starts === undefined) return template;
    let k = 0;
    while (k + 1 < starts.length && (starts[k + 1] as number) <= rotation) k++;
    return k;
  };
  const only = options.onlyTemplate;
  if (only !== undefined && !(starts !== undefined && Number.isInteger(only) && only >= 0 && only < starts.length)) {
    throw invalidOption('onlyTemplate', `a template index from 0 to ${starts === undefined ? 0 : starts.length - 1} of a several-template search`, only);
  }
  // Per-template picks: the calling region loses the voxels another template won.
  const mask = only === undefined ? maps.mask : Float32Array.from({ length: scores.length }, (_, v) => {
    const r = rot[v] as number;
    return r >= 0 && templateOf(r) === only && (!maps.mask || (maps.mask[v] as number) >= 0.5) ? 1 : 0;
  });
  const edge = resolveEdge(options.edge);
  const minDistance = resolveMinDistance(options, voxelSize, maps.templateShape);
  const inner = Math.max(2, Math.ceil(minDistance / 2));
  const snrShell: [number, number] = options.snrShell ? [options.snrShell[0], options.snrShell[1]] : [inner, Math.max(inner + 2, minDistance)];
  if (!(snrShell[0] >= 0 && snrShell[1] >= snrShell[0])) throw invalidOption('snrShell', '[inner, outer] with 0 ≤ inner ≤ outer', `[${snrShell.join(', ')}]`);

  const region = regionFor(shape, edge, mask);
  const map = regionMoments(scores, rot, region);
  const threshold = chooseThreshold(options, map, statistics);
  if (threshold.value > maxScore) throw invalidOption('maxScore', `number ≥ the threshold ${threshold.value}`, maxScore);

  const localMaxima = options.localMaxima ?? true;
  let faces: FaceThresholds | undefined;
  if ((options.faceThresholds ?? true) && maps.templateShape && (threshold.kind === 'false-alarm' || threshold.kind === 'z-score')) {
    faces = faceThresholds(scores, rot, region, threshold.value, Math.floor(Math.max(...maps.templateShape) / 2));
    let raised = 0;
    let at = 0;
    for (let d = 0; d < faces.bins; d++) if (faces.thresholds[d]! - threshold.value > raised) { raised = faces.thresholds[d]! - threshold.value; at = d; }
    if (raised > 0) {
      threshold.faces = {
        within: faces.bins, highest: faces.thresholds[at]!, atDistance: at, spreadRatio: faces.spreadRatio[at]!,
        thresholds: Array.from(faces.thresholds.subarray(0, faces.bins)),
      };
    }
  }
  const cands = collectCandidates(scores, rot, region, threshold.value, maxScore, localMaxima, faces);
  let edgeDropped = 0;
  for (const slab of marginSlabs(region)) edgeDropped += collectCandidates(scores, rot, slab, threshold.value, maxScore, localMaxima, faces).count;
  const accepted = selectPeaks(cands, shape, minDistance, numPeaks);

  const nRotations = maps.rotations.length / 9;
  const [, ny, nx] = shape;
  const picks: Pick[] = [];
  for (const v of accepted) {
    const z = Math.floor(v / (ny * nx));
    const y = Math.floor((v - z * ny * nx) / nx);
    const x = v - (z * ny + y) * nx;
    const rotationIndex = rot[v]!;
    if (!Number.isInteger(rotationIndex) || rotationIndex >= nRotations) {
      throw new TmeError('ERR_TME_MISMATCH', `the rotation-index map holds ${rotationIndex} at (z, y, x) = (${z}, ${y}, ${x}) but the rotation table has ${nRotations} rotations`);
    }
    const rotation = matrixFrom(maps.rotations, rotationIndex * 9);
    const shift: Zyx = options.subvoxel ? subvoxelShift(scores, shape, z, y, x) : [0, 0, 0];
    const score = scores[v]!;
    picks.push({
      position: [z, y, x],
      shift,
      positionAngstrom: [
        origin[0] + (z + shift[0]) * voxelSize[0],
        origin[1] + (y + shift[1]) * voxelSize[1],
        origin[2] + (x + shift[2]) * voxelSize[2],
      ],
      score,
      rotationIndex,
      rotation,
      pytmeEuler: matrixToPytmeEuler(rotation),
      relionEuler: matrixToRelionEuler(rotation),
      zScore: (score - map.mean) / map.std,
      searchSigmas: statistics ? (score - statistics.mean) / statistics.std : NaN,
      localSnr: localSnr(scores, rot, shape, [z, y, x], score, snrShell[0], snrShell[1]),
      template: templateOf(rotationIndex),
    });
  }
  return { picks, threshold, map, candidates: cands.count, edgeDropped, minDistance, edge, numPeaks, maxScore, snrShell, voxelSize };
}

function chooseThreshold(options: CallPeaksOptions, map: MapMoments, statistics: ScoreMaps['statistics']): ThresholdReport {
  const regionVoxels = map.count;
  const searchSpace = statistics ? regionVoxels * statistics.rotations : null;
  const expected = (t: number): number | null => (statistics && regionVoxels > 0 ? expectedFalsePositives(statistics, t, regionVoxels) : null);
  if (options.minScore !== undefined) {
    if (!isFiniteNumber(options.minScore)) throw invalidOption('minScore', 'finite number', options.minScore);
    return { kind: 'min-score', value: options.minScore, reason: `minimum score ${options.minScore} given`, expectedFalsePositives: expected(options.minScore), searchSpace, regionVoxels };
  }
  if (options.zScore !== undefined) {
    if (!isFiniteNumber(options.zScore)) throw invalidOption('zScore', 'finite number', options.zScore);
    if (!(map.std > 0)) throw new TmeError('ERR_TME_INVALID_OPTION', 'a z-score threshold needs a best-score map with spread inside the calling region, but it is constant or empty');
    const value = map.mean + options.zScore * map.std;
    return {
      kind: 'z-score', value,
      reason: `z-score ${options.zScore} given: mean ${fmt(map.mean)} + ${options.zScore} × std ${fmt(map.std)} of the best-score map over ${regionVoxels} voxels`,
      expectedFalsePositives: expected(value), searchSpace, regionVoxels,
    };
  }
  const nFp = options.falseAlarms ?? (statistics ? 1 : undefined);
  if (nFp === undefined) {
    return { kind: 'none', value: -Infinity, reason: 'no threshold given and no search statistics to derive one: top picks by score only', expectedFalsePositives: null, searchSpace, regionVoxels };
  }
  if (!statistics) throw new TmeError('ERR_TME_INVALID_OPTION', 'a false-alarm threshold needs the search statistics (mean, std, rotations of all scores)');
  if (regionVoxels === 0) throw new TmeError('ERR_TME_INVALID_OPTION', 'the calling region is empty (edge margin and mask leave no scored voxel)');
  const value = falseAlarmThreshold(statistics, nFp, regionVoxels);
  const why = options.falseAlarms === undefined ? 'default: no threshold given and search statistics exist' : `${nFp} false alarm(s) requested`;
  return {
    kind: 'false-alarm', value,
    reason: statistics.perRotation
      ? `${why}: Σ over ${statistics.rotations} rotations of each one's Gaussian tail (its own μ and σ) × ${regionVoxels} voxels = ${nFp}`
      : `${why}: μ ${fmt(statistics.mean)} + √2·σ ${fmt(statistics.std)}·erfcinv(2·${nFp}/(${regionVoxels} voxels × ${statistics.rotations} rotations))`,
    expectedFalsePositives: nFp, searchSpace, regionVoxels,
  };
}

function fmt(v: number): string {
  return Number(v.toPrecision(6)).toString();
}
