import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MrcRegionWriter, type AtomicFileOptions, TmeError, isTmeError, type Volume, type VolumeRegionSource, type Zyx } from '@tme/formats';
import { phaseRandomised, rotationStatsMaps, type BackgroundMaps } from './background';
import { isDeviceList, type BackendMatchJob, type BackendMatchResult, type DeviceId, type DeviceInfo, type MatchBackend } from './backend';
import { CHECKPOINT_FILE, OUT_OF_CORE_PARTIAL, readCheckpoint, writeCheckpoint, type CheckpointState, type RotationRanges } from './checkpoint';
import { devicesLabel, resolveDevices } from './devices';
import { ARRAY_OVERHEAD, PROCESS_BASE_BYTES } from './memory-model';
import { defaultBackend } from './native-backend';
import { extractRegion } from './padding';
import { isRegionSource, perAxis, prepareTemplates, readWithNoData, type MatchJob, type PreparedJob } from './prepare';
import { presentPriors, priorField, rotationGroups, type RotationGroup } from './priors';
import { boxCentre } from './rotate';
import { planTiles, type Tile, type TilePlan } from './tiling';
import { checkVolumeFilter, filterVolumeOutOfCore, type FilteredVolume, type VolumeFilterProgress } from './volume-filter';

export interface MatchProgress {
  /** Rotation·tile steps done and in all (rotations × tiles). */
  done: number;
  total: number;
  /** The tile being matched (0-based) and the number of tiles. */
  tile: number;
  tiles: number;
  /** Rotations done on the current tile, and rotations in the set. */
  rotationsDone: number;
  rotationsTotal: number;
  /** The device's name; with several, their names joined (devicesLabel). */
  device: string;
}

export interface MatchOptions {
  onProgress?: (progress: MatchProgress) => void;
  signal?: AbortSignal;
  /** The correlation backend. Default: the native addon (@tme/native). */
  backend?: MatchBackend;
  /** Write a checkpoint into `dir` after batches (and on failure or cancel); `resume` continues from one. */
  checkpoint?: { dir: string; resume?: boolean; /** Seconds between checkpoints; default 30; 0 = every batch. */ intervalSeconds?: number };
  /** Rotations per backend call. Default: adaptive, about `batchSeconds` per call. */
  batchRotations?: number;
  /** Target duration of one backend call, s. Default 10 (progress and cancel work within a call). */
  batchSeconds?: number;
  /** Out of core with a target filter: the progress of its passes over the tomogram, before the first tile. */
  onFilterProgress?: (progress: VolumeFilterProgress) => void;
  /** Out of core with a target filter: hand the filtered tomogram back (result.filteredTarget) instead of deleting it,
   *  for refinement to read rather than filter the tomogram again; the caller then calls its `release`. */
  keepFilteredTarget?: boolean;
  /** Plan as before half padding and the cost model: every axis reads the next fast size ≥ core + support − 1 (the
   *  same maps: for tests and benchmarks that compare the two). Default false. */
  fullPadding?: boolean;
}

/** Statistics over every score of every rotation at every counted voxel (the core of each tile, inside the
 *  target mask when one is given). */
export interface ScoreStatistics {
  mean: number;
  std: number;
  /** Scores counted: voxels × rotations. */
  count: number;
  voxelCount: number;
  rotationCount: number;
  /** The maximum score of each rotation over the counted voxels. */
  perRotationMax: Float32Array;
  /** Mean and standard deviation of each rotation's scores over the counted voxels, when the backend reports
   *  per-rotation sums (both tme backends do): the false-alarm model per rotation (@tme/peaks). */
  perRotationMean?: Float64Array;
  perRotationStd?: Float64Array;
  /** The sums they come from (Σ score, Σ score², scores counted, per rotation): what merging shards adds exactly. */
  perRotationSums?: { sum: Float64Array; sumSq: Float64Array; count: Float64Array };
  /** 'core': exactly the target voxels; 'tile': the backend counted whole tiles (padding and overlap included). */
  scope: 'core' | 'tile';
}

/**
 * The score statistics from per-rotation sums (and sums a backend only pooled): one function for a run and for a
 * merge of its shards, so that both give the same numbers to the last bit.
 */
export function scoreStatistics(
  sums: { sum: Float64Array; sumSq: Float64Array; count: Float64Array }, perRotationMax: Float32Array,
  loose: { sum: number; sumSq: number; count: number }, voxelCount: number, scope: ScoreStatistics['scope'],
): ScoreStatistics {
  const nRot = perRotationMax.length;
  let sum = loose.sum;
  let sumSq = loose.sumSq;
  let count = loose.count;
  for (let r = 0; r < nRot; r++) {
    sum += sums.sum[r] as number;
    sumSq += sums.sumSq[r] as number;
    count += sums.count[r] as number;
  }
  const mean = count > 0 ? sum / count : 0;
  const std = count > 0 ? Math.sqrt(Math.max(0, sumSq / count - mean * mean)) : 0;
  // Per rotation, where every rotation's sums are known (not after a backend that pooled them).
  if (loose.count !== 0 || nRot === 0) return { mean, std, count, voxelCount, rotationCount: nRot, perRotationMax, scope };
  const perRotationMean = new Float64Array(nRot);
  const perRotationStd = new Float64Array(nRot);
  for (let r = 0; r < nRot; r++) {
    const n = sums.count[r] as number;
    const m = n > 0 ? (sums.sum[r] as number) / n : 0;
    perRotationMean[r] = m;
    perRotationStd[r] = n > 0 ? Math.sqrt(Math.max(0, (sums.sumSq[r] as number) / n - m * m)) : 0;
  }
  return { mean, std, count, voxelCount, rotationCount: nRot, perRotationMax, scope, perRotationMean, perRotationStd, perRotationSums: sums };
}

export interface MatchResult {
  /** Best score per target voxel (target shape, voxel size and origin). */
  scores: Volume;
  /** Index into `rotations` of the best rotation per voxel; −1 where none was evaluated. */
  indices: Int32Array;
  rotations: Float64Array;
  stats: ScoreStatistics;
  tilePlan: TilePlan;
  /** The (first) device; `devices` lists every device the rotations were split across, one entry per worker. */
  device: DeviceInfo & { backend: string };
  devices: DeviceInfo[];
  timings: { totalMs: number; prepareMs: number; matchMs: number; checkpointMs: number; rotationsPerSecond: number };
  /** The resolved parameters, as job.json records them. */
  parameters: MatchParameters;
  /** True when this run continued from a checkpoint. */
  resumed: boolean;
  /** The background option's maps (job.background other than 'none'). */
  background?: BackgroundMaps;
  /** A tile shard's per-rotation sums of each of its tiles, in tile order: merging tile shards adds them in the
   *  order one whole run does, so its statistics come out to the last bit. */
  tileSums?: TileSums[];
  /** With priors: rotation·tile steps matched, and without the priors; voxels searched (within a prior's radius);
   *  backend passes (one per group of rotations that the same priors allow, per tile). */
  priors?: { rotationsMatched: number; rotationsWithout: number; voxelsSearched: number; passes: number };
}

/** One tile's Σ score, Σ score² and scores counted, per rotation. */
export interface TileSums { tile: number; sum: Float64Array; sumSq: Float64Array; count: Float64Array }

export interface MatchParameters {
  score: string;
  backendScore: string;
  padTarget: string;
  interpolation: string;
  rotationMode: string;
  /** Only when 'half' (so a float32 job's parameters, and its checkpoint key, stay what they were). */
  spectrumPrecision?: string;
  /** The device selection as given: one device, 'gpu:all', or a list. */
  device: string | number | Array<string | number>;
  threads: number | null;
  tile: 'auto' | Zyx;
  memoryFraction: number;
  memoryLimitBytes: number | null;
  /** A shard's rotations [start, end); null for the whole set. */
  rotationRange: [number, number] | null;
  /** A tile shard: [index, count] as asked, and the tiles [start, end) of the plan it matched; absent otherwise. */
  tileShard?: [number, number];
  tileRange?: [number, number];
  maskRadius: number | null;
  templateMask: boolean;
  targetMask: boolean;
  filter: boolean;
  targetShape: Zyx;
  templateShape: Zyx;
  /** What tiles pad and overlap by (support.ts). */
  supportShape: Zyx;
  voxelSize: Zyx;
  rotationCount: number;
  /** 'none', 'rotation-stats' or 'random-phase' (background.ts). */
  background: string;
  /** The random-phase template's seed; null unless background is 'random-phase'. */
  randomPhaseSeed: number | null;
  /** With several templates (MatchJob.moreTemplates) each one's box, support, mask and rotations, in order; its
   *  rotations are the table's [rotationStart, rotationStart + rotationCount). templateShape and supportShape above
   *  are then the largest per axis (what the tiles pad by). Absent with one template. */
  templates?: TemplateParameters[];
  /** Priors per position (their count, cone half-angle in degrees, radius in Å, template axis); absent without. */
  priors?: { count: number; coneAngle: number; radius: number; axis: string };
}

