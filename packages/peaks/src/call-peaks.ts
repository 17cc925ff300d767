import type { Zyx } from '@tme/formats';
import { TmeError, invalidOption } from '@tme/formats';
import { matrixFrom, matrixToPytmeEuler, matrixToRelionEuler } from '@tme/rotations';
import type { EulerTriple } from '@tme/rotations';
import { collectCandidates } from './candidates';
import { FaceSamples, faceDistances, faceThresholds, type FaceThresholds } from './faces';
import { HISTOGRAM_BLOCK, scoreHistogramOfBlocks, type ScoreHistogram } from './histogram';
import { localSnr } from './local-snr';
import { addRegionMoments, finishMoments, marginSlabs, newMoments, regionFor, regionMoments, type Region } from './region';
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

/** The checked options of a call, shared by callPeaks and callPeaksBySlabs. */
interface CallSettings {
  numPeaks: number;
  maxScore: number;
  templateOf: (rotation: number) => number;
  only: number | undefined;
  edge: Zyx;
  minDistance: number;
  snrShell: [number, number];
  voxelSize: Zyx;
  origin: Zyx;
}

function callSettings(maps: { voxelSize?: Zyx; origin?: Zyx; templateShape?: Zyx }, options: CallPeaksOptions): CallSettings {
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
  const edge = resolveEdge(options.edge);
  const minDistance = resolveMinDistance(options, voxelSize, maps.templateShape);
  const inner = Math.max(2, Math.ceil(minDistance / 2));
  const snrShell: [number, number] = options.snrShell ? [options.snrShell[0], options.snrShell[1]] : [inner, Math.max(inner + 2, minDistance)];
  if (!(snrShell[0] >= 0 && snrShell[1] >= snrShell[0])) throw invalidOption('snrShell', '[inner, outer] with 0 ≤ inner ≤ outer', `[${snrShell.join(', ')}]`);
  return { numPeaks, maxScore, templateOf, only, edge, minDistance, snrShell, voxelSize, origin };
}

/** Per-template picks: the calling mask of `only` (the voxels its template won, inside the mask). */
function templateMask(s: CallSettings, rot: Int32Array | Float32Array, mask: ScoreMaps['mask'] | undefined): ScoreMaps['mask'] | undefined {
  const only = s.only;
  if (only === undefined) return mask;
  return Float32Array.from({ length: rot.length }, (_, v) => {
    const r = rot[v] as number;
    return r >= 0 && s.templateOf(r) === only && (!mask || (mask[v] as number) >= 0.5) ? 1 : 0;
  });
}

/** The kind of threshold chooseThreshold will take (known before the map's moments are). */
function thresholdKind(options: CallPeaksOptions, statistics: ScoreMaps['statistics']): ThresholdReport['kind'] {
  if (options.minScore !== undefined) return 'min-score';
  if (options.zScore !== undefined) return 'z-score';
  return (options.falseAlarms ?? (statistics ? 1 : undefined)) === undefined ? 'none' : 'false-alarm';
}

/** Whether the threshold is raised near faces (faceThresholds), and over how many distances. */
function faceBins(options: CallPeaksOptions, templateShape: Zyx | undefined, kind: ThresholdReport['kind']): number | undefined {
  if (!((options.faceThresholds ?? true) && templateShape && (kind === 'false-alarm' || kind === 'z-score'))) return undefined;
  return Math.floor(Math.max(...templateShape) / 2);
}