export interface TemplateParameters {
  templateShape: Zyx;
  supportShape: Zyx;
  maskRadius: number | null;
  templateMask: boolean;
  rotationStart: number;
  rotationCount: number;
}

export function parametersOf(p: PreparedJob, templates?: readonly PreparedJob[]): MatchParameters {
  const several = templates !== undefined && templates.length > 1;
  let start = 0;
  return {
    ...(several ? {
      templates: templates.map((t) => {
        const entry: TemplateParameters = {
          templateShape: t.templateShape, supportShape: t.supportShape, maskRadius: t.maskRadius ?? null, templateMask: t.maskRadius === undefined,
          rotationStart: start, rotationCount: t.rotationCount,
        };
        start += t.rotationCount;
        return entry;
      }),
    } : {}),
    score: p.score, backendScore: p.plan.backendScore, padTarget: p.padTarget, interpolation: p.interpolation,
    rotationMode: p.rotationMode, device: isDeviceList(p.device) ? [...p.device] : p.device, threads: p.threads ?? null, tile: p.tile, memoryFraction: p.memoryFraction,
    memoryLimitBytes: p.memoryLimitBytes ?? null,
    rotationRange: p.rotationRange[0] === 0 && p.rotationRange[1] === p.rotationCount ? null : [p.rotationRange[0], p.rotationRange[1]],
    // Only when set: a whole job's parameters (and so its checkpoint key) stay what they were before tile shards.
    ...(p.tileShard ? { tileShard: [p.tileShard.index, p.tileShard.count] as [number, number] } : {}),
    ...(p.spectrumPrecision === 'half' ? { spectrumPrecision: 'half' } : {}),
    maskRadius: p.maskRadius ?? null, templateMask: p.maskRadius === undefined, targetMask: p.targetMask !== undefined,
    filter: p.filter !== undefined, targetShape: p.targetShape, templateShape: p.templateShape, supportShape: p.supportShape, voxelSize: p.voxelSize,
    rotationCount: p.rotationCount, background: p.background, randomPhaseSeed: p.background === 'random-phase' ? p.randomPhaseSeed : null,
    ...(p.priors ? { priors: { count: p.priors.positions.length / 3, coneAngle: p.priors.coneAngle, radius: p.priors.radius, axis: p.priors.axis } } : {}),
  };
}

/**
 * The tile plan for a prepared job on its devices (one worker each): what estimateJob reports and matchTemplate runs.
 * Every worker holds a tile at once, so a device listed n times offers each of its workers 1/n of its memory; the
 * plan fits the tightest share, and its bytesPerTile are on that share's scale (a device's own bytes for one device).
 */
/**
 * What one device may hold of a job's tiles, in bytes. Host memory comes first: the run's best-score and rotation
 * maps (8 bytes a voxel) live there whatever the device, and CPU tiles share what is left. The host's figure is what
 * is free now (or the job's memoryLimitBytes), never a share of the total: planning against 85 % of a 24 GiB
 * machine's total got a 1024×1024×511 job killed by the kernel. Throws ERR_TME_DEVICE_MEMORY when the maps alone
 * do not fit.
 */
export function deviceBudgetBytes(p: PreparedJob, backend: MatchBackend, device: DeviceInfo): number {
  const host = backend.listDevices().find((d) => d.index === 'cpu');
  const voxels = p.targetShape[0] * p.targetShape[1] * p.targetShape[2];
  // The best-score and rotation maps; with rotation-stats the per-voxel sums, and at the end the normalised map.
  // Out of core nothing is held whole: a tile's own arrays count with the tile (outOfCoreTileBytes).
  const mapBytes = p.source ? 0 : (p.background === 'rotation-stats' ? 20 : 8) * voxels;
  // Free memory does not count what the process holds already (the target, its masks); a limit counts everything.
  const free = host ? host.memoryBytes * p.memoryFraction - mapBytes : Infinity;
  // Priors add the map of each voxel's nearest prior (int32).
  const held = p.source ? 0 : 4 * voxels * 2 + mapBytes + (p.noData ? voxels : 0) + (p.targetMask ? 4 * voxels : 0) + (p.priors ? 4 * voxels : 0);
  const limited = p.memoryLimitBytes === undefined ? Infinity : (p.memoryLimitBytes - PROCESS_BASE_BYTES) / ARRAY_OVERHEAD - held;
  const tiles = Math.min(free, limited);
  if (!(tiles > 0)) {
    const limit = limited <= free;
    // Out of core nothing of the target is held whole: only tme itself can be too much for the limit.
    if (p.source) {
      throw new TmeError('ERR_TME_DEVICE_MEMORY',
        `a search out of core holds ${bytesText(PROCESS_BASE_BYTES)} (tme itself) before any tile, but `
        + `${limit ? `--memory allows ${bytesText(p.memoryLimitBytes as number)}` : `${bytesText((host as DeviceInfo).memoryBytes)} of host memory is free`}; `
        + 'allow it more');
    }
    throw new TmeError('ERR_TME_DEVICE_MEMORY',
      `the search of a ${[...p.targetShape].reverse().join('×')} target holds ${bytesText(limit ? held + PROCESS_BASE_BYTES : mapBytes)} `
      + `(${limit ? 'the target, its best-score and rotation maps and tme itself' : 'its best-score and rotation maps'}) before any tile, but `
      + `${limit ? `--memory allows ${bytesText(p.memoryLimitBytes as number)}` : `${bytesText((host as DeviceInfo).memoryBytes)} of host memory is free`}; `
      + 'match it out of core from its MRC file (tme match does so when memory is short; matchTemplateOutOfCore in @tme/engine), or bin or crop it');
  }
  return device.index === 'cpu' ? tiles : device.memoryBytes * p.memoryFraction;
}

/**
 * Per axis: whether, where one tile spans it, it may pad by half the support (tiling.ts): everything the backend
 * correlates must continue beyond both faces as one constant. Not with 'mirror' padding, nor Fourier-space rotation
 * (its kernel is the rotated spectrum sampled on the tile's grid: not confined to the support; and a template filter
 * there filters the tile circularly). mcc's target mask continues as a mirror (tileTargetMask): an axis qualifies
 * when the mask is one value on the slabs within half the support of both its faces, where the mirror then reads.
 */
export function padsByHalfSupport(p: PreparedJob): readonly [boolean, boolean, boolean] {
  if (p.padTarget === 'mirror' || p.rotationMode === 'fourier') return [false, false, false];
  const mask = p.plan.backendScore === 'mcc' ? p.targetMask : undefined;
  if (!mask) return [true, true, true];
  const [nz, ny, nx] = p.targetShape;
  const value = mask[0] as number;
  // Plane i of axis a holds only `value`.
  const plane = (a: number, i: number): boolean => {
    if (a === 0) {
      for (let j = i * ny * nx, end = j + ny * nx; j < end; j++) if (mask[j] !== value) return false;
    } else if (a === 1) {
      for (let z = 0; z < nz; z++) for (let j = (z * ny + i) * nx, end = j + nx; j < end; j++) if (mask[j] !== value) return false;
    } else {
      for (let row = 0; row < nz * ny; row++) if (mask[row * nx + i] !== value) return false;
    }
    return true;
  };
  const faces = (a: 0 | 1 | 2): boolean => {
    const reach = Math.floor(p.supportShape[a] / 2);
    const n = p.targetShape[a];
    for (let i = 0; i < n; i++) {
      if (i > reach && i < n - 1 - reach) i = n - 1 - reach;
      if (!plane(a, i)) return false;
    }
    return true;
  };
  return [faces(0), faces(1), faces(2)];
}

/** `fullPadding`: every axis reads the next fast size ≥ core + support − 1 (the plan before padsByHalfSupport and the
 *  cost model; tests and benchmarks compare the two). */
export function planJobTiles(p: PreparedJob, backend: MatchBackend, devices: readonly DeviceInfo[], fullPadding = false): TilePlan {
  const shares = new Map<DeviceId, { device: DeviceInfo; budget: number }>();
  for (const d of devices) {
    const workers = devices.filter((e) => e.index === d.index).length;
    shares.set(d.index, { device: d, budget: deviceBudgetBytes(p, backend, d) / workers });
  }
  const budgetBytes = Math.min(...[...shares.values()].map((s) => s.budget));
  const costModel = fullPadding ? undefined : backend.costModel?.((devices[0] as DeviceInfo).index);
  return planTiles({
    targetShape: p.targetShape,
    templateShape: p.supportShape,
    tileShape: p.tile === 'auto' ? undefined : p.tile,
    zoneSplits: p.zoneSplits,
    ...(fullPadding ? {} : { halfPad: padsByHalfSupport(p) }),
    ...(costModel ? { costModel } : {}),
    budgetBytes,
    nextFastShape: (s) => backend.nextFastShape(s),
    bytesFor: (fastShape) => Math.max(...[...shares.values()].map(({ device, budget }) => {
      const bytes = backend.estimateMemory({
        tileShape: fastShape, templateShape: p.templateShape, supportShape: p.supportShape, score: p.plan.backendScore,
        rotationMode: p.rotationMode, filter: p.filter !== undefined || p.zoneFilters !== undefined, device: device.index, threads: p.threads,
        voxelStats: p.background === 'rotation-stats', spectrumPrecision: p.spectrumPrecision,
      });
      const all = bytes + (p.source ? outOfCoreTileBytes(fastShape) : 0);
      return budget === budgetBytes ? all : budget > 0 ? (all * budgetBytes) / budget : Infinity;
    })),
  });
}

/**
 * What every backend call of a job shares besides the tile: the template, its mask and filter (on the template's own
 * grid) and the whole target's moments. None of it depends on the tile, so tiles correlate the same kernel.
 */
export function sharedBackendInputs(p: PreparedJob): Pick<BackendMatchJob,
  'template' | 'templateShape' | 'mask' | 'supportShape' | 'filter' | 'filterShape' | 'targetMean' | 'targetVariance' | 'rotations' |
  'score' | 'interpolation' | 'rotationMode' | 'spectrumPrecision' | 'threads'> {
  return {
    template: p.template, templateShape: p.templateShape, mask: p.mask, supportShape: p.supportShape,
    ...(p.templateFilter && !p.templateFilterInTarget ? { filter: p.templateFilter, filterShape: p.filterShape } : {}),
    targetMean: p.targetMean, targetVariance: p.targetVariance,
    rotations: p.rotations, score: p.plan.backendScore, interpolation: p.interpolation, rotationMode: p.rotationMode,
    ...(p.spectrumPrecision === 'half' ? { spectrumPrecision: 'half' as const } : {}), threads: p.threads,
  };
}

/**
 * The target mask over a tile, continued beyond the target's faces as a mirror: where the target is padded (with its
 * mean by default) the mask goes on as it was at the face. mcc then treats the padding as flc and flc-sphere do —
 * data without structure — instead of shrinking its overlap at every face (which, measured on pure noise, made local
 * maxima above a common threshold 1.7–2.2× as dense within half a box of a face as inside).
 */
export function tileTargetMask(p: PreparedJob, readStart: Zyx, shape: Zyx): Float32Array | undefined {
  return p.targetMask ? extractRegion(p.targetMask, p.targetShape, readStart, shape, 'mirror') : undefined;
}

/**
 * What the host holds for each tile out of core besides the backend's arrays: the box read with its no-data halo
 * (float32 and its flags), the padded tile, the statistics mask, and the core's best-score and rotation maps.
 */
export function outOfCoreTileBytes(fastShape: Zyx): number {
  return (4 + 1 + 4 + 1 + 8) * fastShape[0] * fastShape[1] * fastShape[2];
}