/** Reports a raise of the threshold near the faces in `threshold.faces`. */
function reportFaces(threshold: ThresholdReport, faces: { thresholds: Float64Array; spreadRatio: Float64Array; bins: number }): void {
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

/**
 * The pick at `position` (global, voxels) from maps of `shape` holding it at `local` (the whole map, or a slab with
 * room around it for the sub-voxel fit and the local SNR's shell).
 */
function pickAt(
  s: CallSettings, options: CallPeaksOptions, maps: { scores: Float32Array; rot: Int32Array | Float32Array; shape: Zyx; rotations: Float64Array },
  local: Zyx, position: Zyx, map: MapMoments, statistics: ScoreMaps['statistics'],
): Pick {
  const { scores, rot, shape } = maps;
  const [z, y, x] = local;
  const v = (z * shape[1] + y) * shape[2] + x;
  const nRotations = maps.rotations.length / 9;
  const rotationIndex = rot[v]!;
  if (!Number.isInteger(rotationIndex) || rotationIndex >= nRotations) {
    throw new TmeError('ERR_TME_MISMATCH', `the rotation-index map holds ${rotationIndex} at (z, y, x) = (${position.join(', ')}) but the rotation table has ${nRotations} rotations`);
  }
  const rotation = matrixFrom(maps.rotations, rotationIndex * 9);
  const shift: Zyx = options.subvoxel ? subvoxelShift(scores, shape, z, y, x) : [0, 0, 0];
  const score = scores[v]!;
  const { origin, voxelSize } = s;
  return {
    position,
    shift,
    positionAngstrom: [
      origin[0] + (position[0] + shift[0]) * voxelSize[0],
      origin[1] + (position[1] + shift[1]) * voxelSize[1],
      origin[2] + (position[2] + shift[2]) * voxelSize[2],
    ],
    score,
    rotationIndex,
    rotation,
    pytmeEuler: matrixToPytmeEuler(rotation),
    relionEuler: matrixToRelionEuler(rotation),
    zScore: (score - map.mean) / map.std,
    searchSigmas: statistics ? (score - statistics.mean) / statistics.std : NaN,
    localSnr: localSnr(scores, rot, shape, local, score, s.snrShell[0], s.snrShell[1]),
    template: s.templateOf(rotationIndex),
  };
}

/**
 * Calls peaks on a best-score map: the threshold first (it filters BEFORE the top-N cut, unlike pyTME's
 * postprocess), then local maxima in the calling region (edge margin, mask, scored voxels), then exact greedy
 * non-maximum suppression with minDistance, then the top numPeaks. Memory: typed arrays for the candidates only.
 */
export function callPeaks(maps: ScoreMaps, options: CallPeaksOptions = {}): PeakSet {
  checkScoreMaps(maps);
  const { scores, rotationIndices: rot, shape, statistics } = maps;
  const s = callSettings(maps, options);
  const mask = templateMask(s, rot, maps.mask);
  const region = regionFor(shape, s.edge, mask);
  const map = regionMoments(scores, rot, region);
  const threshold = chooseThreshold(options, map, statistics);
  if (threshold.value > s.maxScore) throw invalidOption('maxScore', `number ≥ the threshold ${threshold.value}`, s.maxScore);

  const localMaxima = options.localMaxima ?? true;
  const bins = faceBins(options, maps.templateShape, threshold.kind);
  let faces: FaceThresholds | undefined;
  if (bins !== undefined) {
    faces = faceThresholds(scores, rot, region, threshold.value, bins);
    reportFaces(threshold, faces);
  }
  const cands = collectCandidates(scores, rot, region, threshold.value, s.maxScore, localMaxima, faces);
  let edgeDropped = 0;
  for (const slab of marginSlabs(region)) edgeDropped += collectCandidates(scores, rot, slab, threshold.value, s.maxScore, localMaxima, faces).count;
  const accepted = selectPeaks(cands, shape, s.minDistance, s.numPeaks);

  const [, ny, nx] = shape;
  const picks: Pick[] = [];
  for (const v of accepted) {
    const z = Math.floor(v / (ny * nx));
    const y = Math.floor((v - z * ny * nx) / nx);
    const x = v - (z * ny + y) * nx;
    picks.push(pickAt(s, options, { scores, rot, shape, rotations: maps.rotations }, [z, y, x], [z, y, x], map, statistics));
  }
  const { numPeaks, maxScore, minDistance, edge, snrShell, voxelSize } = s;
  return { picks, threshold, map, candidates: cands.count, edgeDropped, minDistance, edge, numPeaks, maxScore, snrShell, voxelSize };
}

/** Score maps on disk, read a z-slab of whole sections at a time (slab-wise peak calling). */
export interface ScoreSlabSource {
  readonly shape: Zyx;
  /** Sections [z0, z0 + n): the best scores, the rotation indices, and the calling mask when the call has one. */
  read(z0: number, n: number): { scores: Float32Array; rot: Int32Array | Float32Array; mask?: Float32Array };
}

/** What callPeaksBySlabs holds per voxel of a slab read (with its halo): scores, rotations, a mask, the per-template
 *  mask and the face distances (17 bytes), and room for the slab before it that the garbage collector has not freed
 *  yet: measured on a 1024×1024×256 job, peak RSS came to 18–20 bytes a voxel read beyond tme's base. */
export const SLAB_BYTES_PER_VOXEL = 4 + 4 + 4 + 4 + 1 + 4;

/** The sections a slab reads beyond its own at each end: the face distances', the local maxima's, the picks' shell,
 *  and the histogram's blocks (with `histogram`). */
export function slabHalo(shape: Zyx, options: CallPeaksOptions & { voxelSize?: Zyx; templateShape?: Zyx }, histogram = false): number {
  const s = callSettings(options, options);
  const faces = options.templateShape ? Math.floor(Math.max(...options.templateShape) / 2) : 0;
  const plane = shape[1] * shape[2];
  return Math.max(1, faces, Math.floor(s.snrShell[1]), histogram ? Math.ceil(HISTOGRAM_BLOCK / plane) : 0);
}

/**
 * callPeaks on maps too large to hold: read `slabSections` sections at a time, with a halo (slabHalo) wide enough
 * for everything calling reads around a voxel, in z order. The same picks (positions, scores, angles, order), the
 * same threshold and report: every sum adds in the order of the whole-map call (moments row by row, the faces'
 * samples in raster order, candidates in raster order, one suppression over all of them), to the last bit.
 * `histogram`: also the report's histogram of the calling region (scoreHistogram's numbers).
 */
export function callPeaksBySlabs(
  source: ScoreSlabSource, maps: Omit<ScoreMaps, 'scores' | 'rotationIndices' | 'mask' | 'shape'>, options: CallPeaksOptions,
  slabSections: number, histogram?: { bins: number },
): PeakSet & { histogram?: ScoreHistogram } {
  const shape = source.shape;
  const [nz, ny, nx] = shape;
  const plane = ny * nx;
  if (!(Number.isInteger(slabSections) && slabSections >= 1)) throw invalidOption('slabSections', 'integer ≥ 1', slabSections);
  if (nz * plane > 2 ** 32 - 1) {
    throw new TmeError('ERR_TME_UNSUPPORTED', `${[...shape].reverse().join('×')} voxels: peak calling indexes voxels with 32 bits (at most 2³²−1 voxels)`);
  }
  const { statistics } = maps;
  const s = callSettings(maps, options);
  const region = regionFor(shape, s.edge, undefined);
  const halo = slabHalo(shape, { ...options, ...maps }, histogram !== undefined);
  // Each slab in z order: its arrays (sections [z0, z1) read), its own sections [c0, c1), and the calling region
  // (and a part of it) in the slab's frame.
  type Slab = {
    z0: number; c0: number; c1: number; shape: Zyx; scores: Float32Array; rot: Int32Array | Float32Array; mask: ScoreMaps['mask']; userMask: ScoreMaps['mask'];
    within: (r: Region) => Region | undefined;
  };
  const eachSlab = (visit: (slab: Slab) => void): void => {
    for (let c0 = 0; c0 < nz; c0 += slabSections) {
      const c1 = Math.min(nz, c0 + slabSections);
      const z0 = Math.max(0, c0 - halo);
      const z1 = Math.min(nz, c1 + halo);
      const read = source.read(z0, z1 - z0);
      const mask = templateMask(s, read.rot, read.mask);
      const slabShape: Zyx = [z1 - z0, ny, nx];
      const within = (r: Region): Region | undefined => {
        const from = Math.max(r.start[0], c0);
        const to = Math.min(r.end[0], c1);
        if (from >= to || r.start[1] >= r.end[1] || r.start[2] >= r.end[2]) return undefined;
        return { shape: slabShape, start: [from - z0, r.start[1], r.start[2]], end: [to - z0, r.end[1], r.end[2]], mask };
      };
      visit({ z0, c0, c1, shape: slabShape, scores: read.scores, rot: read.rot, mask, userMask: read.mask, within });
    }
  };

  const moments = newMoments();
  const bins = faceBins(options, maps.templateShape, thresholdKind(options, statistics));
  const samples = bins !== undefined ? new FaceSamples(bins) : undefined;
  const distances = (slab: Slab): Uint8Array | undefined => (bins !== undefined
    ? faceDistances(slab.shape, slab.scores, slab.rot, bins, { start: slab.z0, sections: nz }) : undefined);
  eachSlab((slab) => {
    const r = slab.within(region);
    if (!r) return;
    addRegionMoments(moments, slab.scores, slab.rot, r);
    const d = distances(slab);
    if (samples && d) samples.count(d, slab.scores, slab.rot, r);
  });
  const map = finishMoments(moments);
  const threshold = chooseThreshold(options, map, statistics);
  if (threshold.value > s.maxScore) throw invalidOption('maxScore', `number ≥ the threshold ${threshold.value}`, s.maxScore);
  let faceTable: { thresholds: Float64Array; spreadRatio: Float64Array; bins: number } | undefined;
  if (samples && bins !== undefined) {
    eachSlab((slab) => {
      const r = slab.within(region);
      const d = distances(slab);
      if (r && d) samples.sample(d, slab.scores, slab.rot, r);
    });
    faceTable = { ...samples.thresholds(threshold.value), bins };
    reportFaces(threshold, faceTable);
  }

  const localMaxima = options.localMaxima ?? true;
  let index = new Uint32Array(1024);
  let score = new Float32Array(1024);
  let count = 0;
  let edgeDropped = 0;
  eachSlab((slab) => {
    const d = distances(slab);
    const faces = faceTable && d ? { ...faceTable, distance: d } : undefined;
    const r = slab.within(region);
    if (r) {
      const c = collectCandidates(slab.scores, slab.rot, r, threshold.value, s.maxScore, localMaxima, faces);
      if (count + c.count > index.length) {
        const cap = Math.max(2 * index.length, count + c.count);
        const ni = new Uint32Array(cap);
        ni.set(index.subarray(0, count));
        index = ni;
        const ns = new Float32Array(cap);
        ns.set(score.subarray(0, count));
        score = ns;
      }
      const offset = slab.z0 * plane;
      for (let k = 0; k < c.count; k++) index[count + k] = c.index[k]! + offset;
      score.set(c.score.subarray(0, c.count), count);
      count += c.count;
    }
    for (const margin of marginSlabs(region)) {
      const m = slab.within(margin);
      if (m) edgeDropped += collectCandidates(slab.scores, slab.rot, m, threshold.value, s.maxScore, localMaxima, faces).count;
    }
  });
  const accepted = selectPeaks({ index, score, count }, shape, s.minDistance, s.numPeaks);

  // The picks, each from the slab that holds its section (the halo holds its shell).
  const picks = new Array<Pick>(accepted.length);
  const order = Array.from(accepted.keys()).sort((a, b) => accepted[a]! - accepted[b]!);
  let next = 0;
  eachSlab((slab) => {
    for (; next < order.length; next++) {
      const k = order[next]!;
      const v = accepted[k]!;
      const z = Math.floor(v / plane);
      if (z >= slab.c1) break;
      const y = Math.floor((v - z * plane) / nx);
      const x = v - z * plane - y * nx;
      picks[k] = pickAt(s, options, { scores: slab.scores, rot: slab.rot, shape: slab.shape, rotations: maps.rotations }, [z - slab.z0, y, x], [z, y, x], map, statistics);
    }
  });

  let hist: ScoreHistogram | undefined;
  if (histogram) {
    // Every scored voxel inside the mask (as the report's scoreHistogram of the whole map), in its blocks.
    hist = scoreHistogramOfBlocks((visit) => eachSlab((slab) => {
      const first = Math.ceil((slab.c0 * plane) / HISTOGRAM_BLOCK) * HISTOGRAM_BLOCK;
      const offset = slab.z0 * plane;
      for (let g = first; g < slab.c1 * plane; g += HISTOGRAM_BLOCK) {
        visit(slab.scores, g - offset, Math.min(nz * plane, g + HISTOGRAM_BLOCK) - offset, slab.userMask, slab.rot);
      }
    }), { bins: histogram.bins, ...(Number.isFinite(threshold.value) ? { threshold: threshold.value } : {}) });
  }
  const { numPeaks, maxScore, minDistance, edge, snrShell, voxelSize } = s;
  return {
    picks, threshold, map, candidates: count, edgeDropped, minDistance, edge, numPeaks, maxScore, snrShell, voxelSize, ...(hist ? { histogram: hist } : {}),
  };
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