function bytesText(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.ceil(bytes / 2 ** 20)} MiB`;
}

function hashJob(p: PreparedJob, plan: TilePlan, more: readonly PreparedJob[] = [], outOfCore?: string): string {
  const h = createHash('sha256');
  // A target on disk (out of core): what identifies it, since its voxels are not in p.target.
  if (outOfCore !== undefined) h.update(`out-of-core ${outOfCore}|`);
  // background 'none' hashes as before the option existed: older checkpoints still resume.
  const background = p.background === 'none' ? { background: undefined, randomPhaseSeed: undefined } : {};
  h.update(JSON.stringify({ ...parametersOf(p), ...background, device: null, threads: null, memoryFraction: null, memoryLimitBytes: null, plan: { splits: plan.splits, fastShape: plan.fastShape }, filterShape: p.filterShape }));
  const templates = more.flatMap((t) => [t.target === p.target ? undefined : t.target, t.template, t.mask, t.templateFilter, ...(t.zoneFilters ?? [])]);
  // Priors hash only when given: jobs without keep their keys (and older checkpoints resume).
  const priorArrays = p.priors ? [p.priors.positions, p.priors.directions] : [];
  for (const a of [p.target, p.template, p.mask, p.targetMask, p.rotations, p.templateFilter, ...(p.zoneFilters ?? []), ...templates, ...priorArrays]) {
    // In pieces: one update of more than 2 GiB fails ("data is too long").
    const bytes = a ? new Uint8Array(a.buffer, a.byteOffset, a.byteLength) : new Uint8Array(0);
    for (let at = 0; at < bytes.length; at += 2 ** 28) h.update(bytes.subarray(at, Math.min(bytes.length, at + 2 ** 28)));
    h.update('|');
  }
  return h.digest('hex');
}

/**
 * What a job of several templates plans its tiles and records by: template 0's options and target with the largest box
 * and support per axis (every template's correlation is then whole in each tile's core), and every template's
 * rotations one after another.
 */
export function severalTemplates(templates: readonly PreparedJob[]): PreparedJob {
  const largest = (of: (t: PreparedJob) => Zyx): Zyx => {
    const m = (a: number): number => Math.max(...templates.map((t) => of(t)[a] as number));
    return [m(0), m(1), m(2)];
  };
  const count = templates.reduce((n, t) => n + t.rotationCount, 0);
  const rotations = new Float64Array(9 * count);
  templates.reduce((at, t) => { rotations.set(t.rotations, at); return at + t.rotations.length; }, 0);
  return {
    ...(templates[0] as PreparedJob), templateShape: largest((t) => t.templateShape), supportShape: largest((t) => t.supportShape),
    rotations, rotationCount: count, rotationRange: [0, count],
  };
}

/** Where the run's maps live: the whole target in memory, or out of core the current tile's core. */
interface MapFrame { start: Zyx; shape: Zyx }

/** Visits the core of a tile row by row: the row's start in the maps' frame and in the tile, and its length. */
function forCoreRows(
  tile: Tile, fast: Zyx, frame: MapFrame, offset: Zyx,
  visit: (fullStart: number, tileStart: number, length: number) => void,
): void {
  const [, ty, tx] = fast;
  const [, ny, nx] = frame.shape;
  const [cz, cy, cx] = tile.coreShape;
  const [sz, sy, sx] = frame.start;
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const full = ((tile.coreStart[0] - sz + z) * ny + tile.coreStart[1] - sy + y) * nx + tile.coreStart[2] - sx;
      const local = ((offset[0] + z) * ty + offset[1] + y) * tx + offset[2];
      visit(full, local, cx);
    }
  }
}

/**
 * Merges rows of a worker's maps into the state's: the higher score wins, an equal one keeps the lower rotation
 * index (as within one backend call), so the merged maps do not depend on which worker ran which rotations.
 */
export function mergeBest(
  scores: Float32Array, indices: Int32Array, at: number, fromScores: Float32Array, fromIndices: Int32Array, from: number, n: number,
): void {
  for (let x = 0; x < n; x++) {
    const s = fromScores[from + x] as number;
    const a = fromIndices[from + x] as number;
    const best = scores[at + x] as number;
    const b = indices[at + x] as number;
    if (s > best || (s === best && a >= 0 && (b < 0 || a < b))) {
      scores[at + x] = s;
      indices[at + x] = a;
    }
  }
}

/** The matrices of the rotations `indices` of a set (9 values each), in that order. */
function rotationSubset(rotations: Float64Array, indices: Int32Array): Float64Array {
  const out = new Float64Array(9 * indices.length);
  indices.forEach((r, i) => out.set(rotations.subarray(9 * r, 9 * r + 9), 9 * i));
  return out;
}

/** Marks [start, end) done in sorted, disjoint ranges, joining neighbours. */
function addRange(ranges: RotationRanges, start: number, end: number): void {
  ranges.push([start, end]);
  ranges.sort((a, b) => a[0] - b[0]);
  let k = 0;
  for (const r of ranges) {
    const last = ranges[k - 1];
    if (last !== undefined && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else ranges[k++] = [r[0], r[1]];
  }
  ranges.length = k;
}

/** The rotations of a tile that are not done, handed out in increasing order as ranges of at most n. */
class RotationQueue {
  private readonly gaps: Array<[number, number]> = [];
  private gap = 0;
  remaining = 0;

  /** `bounds`: starts of the templates' rotations (ascending); no range crosses one, since a call matches one template. */
  constructor(done: RotationRanges, total: number, private readonly bounds: readonly number[] = []) {
    let at = 0;
    for (const [a, b] of done) {
      if (a > at) this.gaps.push([at, a]);
      at = b;
    }
    if (at < total) this.gaps.push([at, total]);
    for (const [a, b] of this.gaps) this.remaining += b - a;
  }

  take(n: number): [number, number] | undefined {
    const g = this.gaps[this.gap];
    if (g === undefined || n < 1) return undefined;
    const bound = this.bounds.find((b) => b > (g[0] as number)) ?? Infinity;
    const range: [number, number] = [g[0], Math.min(g[1], g[0] + n, bound)];
    g[0] = range[1];
    if (g[0] === g[1]) this.gap++;
    this.remaining -= range[1] - range[0];
    return range;
  }
}

function freshState(key: string, voxels: number, rotations: number, voxelStats: boolean, perTile: boolean): CheckpointState {
  return {
    key, tile: 0, done: [], elapsedMs: 0, ...(perTile ? { tileSums: [] } : {}),
    ...(voxelStats ? { voxelSum: new Float32Array(voxels), voxelSumSq: new Float32Array(voxels) } : {}),
    scores: new Float32Array(voxels).fill(-Infinity), indices: new Int32Array(voxels).fill(-1),
    rotationSum: new Float64Array(rotations), rotationSumSq: new Float64Array(rotations),
    rotationCount: new Float64Array(rotations), rotationMax: new Float32Array(rotations).fill(-Infinity),
    looseSum: 0, looseSumSq: 0, looseCount: 0,
  };
}

function cancelled(): TmeError {
  return new TmeError('ERR_TME_CANCELLED', 'matching was cancelled');
}

/** A tile shard's tiles [⌊i·T/n⌋, ⌊(i+1)·T/n⌋) of the plan's T; every tile for a whole job. */
/** The tiles [start, end) of the plan that the job searches: all, or a tile shard's (`--shard i/n --shard-by tiles`). */
function tileShardRange(p: PreparedJob, tiles: number): [number, number] {
  if (p.tileShard !== undefined && p.tileShard.count > tiles) {
    const { index, count } = p.tileShard;
    throw new TmeError('ERR_TME_INVALID_OPTION', `Expected at most as many parts as the search has tiles (${tiles}; --tile sets them) for --shard with --shard-by tiles but received "${index}/${count}"`);
  }
  return tileSpan(p, tiles);
}

/** tileShardRange without its check (a shard past the tile count searches nothing): what an estimate counts. */
function tileSpan(p: PreparedJob, tiles: number): [number, number] {
  if (p.tileShard === undefined) return [0, tiles];
  const { index, count } = p.tileShard;
  return [Math.floor((index * tiles) / count), Math.floor(((index + 1) * tiles) / count)];
}

/** Tiles' per-rotation sums added in tile order from zero: what one whole run's running sums are. */
export function addTileSums(tiles: readonly TileSums[], rotations: number): { sum: Float64Array; sumSq: Float64Array; count: Float64Array } {
  const out = { sum: new Float64Array(rotations), sumSq: new Float64Array(rotations), count: new Float64Array(rotations) };
  for (const t of [...tiles].sort((a, b) => a.tile - b.tile)) {
    for (let r = 0; r < rotations; r++) {
      out.sum[r] = (out.sum[r] as number) + (t.sum[r] as number);
      out.sumSq[r] = (out.sumSq[r] as number) + (t.sumSq[r] as number);
      out.count[r] = (out.count[r] as number) + (t.count[r] as number);
    }
  }
  return out;
}

/**
 * Matches a template against a target over a set of rotations: tile by tile, in batches of rotations, keeping
 * per voxel the best score and the lowest index of the rotation that reached it. Deterministic: the maps do not
 * depend on batch sizes, checkpoints or resumes (and, on the reference backend, not on the tiling either).
 *
 * With several devices (`device: [0, 1]`, 'gpu:all') one worker per device takes each tile's rotations a batch at a
 * time, all at once, and its maps are merged into the run's by the same rule, so they equal one device's bit for bit
 * where the devices compute alike. Tiles run one after another: each rotation's statistics then add up over the
 * tiles in the same order however the work was split.
 */
export async function matchTemplate(job: MatchJob, options: MatchOptions = {}): Promise<MatchResult> {
  if (isRegionSource(job.target)) {
    throw new TmeError('ERR_TME_INVALID_OPTION', `${job.target.file} is a target on disk: match it with matchTemplateOutOfCore, which writes its maps by region`);
  }
  if (job.background === 'random-phase') return matchRandomPhase(job, options);
  const started = Date.now();
  if (options.signal?.aborted) throw cancelled();
  const run = await searchTiles(prepareTemplates(job), started, options);
  const { p, state, voxels, rangeEnd, rangeStart, field } = run;
  let voxelCount = 0;
  for (let i = 0; i < voxels; i++) {
    if ((!p.targetMask || (p.targetMask[i] as number) > 0) && !p.noData?.[i]) voxelCount++;
  }
  // Under priors, voxels near no prior (and any whose cone holds no rotation of the set) were not searched: as
  // voxels without data, 0 in the map and no rotation.
  let voxelsSearched = 0;
  if (field) {
    for (let i = 0; i < voxels; i++) {
      if ((state.indices[i] as number) < 0) { state.scores[i] = 0; state.indices[i] = -1; }
      if ((field[i] as number) >= 0) voxelsSearched++;
    }
  }
  // Voxels without data were not scored: 0 in the map, no rotation (peak calling leaves them out).
  if (p.noData) {
    for (let i = 0; i < voxels; i++) {
      if (p.noData[i]) { state.scores[i] = 0; state.indices[i] = -1; }
    }
  }
  const scores: Volume = { data: state.scores, shape: p.targetShape, voxelSize: p.voxelSize, origin: p.origin };
  return {
    scores,
    indices: state.indices,
    ...(state.voxelSum && state.voxelSumSq
      ? { background: rotationStatsMaps(scores, state.voxelSum, state.voxelSumSq, rangeEnd - rangeStart, p.noData) } : {}),
    ...run.summary(voxelCount, voxelsSearched),
  };
}

/** The maps an out-of-core run writes, tile core by tile core (MRC files, committed when the search finishes). */
export interface OutOfCoreOutputs {
  scores: string;
  rotations: string;
}

/** An out-of-core run's result: its maps are files (OutOfCoreOutputs), never held whole. */
export interface OutOfCoreMatchResult extends Omit<MatchResult, 'scores' | 'indices' | 'background'> {
  outOfCore: OutOfCoreOutputs & { bestScore: number; shape: Zyx; voxelSize: Zyx; origin: Zyx };
  /** With options.keepFilteredTarget and a target filter: the search's filtered tomogram, still on disk. */
  filteredTarget?: FilteredVolume;
}

/**
 * Matches a target on disk (job.target a VolumeRegionSource): each tile is read with its overlap, matched, and its
 * core written into the score and rotation MRCs by region, so memory holds tiles, never the tomogram or its maps.
 * The maps and statistics equal matchTemplate's on the same tiles bit for bit (the same tiles, rotations and order;
 * moments and statistics summed in the same order). One template, no priors, no tile shard (prepareJob refuses them
 * out of core).
 *
 * With `options.checkpoint` the maps are assembled in its folder under OUT_OF_CORE_PARTIAL's names and a small
 * checkpoint (version 3: the finished tiles' per-rotation sums, no maps) is written after each tile, once its core is
 * on the disk; `resume` reopens the partial maps and goes on at the next tile, so the statistics add in the order of
 * an uninterrupted run. A tile cut short is matched again whole. A run that stops after a checkpoint keeps the
 * partial maps (for --resume); one that stops before the first removes them.
 */
export async function matchTemplateOutOfCore(job: MatchJob, outputs: OutOfCoreOutputs, options: MatchOptions = {}): Promise<OutOfCoreMatchResult> {
  const started = Date.now();
  if (!isRegionSource(job.target)) throw new TmeError('ERR_TME_INVALID_OPTION', 'matchTemplateOutOfCore reads its target by region: give a VolumeRegionSource (MrcRegionReader)');
  if (options.signal?.aborted) throw cancelled();
  const backend = options.backend ?? defaultBackend();
  const host = backend.listDevices().find((d) => d.index === 'cpu');
  const budget = (q: PreparedJob): number => (host ? deviceBudgetBytes(q, backend, host) : (q.memoryLimitBytes ?? Infinity));
  const dir = path.dirname(path.resolve(outputs.scores));
  // A target filter's memory and disk are checked before the passes over the tomogram for its moments.
  if (job.targetFilter) {
    const q = prepareTemplates(job, { targetMoments: false })[0] as PreparedJob;
    if (q.diskFilter) checkVolumeFilter(q.targetShape, q.templateShape, budget(q), dir);
  }
  let p = prepareTemplates(job)[0] as PreparedJob;
  const geometry = { shape: p.targetShape, voxelSize: p.voxelSize, origin: p.origin };
  const checkpointDir = options.checkpoint?.dir;
  let maps: { scores: MrcRegionWriter; rotations: MrcRegionWriter } | undefined;
  const opened = (): { scores: MrcRegionWriter; rotations: MrcRegionWriter } | undefined => maps;
  let filtered: FilteredVolume | undefined;
  try {
    if (p.diskFilter && !p.diskFilter.applied) {
      // The whole tomogram through its filter first, into a temporary file beside the maps that the tiles then read.
      const d = p.diskFilter;
      filtered = await filterVolumeOutOfCore({
        source: d.raw, box: p.templateShape, filter: d.filter, padMode: p.padTarget, noDataFill: d.noDataFill, anyNoData: d.anyNoData,
        padFill: d.padFill, dir, budgetBytes: budget(p),
        ...(p.threads === undefined ? {} : { threads: p.threads }),
        ...(options.signal ? { signal: options.signal } : {}), ...(options.onFilterProgress ? { onProgress: options.onFilterProgress } : {}),
      });
      p = {
        ...p, source: filtered.source, diskFilter: { ...d, applied: true },
        targetMean: filtered.mean, targetVariance: filtered.variance, fillValue: filtered.mean,
      };
    }
    const source = p.source as VolumeRegionSource;
    const run = await searchTiles([p], started, options, {
      source,
      // A filtered target is a new temporary file each run: the tomogram it came from (and the filtered moments) say
      // which it is.
      identity: sourceIdentity(p, p.diskFilter?.raw ?? source),
      begin: (resumed) => {
        const partial = (name: string): AtomicFileOptions => {
          if (checkpointDir === undefined) return {};
          const file = path.join(checkpointDir, name);
          if (resumed && !fs.existsSync(file)) {
            throw new TmeError('ERR_TME_MISMATCH', 'the checkpoint\'s partial map is missing, so its finished tiles are lost: use --force to start over', { file });
          }
          return { temporary: file, reuse: resumed };
        };
        const scores = new MrcRegionWriter(outputs.scores, geometry, {}, partial(OUT_OF_CORE_PARTIAL.scores));
        try {
          maps = { scores, rotations: new MrcRegionWriter(outputs.rotations, geometry, {}, partial(OUT_OF_CORE_PARTIAL.rotations)) };
        } catch (err) {
          if (resumed) scores.close();
          else scores.abort();
          throw err;
        }
      },
      finishTile: (tile, scores, indices, noData) => {
        const m = opened();
        if (!m) throw new TmeError('ERR_TME_INTERNAL', 'a tile finished before the maps were opened');
        if (noData) {
          for (let i = 0; i < scores.length; i++) if (noData[i]) { scores[i] = 0; indices[i] = -1; }
        }
        let best = -Infinity;
        for (let i = 0; i < scores.length; i++) if ((scores[i] as number) > best) best = scores[i] as number;
        m.scores.writeRegion(tile.coreStart, tile.coreShape, scores);
        m.rotations.writeRegion(tile.coreStart, tile.coreShape, indices);
        // On the disk before a checkpoint says the tile is done.
        if (checkpointDir !== undefined) {
          m.scores.sync();
          m.rotations.sync();
        }
        return best;
      },
    });
    const m = opened();
    if (!m) throw new TmeError('ERR_TME_INTERNAL', 'the search finished without opening its maps');
    m.scores.commit();
    m.rotations.commit();
    const ooc = run.state.outOfCore ?? { bestScore: null, voxelCount: 0 };
    // Handed over when asked for (the finally below releases only what is not).
    const kept = options.keepFilteredTarget === true ? filtered : undefined;
    if (kept) filtered = undefined;
    return {
      ...run.summary(ooc.voxelCount, 0), outOfCore: { ...outputs, bestScore: ooc.bestScore ?? -Infinity, ...geometry },
      ...(kept ? { filteredTarget: kept } : {}),
    };
  } catch (err) {
    // A checkpoint (of this run or of the one it resumed) names the partial maps: keep them for --resume.
    const kept = checkpointDir !== undefined && fs.existsSync(path.join(checkpointDir, CHECKPOINT_FILE));
    const m = opened();
    for (const w of m ? [m.scores, m.rotations] : []) {
      if (kept) w.close();
      else w.abort();
    }
    throw err;
  } finally {
    filtered?.release();
  }
}

/**
 * What identifies a target on disk in the checkpoint's key without another pass over it: its size and modification
 * time, and the mean and variance the job's preparation read from every voxel.
 */
function sourceIdentity(p: PreparedJob, source: VolumeRegionSource): string {
  let stat: { size: number; mtimeMs: number } = { size: -1, mtimeMs: -1 };
  try { stat = fs.statSync(source.file); } catch { /* not a file (a test's source): its moments identify it */ }
  return JSON.stringify({ size: stat.size, mtimeMs: stat.mtimeMs, mean: p.targetMean, variance: p.targetVariance });
}

/** Out of core: where tiles come from, and what takes each finished tile's core maps. */
interface DiskTarget {
  source: VolumeRegionSource;
  /** Hashed into the checkpoint's key in place of the target's voxels. */
  identity: string;
  /** Called once the checkpoint (if any) has been read: whether the run resumes one. */
  begin: (resumed: boolean) => void;
  /** The core's maps (core shape) and no-data flags; returns the core's best score as written. */
  finishTile: (tile: Tile, scores: Float32Array, indices: Int32Array, noData: Uint8Array | undefined) => number;
}

/** A tile's box of the target read from disk with its no-data voxels filled, padded as in memory; the core's flags. */
export function readDiskTile(p: PreparedJob, source: VolumeRegionSource, tile: Tile, fast: Zyx): { target: Float32Array; noData: Uint8Array | undefined } {
  const n = p.targetShape;
  // The part of the box inside the target: padding reads only there ('mirror' reflects within the box read, since
  // a tile reaches at most half its support beyond a face and holds more than that inside).
  const start = perAxis((a) => Math.max(0, tile.readStart[a]));
  const end = perAxis((a) => Math.min(n[a], tile.readStart[a] + fast[a]));
  const box: Zyx = [end[0] - start[0], end[1] - start[1], end[2] - start[2]];
  // A filtered target (a temporary file): its values as they are, the no-data flags from the tomogram it came from.
  const filtered = p.diskFilter?.applied ? p.diskFilter : undefined;
  const flagged = filtered?.anyNoData ? readWithNoData(filtered.raw, start, box) : undefined;
  const read = !filtered ? readWithNoData(source, start, box)
    : flagged ? { ...flagged, data: source.readRegion(flagged.start, flagged.shape) } : { data: source.readRegion(start, box), start, shape: box, noData: undefined };
  const data = read.data;
  if (read.noData && !filtered) {
    const fill = p.padTarget === 'zero' ? 0 : p.fillValue;
    for (let i = 0; i < data.length; i++) if (read.noData[i]) data[i] = fill;
  }
  // Padding reflects about the target's faces: where the read box stops inside the target, no padding reads.
  const relative = perAxis((a) => tile.readStart[a] - read.start[a]);
  const target = extractRegion(data, read.shape, relative, fast, p.padTarget, p.fillValue);
  // The core's flags (the maps' frame out of core), where the box read has any.
  if (!read.noData) return { target, noData: undefined };
  const [cz, cy, cx] = tile.coreShape;
  const [, ry, rx] = read.shape;
  const [oz, oy, ox] = perAxis((a) => tile.coreStart[a] - read.start[a]);
  const noData = new Uint8Array(cz * cy * cx);
  let any = false;
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const from = ((oz + z) * ry + oy + y) * rx + ox;
      const row = read.noData.subarray(from, from + cx);
      noData.set(row, (z * cy + y) * cx);
      any ||= row.includes(1);
    }
  }
  return { target, noData: any ? noData : undefined };
}

/**
 * Each tile's passes over the rotations of the job's range: one over the whole range, or under priors (`field`, from
 * priorField) one per group of rotations that the same priors of the tile allow (none where no prior reaches the
 * tile). The tile loop runs these; tme estimate counts them.
 */
export function tileRotationPasses(p: PreparedJob, plan: TilePlan, field: Int32Array | undefined): Array<Array<RotationGroup | undefined>> {
  const offset = boxCentre(p.supportShape);
  const frame: MapFrame = { start: [0, 0, 0], shape: p.targetShape };
  const [rangeStart, rangeEnd] = p.rotationRange;
  return plan.tiles.map((tile) => {
    if (!field || !p.priors) return [undefined];
    const present = presentPriors(field, (visit) => forCoreRows(tile, plan.fastShape, frame, offset, (full, _local, n) => visit(full, n)));
    return rotationGroups(p.priors, present, p.rotations, rangeStart, rangeEnd);
  });
}

/** The rotations the tile loop runs over the tiles it searches (its passes' rotations, summed): what a job costs. */
export function rotationsToRun(p: PreparedJob, plan: TilePlan): number {
  // Not the run's check: tme slurm asks for an estimate before it refuses more tile shards than tiles in its own words.
  const [start, end] = tileSpan(p, plan.tiles.length);
  const passes = tileRotationPasses(p, plan, p.priors ? priorField(p.priors, p.targetShape, p.voxelSize) : undefined).slice(start, end);
  const inRange = p.rotationRange[1] - p.rotationRange[0];
  return passes.reduce((sum, tile) => sum + tile.reduce((n, g) => n + (g ? g.rotations.length : inRange), 0), 0);
}

/**
 * The tile loop both paths share (every template, pass and tile shard); out of core (`disk`) the maps are a tile
 * core's, handed to disk.finishTile.
 */
async function searchTiles(templates: readonly PreparedJob[], started: number, options: MatchOptions, disk?: DiskTarget): Promise<{
  p: PreparedJob; state: CheckpointState; voxels: number; rangeStart: number; rangeEnd: number; field: Int32Array | undefined;
  summary: (voxelCount: number, voxelsSearched: number) => Omit<MatchResult, 'scores' | 'indices' | 'background'>;
}> {
  const p = templates.length === 1 ? templates[0] as PreparedJob : severalTemplates(templates);
  // Where each template's rotations start in the run's table (p.rotations).
  const starts: number[] = [];
  templates.reduce((at, t) => { starts.push(at); return at + t.rotationCount; }, 0);
  const templateOf = (r: number): PreparedJob => {
    let k = 0;
    while (k + 1 < starts.length && (starts[k + 1] as number) <= r) k++;
    return templates[k] as PreparedJob;
  };
  const backend = options.backend ?? defaultBackend();
  const voxelStats = p.background === 'rotation-stats';
  if (voxelStats && backend.capabilities?.voxelStats !== true) {
    throw new TmeError('ERR_TME_INVALID_OPTION', `background 'rotation-stats' needs a backend that keeps per-voxel sums over rotations (the native addon); the ${backend.name} backend does not`);
  }
  const devices = resolveDevices(p.device, backend);
  const plan = planJobTiles(p, backend, devices, options.fullPadding === true);
  const fast = plan.fastShape;
  const [nz, ny, nx] = p.targetShape;
  const voxels = nz * ny * nx;
  const nRot = p.rotationCount;
  // Out of core the target is identified without a pass over the file (sourceIdentity).
  const key = hashJob(p, plan, templates.slice(1), disk?.identity);
  const statsScope: ScoreStatistics['scope'] = backend.capabilities?.statsMask === false ? 'tile' : 'core';

  const checkpointDir = options.checkpoint?.dir;
  const resumed = checkpointDir !== undefined && options.checkpoint?.resume === true
    ? readCheckpoint(checkpointDir, key, disk ? 0 : voxels, nRot, disk !== undefined) : undefined;
  const [tileStart, tileEnd] = tileShardRange(p, plan.tiles.length);
  const state = resumed ?? freshState(key, disk ? 0 : voxels, nRot, voxelStats, p.tileShard !== undefined);
  if (disk) {
    state.outOfCore ??= { bestScore: null, voxelCount: 0 };
    disk.begin(resumed !== undefined);
  }
  const wholeFrame: MapFrame = { start: [0, 0, 0], shape: p.targetShape };
  const intervalMs = 1000 * (options.checkpoint?.intervalSeconds ?? 30);
  const prepareMs = Date.now() - started;
  const priorMs = state.elapsedMs;
  let checkpointMs = 0;
  let lastCheckpoint = Date.now();
  let lastWriteMs = 0;
  let dirty = false;
  const saveCheckpoint = (): void => {
    if (checkpointDir === undefined) return;
    const t0 = Date.now();
    state.elapsedMs = priorMs + (t0 - started);
    writeCheckpoint(checkpointDir, state);
    lastWriteMs = Date.now() - t0;
    checkpointMs += lastWriteMs;
    lastCheckpoint = Date.now();
    dirty = false;
  };

  // A tile's core starts c = floor(support/2) voxels into the box it reads.
  const offset = boxCentre(p.supportShape);
  const fastVoxels = fast[0] * fast[1] * fast[2];
  // A shard searches [rangeStart, rangeEnd) of the set: the rest counts as done from the start.
  const [rangeStart, rangeEnd] = p.rotationRange;
  const inRange = rangeEnd - rangeStart;
  const field = p.priors ? priorField(p.priors, p.targetShape, p.voxelSize) : undefined;
  const tilePasses = tileRotationPasses(p, plan, field);
  const tileWork = tilePasses.map((passes) => passes.reduce((n, g) => n + (g ? g.rotations.length : inRange), 0));
  // A tile shard's work is its own tiles'.
  const workBefore = tileWork.map((_w, t) => tileWork.slice(tileStart, Math.max(tileStart, t)).reduce((a, b) => a + b, 0));
  const total = tileWork.slice(tileStart, tileEnd).reduce((a, b) => a + b, 0);
  // A first batch of a few rotations measures the cost of one; later batches follow from it (per worker: devices differ).
  const firstBatch = options.batchRotations ?? 4;
  if (!(Number.isInteger(firstBatch) && firstBatch >= 1)) throw new TmeError('ERR_TME_INVALID_OPTION', `Expected integer ≥ 1 for batchRotations but received ${firstBatch}`);
  const batches = devices.map(() => firstBatch);
  const batchMs = 1000 * (options.batchSeconds ?? 10);
  const label = devicesLabel(devices);
  const distinctDevices = [...new Set(devices.map((d) => d.index))];
  const releaseKept = (): void => { for (const d of distinctDevices) backend.releaseKeptSetup?.(d); };
  // The workers stop together: when the caller cancels, and when one of them fails.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const matchStarted = Date.now();
  let rotationsRun = 0;

  try {
    for (let t = Math.max(state.tile, tileStart); t < tileEnd; t++) {
      const tile = plan.tiles[t] as Tile;
      const fromDisk = disk ? readDiskTile(p, disk.source, tile, fast) : undefined;
      const target = fromDisk ? fromDisk.target : extractRegion(p.target, p.targetShape, tile.readStart, fast, p.padTarget, p.fillValue);
      // A template whose target differs (a target filter padded by another box) reads its own tile of it.
      const ownTargets = new Map<Float32Array, Float32Array>();
      const targetOf = (t: PreparedJob): Float32Array => {
        if (t.target === p.target) return target;
        const own = ownTargets.get(t.target) ?? extractRegion(t.target, t.targetShape, tile.readStart, fast, t.padTarget, t.fillValue);
        ownTargets.set(t.target, own);
        return own;
      };
      const targetMask = p.targetMask ? tileTargetMask(p, tile.readStart, fast) : undefined;
      const statsMask = new Uint8Array(fastVoxels);
      const targetMaskFull = p.targetMask;
      const noData = fromDisk ? fromDisk.noData : p.noData;
      // Out of core the maps are this tile's core, fresh for each tile.
      const frame: MapFrame = disk ? { start: tile.coreStart, shape: tile.coreShape } : wholeFrame;
      if (disk) {
        const coreVoxels = tile.coreShape[0] * tile.coreShape[1] * tile.coreShape[2];
        state.scores = new Float32Array(coreVoxels).fill(-Infinity);
        state.indices = new Int32Array(coreVoxels).fill(-1);
      }
      // Under priors too every rotation matched on a tile counts at every voxel of its core: the false-alarm model
      // wants the scores of noise, and the voxels near priors are where the particles are.
      forCoreRows(tile, fast, frame, offset, (full, local, n) => {
        if (!targetMaskFull && !noData) statsMask.fill(1, local, local + n);
        else {
          for (let x = 0; x < n; x++) {
            const counted = (!targetMaskFull || (targetMaskFull[full + x] as number) > 0) && !noData?.[full + x];
            statsMask[local + x] = counted ? 1 : 0;
          }
        }
      });

      const passes = tilePasses[t] as Array<RotationGroup | undefined>;
      let doneInTile = 0;
      const inFlight = new Array<number>(devices.length).fill(0);
      const report = (): void => {
        const rotationsDone = doneInTile + inFlight.reduce((a, b) => a + b, 0);
        options.onProgress?.({
          done: (workBefore[t] as number) + rotationsDone, total, tile: t, tiles: plan.tiles.length, rotationsDone, rotationsTotal: tileWork[t] as number, device: label,
        });
      };
      const queues = passes.map((group) => {
        if (!group) {
          // The tile's rotations not yet done go out in increasing order, a batch at a time, to whichever worker is free.
          const outside: RotationRanges = state.done.map(([a, b]) => [a, b]);
          if (rangeStart > 0) addRange(outside, 0, rangeStart);
          if (rangeEnd < nRot) addRange(outside, rangeEnd, nRot);
          const queue = new RotationQueue(outside, nRot, starts.slice(1));
          doneInTile += inRange - queue.remaining;
          return queue;
        }
        // A group's rotations by their place in it; those a resumed run finished count as done.
        const finished: RotationRanges = [];
        group.rotations.forEach((r, i) => { if (state.done.some(([a, b]) => r >= a && r < b)) addRange(finished, i, i + 1); });
        const queue = new RotationQueue(finished, group.rotations.length);
        doneInTile += group.rotations.length - queue.remaining;
        return queue;
      });

      for (const [g, group] of passes.entries()) {
        const queue = queues[g] as RotationQueue;
        const lastPass = g === passes.length - 1;
        const passRotations = group ? rotationSubset(p.rotations, group.rotations) : p.rotations;
        // A rotation of the pass by its index in the set.
        const globalOf = (k: number): number => (group ? (group.rotations[k] as number) : k);
        const work = async (w: number): Promise<void> => {
          const device = devices[w] as DeviceInfo;
          // The maps each call continues from: this worker's previous call on the pass, passed on as it is (no
          // tile-sized copy per batch; outside the core nothing is read back; the native addon writes the call's maps
          // back into them); none on its first (the backend starts at −∞/−1). A worker's calls see increasing
          // rotations, so its maps keep the lowest index of equal scores.
          let initialScores: Float32Array | undefined;
          let initialIndices: Int32Array | undefined;
          let chainRotations = 0;
          for (;;) {
            if (stop.signal.aborted) throw cancelled();
            const range = queue.take(Math.min(batches[w] as number, Math.ceil(queue.remaining / devices.length)));
            if (range === undefined) return;
            const [start, end] = range;
            const callStarted = Date.now();
            let live = true;
            // A call matches one template (the queue's ranges stop at each template's first rotation; priors take
            // one template) against the pass's table.
            const own = templateOf(globalOf(start));
            const result: BackendMatchResult = await backend.runMatch({
              ...sharedBackendInputs(own), ...(own.zoneFilters ? { filter: own.zoneFilters[tile.zone], filterShape: own.filterShape } : {}),
              device: device.index, target: targetOf(own), targetShape: fast, rotations: passRotations,
              targetMask: p.plan.backendScore === 'mcc' ? targetMask : undefined, statsMask,
              outputRegion: { start: offset, shape: tile.coreShape },
              rotationStart: start, rotationEnd: end, initialScores, initialIndices,
              // The next batch of this tile on the device (of this pass or the next) reuses the set-up (its transforms
              // and local statistics: they do not depend on the rotations).
              keepSetup: queue.remaining > 0 || !lastPass,
              ...(voxelStats ? { voxelStats: true } : {}),
            }, {
              signal: stop.signal,
              onProgress: options.onProgress && ((b) => { if (live) { inFlight[w] = b.done; report(); } }),
            });
            live = false;
            inFlight[w] = 0;
            const callMs = Date.now() - callStarted;
            const n = end - start;
            if (group && field) {
              // Under priors a voxel takes the pass's scores only where its own prior allows the pass's rotations.
              const { member } = group;
              forCoreRows(tile, fast, frame, offset, (full, local, len) => {
                for (let x = 0; x < len; x++) {
                  const q = field[full + x] as number;
                  const k = result.indices[local + x] as number;
                  if (q < 0 || !member[q] || k < 0) continue;
                  const sc = result.scores[local + x] as number;
                  const a = group.rotations[k] as number;
                  const best = state.scores[full + x] as number;
                  const b = state.indices[full + x] as number;
                  if (sc > best || (sc === best && (b < 0 || a < b))) { state.scores[full + x] = sc; state.indices[full + x] = a; }
                }
              });
            } else {
              // While this worker has made every finished rotation of the tile, its maps are the state's: copy them.
              const sole = chainRotations === doneInTile;
              forCoreRows(tile, fast, frame, offset, sole
                ? (full, local, len) => {
                  state.scores.set(result.scores.subarray(local, local + len), full);
                  state.indices.set(result.indices.subarray(local, local + len), full);
                }
                : (full, local, len) => mergeBest(state.scores, state.indices, full, result.scores, result.indices, local, len));
            }
            // The call's per-voxel sums (its rotations only: never chained) add into the run's.
            const { voxelSum, voxelSumSq } = state;
            if (voxelSum && voxelSumSq) {
              const rs = result.voxelSum;
              const rq = result.voxelSumSq;
              if (!rs || !rq) throw new TmeError('ERR_TME_INTERNAL', `the ${backend.name} backend returned no per-voxel sums`);
              forCoreRows(tile, fast, frame, offset, (full, local, len) => {
                for (let x = 0; x < len; x++) {
                  voxelSum[full + x] = (voxelSum[full + x] as number) + (rs[local + x] as number);
                  voxelSumSq[full + x] = (voxelSumSq[full + x] as number) + (rq[local + x] as number);
                }
              });
            }
            chainRotations += n;
            initialScores = result.scores;
            initialIndices = result.indices;
            const s = result.stats;
            for (let k = 0; k < n; k++) {
              const r = globalOf(start + k);
              const m = s.perRotationMax[k] as number;
              if (m > (state.rotationMax[r] as number)) state.rotationMax[r] = m;
              if (s.perRotationSum && s.perRotationSumSq) {
                state.rotationSum[r] = (state.rotationSum[r] as number) + (s.perRotationSum[k] as number);
                state.rotationSumSq[r] = (state.rotationSumSq[r] as number) + (s.perRotationSumSq[k] as number);
                state.rotationCount[r] = (state.rotationCount[r] as number) + s.count / n;
              }
            }
            if (!(s.perRotationSum && s.perRotationSumSq)) {
              state.looseSum += s.sum;
              state.looseSumSq += s.sumSq;
              state.looseCount += s.count;
            }
            if (group) {
              // The set's indices of the call, in runs of consecutive ones.
              for (let k = start; k < end;) {
                let e = k + 1;
                while (e < end && (group.rotations[e] as number) === (group.rotations[e - 1] as number) + 1) e++;
                addRange(state.done, group.rotations[k] as number, (group.rotations[e - 1] as number) + 1);
                k = e;
              }
            } else addRange(state.done, start, end);
            doneInTile += n;
            rotationsRun += n;
            dirty = true;
            // Large maps take a while to write: keep checkpointing under a tenth of the run time. Out of core a
            // checkpoint follows each finished tile instead (the maps of a tile in progress are not on the disk).
            if (!disk && (intervalMs === 0 || Date.now() - lastCheckpoint >= Math.max(intervalMs, 10 * lastWriteMs))) saveCheckpoint();
            // Adapt the batch unless the caller fixed it (results do not depend on it): about batchMs per call, and long
            // enough that the per-call set-up (the tile's FFT and local statistics) stays under a tenth of the call.
            if (options.batchRotations === undefined) {
              const timings = result.timings;
              const perRotation = Math.max(0.01, timings['perRotationMs'] ?? (timings['loopMs'] !== undefined ? timings['loopMs'] / n : callMs / n));
              const setup = Math.max(0, callMs - perRotation * n);
              const wanted = Math.max(batchMs, 10 * setup) / perRotation;
              batches[w] = Math.max(1, Math.min(4096, Math.round(wanted)));
            }
          }
        };
        // Every worker has settled before the run goes on or fails: none is left running.
        let failure: unknown;
        await Promise.all(devices.map(async (_d, w) => {
          try {
            await work(w);
          } catch (err) {
            failure ??= err;
            stop.abort();
          }
        }));
        if (failure !== undefined) throw failure;
      }
      let ooc: CheckpointState['outOfCore'];
      if (disk && state.outOfCore) {
        let counted = 0;
        for (let i = 0; i < statsMask.length; i++) counted += statsMask[i] as number;
        const best = disk.finishTile(tile, state.scores, state.indices, noData);
        const before = state.outOfCore.bestScore;
        ooc = { bestScore: before === null || best > before ? best : before, voxelCount: state.outOfCore.voxelCount + counted };
      }
      state.tile = t + 1;
      state.done = [];
      if (ooc) {
        state.outOfCore = ooc;
        saveCheckpoint();
      }
      // A tile shard keeps each tile's sums apart (the rotation sums then hold the tile being matched only).
      if (state.tileSums) {
        state.tileSums.push({ tile: t, sum: Array.from(state.rotationSum), sumSq: Array.from(state.rotationSumSq), count: Array.from(state.rotationCount) });
        state.rotationSum.fill(0);
        state.rotationSumSq.fill(0);
        state.rotationCount.fill(0);
      }
      // The next tile's set-ups differ: free this one's on every device.
      releaseKept();
    }
  } catch (err) {
    releaseKept();
    // Keep the work of every finished batch: a resumed run continues from there.
    if (dirty && checkpointDir !== undefined && !disk) {
      try { saveCheckpoint(); } catch { /* the original error matters more */ }
    }
    if (isTmeError(err) || !(err instanceof Error) || options.signal?.aborted !== true) throw err;
    throw cancelled();
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }

  const matchMs = Date.now() - matchStarted;
  const tileSums = state.tileSums?.map((t) => ({ tile: t.tile, sum: Float64Array.from(t.sum), sumSq: Float64Array.from(t.sumSq), count: Float64Array.from(t.count) }));
  const rotationSums = tileSums ? addTileSums(tileSums, nRot) : { sum: state.rotationSum, sumSq: state.rotationSumSq, count: state.rotationCount };
  return {
    p, state, voxels, rangeStart, rangeEnd, field,
    summary: (voxelCount, voxelsSearched) => ({
      rotations: p.rotations,
      stats: scoreStatistics(
        rotationSums, state.rotationMax,
        { sum: state.looseSum, sumSq: state.looseSumSq, count: state.looseCount }, voxelCount, statsScope,
      ),
      tilePlan: plan,
      device: { ...(devices[0] as DeviceInfo), backend: backend.name },
      devices,
      timings: {
        totalMs: priorMs + (Date.now() - started), prepareMs, matchMs, checkpointMs,
        rotationsPerSecond: matchMs > 0 ? (1000 * rotationsRun) / matchMs / (tileEnd - tileStart) : 0,
      },
      parameters: { ...parametersOf(p, templates), ...(p.tileShard ? { tileRange: [tileStart, tileEnd] as [number, number] } : {}) },
      ...(tileSums ? { tileSums } : {}),
      resumed: resumed !== undefined,
      ...(field ? {
        priors: {
          rotationsMatched: total, rotationsWithout: inRange * (tileEnd - tileStart), voxelsSearched,
          passes: tilePasses.reduce((n, passes) => n + passes.length, 0),
        },
      } : {}),
    }),
  };
}

/**
 * background 'random-phase': the search, then the same search with the template's phases randomised (seeded); the
 * corrected score is the difference of the two best-score maps. Two whole searches in one call, so neither checkpoints
 * nor shards are built for it (refused, not ignored).
 */
async function matchRandomPhase(job: MatchJob, options: MatchOptions): Promise<MatchResult> {
  const p = prepareTemplates(job)[0] as PreparedJob;
  if (options.checkpoint !== undefined) {
    throw new TmeError('ERR_TME_INVALID_OPTION', "background 'random-phase' runs two searches in one job and does not checkpoint them; run without checkpoints (tme: without --resume), or use 'rotation-stats'");
  }
  const seed = p.randomPhaseSeed;
  const total = { done: 0 };
  const pass = (second: boolean): MatchOptions => ({
    ...options,
    onProgress: options.onProgress && ((q) => {
      total.done = q.done + (second ? q.total : 0);
      options.onProgress?.({ ...q, done: total.done, total: 2 * q.total });
    }),
  });
  const real = await matchTemplate({ ...job, background: 'none' }, pass(false));
  const noiseTemplate: Volume = { ...job.template, data: phaseRandomised(job.template.data, job.template.shape, seed) };
  const noise = await matchTemplate({ ...job, template: noiseTemplate, background: 'none' }, pass(true));
  const corrected = new Float32Array(real.scores.data.length);
  for (let i = 0; i < corrected.length; i++) corrected[i] = (real.scores.data[i] as number) - (noise.scores.data[i] as number);
  const t = real.timings;
  const matchMs = t.matchMs + noise.timings.matchMs;
  return {
    ...real,
    timings: {
      totalMs: t.totalMs + noise.timings.totalMs, prepareMs: t.prepareMs + noise.timings.prepareMs, matchMs,
      checkpointMs: 0, rotationsPerSecond: matchMs > 0 ? (1000 * 2 * p.rotationCount) / matchMs / real.tilePlan.tiles.length : 0,
    },
    parameters: parametersOf(p),
    background: { kind: 'random-phase', seed, randomPhaseScores: noise.scores, corrected: { ...real.scores, data: corrected } },
  };
}
