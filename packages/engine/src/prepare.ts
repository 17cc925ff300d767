import * as os from 'node:os';
import { TmeError, invalidOption, type Volume, type VolumeRegionSource, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import { BACKGROUNDS, type Background } from './background';
import { isDeviceList, type DeviceSelection, type Interpolation, type RotationMode, type SpectrumPrecision } from './backend';
import { templateSupport } from './support';
import { laplacian, standardise } from './laplace';
import { findNoData } from './no-data';
import { inscribedRadius, sphereMask } from './masks';
import { DEFAULT_PAD_MODE, extractRegion, resolvePadMode, type PadMode } from './padding';
import { checkPriors, type PositionPriors } from './priors';
import { DEFAULT_SCORE, planScore, resolveScore, type ScoreName, type ScorePlan } from './scores';

/** A Fourier filter for one FFT shape: a real half-spectrum (nz, ny, nx/2+1), unshifted (see the contract). */
export type FilterFunction = (shape: Zyx, voxelSize: Zyx) => Float32Array;

/** A filter that also gives the ky rows [y0, y1) of every kz plane of its half spectrum, laid out (nz, y1 − y0,
 *  nx/2+1), without the rest (@tme/template's buildTargetFilter): what a target on disk is filtered with. */
export type RowFilterFunction = FilterFunction & { rows: (shape: Zyx, voxelSize: Zyx, rows: readonly [number, number]) => Float32Array };

/** One template search: the inputs, given once per job. */
export interface MatchJob {
  /** The tomogram. Voxel size in Å (z, y, x). A region source (an MRC on disk, MrcRegionReader) is matched out of
   *  core: read tile by tile, its maps written by region (matchTemplateOutOfCore). */
  target: Volume | VolumeRegionSource;
  /** The template on its box; centre floor(shape/2). Same voxel size as the target (±1 %). */
  template: Volume;
  /** Template mask on the template box (values 0..1). Default: a sphere of `maskRadius`. */
  templateMask?: Volume;
  /** Radius of a spherical template mask, in Å. Default: the largest sphere inside the template box. */
  maskRadius?: number;
  /** Target mask (target shape, values 0..1): required by mcc; restricts the score statistics for every score. */
  targetMask?: Volume;
  /** Fourier filter (wedge, CTF, band-pass, whitening) of the rotated template, asked for once on the template's own
   *  grid (`filterGridFor`: 1.5× the box at a fast FFT size): every rotated template is filtered there, then
   *  normalised under its mask.
   *  Default: none. */
  filter?: FilterFunction;
  /** Per-zone template filters (the CTFs at each zone's defocus, @tme/template's defocusZones): `splits` zones per
   *  axis with the tiles' rounding, `filters` z-major. A zone boundary splits the tiles; every tile uses its zone's
   *  filter in place of `filter`. Default: one zone. */
  zones?: { splits: Zyx; filters: readonly FilterFunction[] };
  /** Fourier filter of the target (band-pass, whitening, the sampled tilt range's binary wedge): applied once to the
   *  whole target, continued by `padTarget` by a template box on every side so the faces do not wrap into each
   *  other. Out of core (a target on disk) the filter must give blocks of rows (RowFilterFunction): the whole target
   *  is filtered by passes over temporary files in the maps' folder (volume-filter.ts). Default: none. */
  targetFilter?: FilterFunction | RowFilterFunction;
  /** Rotations, 9 values each (row-major, xyz frame, active template→tomogram). The order is the search order. */
  rotations: Float64Array;
  /** Score name or pyTME alias. Default 'flc-sphere'. */
  score?: ScoreName | string;
  /** Device: 'auto' (a GPU, else the CPU path), 'gpu', 'cpu', 'vulkan-cpu' or a device index; or several, which
   *  split each tile's rotations: 'gpu:all' or a list of those. Default 'auto'. */
  device?: DeviceSelection;
  /** CPU threads for the CPU path. Default: the backend's choice (all cores). */
  threads?: number;
  /** 'auto' (split only to fit the device's memory) or the tile each device call reads, (z, y, x) voxels,
   *  core + the template's support − 1 per axis (`supportShape`: the box, or less where a mask confines the
   *  template). Default 'auto'. */
  tile?: 'auto' | Zyx;
  /** How the target continues beyond its edges. Default 'mean'. */
  padTarget?: PadMode;
  /** Template rotation interpolation. Default 'linear'. */
  interpolation?: Interpolation;
  /** Real-space (2 FFTs per rotation) or Fourier-space rotation (1 FFT + a gather). Default 'real'. */
  rotationMode?: RotationMode;
  /** Vulkan: the target's spectra on the device as float32 ('single') or float16 pairs ('half': half their memory
   *  and read traffic; maps within ~5e-4 of the best score). Default 'single'; the CPU refuses 'half'. */
  spectrumPrecision?: SpectrumPrecision;
  /** Fraction of a device's memory a job may plan for. Default 0.85. */
  memoryFraction?: number;
  /** At most this many bytes of host memory for the whole job (a cluster allocation: SLURM --mem); default: what
   *  the machine has free when the job is planned. */
  memoryLimitBytes?: number;
  /** Search only the rotations [start, end) of the set (a shard of a search split over jobs; merged exactly by
   *  mergeShards). Default: all. */
  rotationRange?: readonly [number, number];
  /** Search only the `index`-th (from 0) of `count` contiguous parts of the tile plan's tiles (a shard of a target
   *  too large for one device; merged exactly by mergeShards). Default: every tile. */
  tileShard?: { index: number; count: number };
  /** What to do about features that score high for every rotation (background.ts): 'none', 'rotation-stats' (mean
   *  and σ per voxel over rotations, and (best − mean) / σ) or 'random-phase' (a second search with a phase-randomised
   *  template, subtracted). Default 'none'. */
  background?: Background;
  /** The random-phase template's seed. Default 1. */
  randomPhaseSeed?: number;
  /** Templates 1, 2, … searched in the same pass as `template` (template 0), each with its own mask and rotations
   *  (its symmetry's asymmetric unit) and the job's filter on its own box. Every tile is read and set up once and
   *  then matched against each template in turn; per voxel the best score over all templates wins. The result's
   *  rotation table is the templates' rotations one after another (template k's from `templateRotationStarts[k]`),
   *  so the rotation-index map also says which template won. Not with `rotationRange` or a background option. */
  moreTemplates?: readonly TemplateInput[];
  /** Cones of allowed orientations around positions (priors.ts): rotations outside every cone of a tile are not
   *  matched there, each voxel's best is over its nearest prior's cone, and voxels near no prior are not searched.
   *  Default none. */
  priors?: PositionPriors;
}

/** One more template of a job (MatchJob.moreTemplates): the fields of MatchJob that belong to a template. */
export interface TemplateInput {
  template: Volume;
  templateMask?: Volume;
  maskRadius?: number;
  rotations: Float64Array;
}

/** Everything after validation and preprocessing: what the loop and job.json use. */
export interface PreparedJob extends CheckedJobOptions {
  rotationCount: number;
  /** Out of core: the target on disk, read tile by tile (out-of-core.ts); `target` is then empty. */
  source: VolumeRegionSource | undefined;
  /** The rotations searched, [start, end): the whole set unless the job is a shard. */
  rotationRange: readonly [number, number];
  /** The preprocessed target; empty out of core (`source`). */
  tileShard?: { index: number; count: number };
  /** Fourier rotation: the template filter was applied to the whole target here (the backend gets none), so tiles
   *  agree with a whole-target run (out of core it is refused: checkOutOfCore). */
  templateFilterInTarget?: boolean;
  target: Float32Array;
  targetShape: Zyx;
  voxelSize: Zyx;
  origin: Zyx;
  template: Float32Array;
  templateShape: Zyx;
  mask: Float32Array;
  /** The centred sub-box of the template box outside which every correlated kernel is zero (support.ts): what the
   *  tiles pad by and overlap by. */
  supportShape: Zyx;
  /** Å, when the mask is a sphere. */
  maskRadius: number | undefined;
  targetMask: Float32Array | undefined;
  /** The value 'mean' padding fills with: the mean of the (preprocessed) target. */
  fillValue: number;
  filter: FilterFunction | undefined;
  /** CTF zones per axis ([1, 1, 1]: one) and each zone's filter on `filterShape` (undefined with one zone). */
  zoneSplits: Zyx;
  zoneFilters: Float32Array[] | undefined;
  /** The filter on `filterShape` (`filterGridFor` the template box), checked; undefined without a filter. */
  templateFilter: Float32Array | undefined;
  filterShape: Zyx;
  /** Mean and variance of the (preprocessed) target's data voxels: every tile normalises and judges flatness by these. */
  targetMean: number;
  targetVariance: number;
  /** 1 where the target holds no data (an exactly constant region: outside a reconstruction's field of view, a
   *  masked or cropped volume); those voxels were set to the padding's value and score nothing. Undefined: none. */
  noData: Uint8Array | undefined;
  rotations: Float64Array;
  /** Checked priors (unit directions), or undefined. */
  priors: Required<PositionPriors> | undefined;
  /** Out of core with a target filter: what its passes need (the tomogram on disk, its no-data fill, whether it has
   *  no-data voxels, the padding's fill), until matchTemplateOutOfCore has filtered it (`applied`): then `source` is
   *  the filtered file and the no-data flags are read from `raw`. */
  diskFilter?: { filter: RowFilterFunction; raw: VolumeRegionSource; noDataFill: number; padFill: number; anyNoData: boolean; applied: boolean };
}

const INTERPOLATIONS: readonly Interpolation[] = ['linear', 'cubic'];
const ROTATION_MODES: readonly RotationMode[] = ['real', 'fourier'];
const SPECTRUM_PRECISIONS: readonly SpectrumPrecision[] = ['single', 'half'];

function sameVoxelSize(a: Zyx, b: Zyx): boolean {
  return [0, 1, 2].every((i) => Math.abs((a[i] as number) - (b[i] as number)) <= 0.01 * (a[i] as number));
}

function checkFinite(data: Float32Array, what: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i] as number)) throw new TmeError('ERR_TME_INVALID_OPTION', `${what} holds a non-finite value at index ${i}`);
  }
}

/** Mean and variance of the voxels not flagged in `skip` (all of them without it). */
function moments(data: Float32Array, skip?: Uint8Array): { mean: number; variance: number } {
  if (!skip) {
    let s = 0;
    for (let i = 0; i < data.length; i++) s += data[i] as number;
    const mean = data.length > 0 ? s / data.length : 0;
    let q = 0;
    for (let i = 0; i < data.length; i++) { const d = (data[i] as number) - mean; q += d * d; }
    return { mean, variance: data.length > 0 ? q / data.length : 0 };
  }
  let s = 0;
  let n = 0;
  for (let i = 0; i < data.length; i++) if (!skip?.[i]) { s += data[i] as number; n++; }
  const mean = n > 0 ? s / n : 0;
  let q = 0;
  for (let i = 0; i < data.length; i++) if (!skip?.[i]) q += ((data[i] as number) - mean) ** 2;
  return { mean, variance: n > 0 ? q / n : 0 };
}

/**
 * The grid each rotated template is filtered on: 1.5× the box at a fast size. The filter's real-space spread (a wedge
 * smears along z) wraps around a grid the size of the box: measured on the ribosome (28³ box, ±60° wedge, CTF), the
 * filtered template under the mask correlated 0.9925 with the unwrapped one on the box, 0.9984 on 1.5×, 0.9995 on 2×,
 * and the particles' mean peak height over the best-score map's spread was 6.55, 6.67 and 6.68 (SNR 0.01).
 */
export function filterGridFor(box: Zyx): Zyx {
  return native.nextFastShape([Math.ceil(1.5 * box[0]), Math.ceil(1.5 * box[1]), Math.ceil(1.5 * box[2])]);
}

/** The filter's values on `shape`, checked against the half-spectrum layout. */
function filterOn(filter: FilterFunction, shape: Zyx, voxelSize: Zyx): Float32Array {
  const f = filter(shape, voxelSize);
  const expected = shape[0] * shape[1] * (Math.floor(shape[2] / 2) + 1);
  if (!(f instanceof Float32Array) || f.length !== expected) {
    throw new TmeError('ERR_TME_MISMATCH', `the filter for FFT shape (${shape.join(', ')}) has ${f.length} values; a half-spectrum needs ${expected}`);
  }
  for (let i = 0; i < f.length; i++) {
    if (!Number.isFinite(f[i] as number)) throw new TmeError('ERR_TME_INVALID_OPTION', `the filter holds a non-finite value at index ${i}`);
  }
  return f;
}

/**
 * The whole target through its filter: continued by `mode` a template box beyond every face, filtered on that grid
 * (a fast FFT shape) with the native FFT, and cut back.
 */
function filterTarget(data: Float32Array, shape: Zyx, voxelSize: Zyx, box: Zyx, filter: FilterFunction, mode: PadMode): Float32Array {
  const grid = targetFilterGrid(shape, box);
  const start: Zyx = [-box[0], -box[1], -box[2]];
  const padded = extractRegion(data, shape, start, grid, mode, moments(data).mean);
  const filtered = filterOnGrid(padded, grid, filterOn(filter, grid, voxelSize));
  return extractRegion(filtered, grid, box, shape, 'zero');
}

/** The grid the target's filter works on: the target and a template box beyond every face, at a fast FFT size (in
 *  memory and out of core alike). */
export function targetFilterGrid(shape: Zyx, box: Zyx): Zyx {
  return native.nextFastShape([shape[0] + 2 * box[0], shape[1] + 2 * box[1], shape[2] + 2 * box[2]]);
}

/** `data` on `grid` times the half-spectrum filter `h`, by the native CPU FFT on every core (nothing else runs yet),
 *  in place: `data` is scratch the caller gives up (a padded copy), and no second grid-sized array is made. */
export function filterOnGrid(data: Float32Array, grid: Zyx, h: Float32Array): Float32Array {
  return native.filterVolume(data, grid, h, { threads: os.availableParallelism(), inPlace: true });
}

/** The options of a job that are plain values (no arrays), checked before any data is looked at. */
export type JobOptions = Pick<MatchJob,
  'score' | 'device' | 'threads' | 'tile' | 'padTarget' | 'interpolation' | 'rotationMode' | 'spectrumPrecision' | 'memoryFraction' | 'memoryLimitBytes' | 'maskRadius'
  | 'background' | 'randomPhaseSeed'>
  & {
    /** Whether the template's filter changes with depth (job.zones with several zones). */ zoned?: boolean;
    /** Whether only part of the rotations is searched (job.rotationRange: a shard). */ sharded?: boolean;
  };

/** How a caller's user spells each option in messages (a CLI's flags); default the field's own name. */
export type OptionNames = Partial<Record<keyof JobOptions, string>>;

/** The job's options with defaults filled in, checked. */
export interface CheckedJobOptions {
  score: ScoreName;
  plan: ScorePlan;
  padTarget: PadMode;
  interpolation: Interpolation;
  rotationMode: RotationMode;
  spectrumPrecision: SpectrumPrecision;
  device: DeviceSelection;
  threads: number | undefined;
  tile: 'auto' | Zyx;
  memoryFraction: number;
  memoryLimitBytes: number | undefined;
  background: Background;
  randomPhaseSeed: number;
}

/**
 * The one check of a job's plain options: prepareJob runs it, and a layer above (a search description) runs it
 * first with its user's names for the options, so that its messages name the flag the user typed.
 */
export function checkJobOptions(job: JobOptions, names: OptionNames = {}): CheckedJobOptions {
  const name = (field: keyof JobOptions): string => names[field] ?? field;
  const score = resolveScore(job.score ?? DEFAULT_SCORE, name('score'));
  const plan = planScore(score);
  const padTarget = resolvePadMode(job.padTarget ?? DEFAULT_PAD_MODE, name('padTarget'));
  const interpolation = job.interpolation ?? 'linear';
  if (!INTERPOLATIONS.includes(interpolation)) throw invalidOption(name('interpolation'), 'linear or cubic', interpolation);
  const rotationMode = job.rotationMode ?? 'real';
  if (!ROTATION_MODES.includes(rotationMode)) throw invalidOption(name('rotationMode'), 'real or fourier', rotationMode);
  // Sampling a rotated spectrum needs one template term; flc and mcc rotate the mask as well.
  if (rotationMode === 'fourier' && (plan.backendScore === 'flc' || plan.backendScore === 'mcc')) {
    throw invalidOption(name('rotationMode'), `real for the ${score} score (fourier serves cc, lcc, corr, cam and flc-sphere)`, rotationMode);
  }
  // Fourier mode multiplies the gathered spectrum by one filter on the tile's grid; zones change it with depth.
  if (rotationMode === 'fourier' && job.zoned) {
    throw invalidOption(name('rotationMode'), `real when the template's filter changes with depth (${names.zoned ?? 'CTF zones'})`, rotationMode);
  }
  const device = job.device ?? 'auto';
  const isSpec = (d: unknown): boolean => d === 'auto' || d === 'gpu' || d === 'cpu' || d === 'vulkan-cpu' || (Number.isInteger(d) && (d as number) >= 0);
  if (!(isSpec(device) || device === 'gpu:all' || (isDeviceList(device) && device.length > 0 && device.every(isSpec)))) {
    throw invalidOption(name('device'), 'auto, gpu, cpu, vulkan-cpu, a device index ≥ 0, gpu:all, or a non-empty list of devices', device);
  }
  if (job.threads !== undefined && !(Number.isInteger(job.threads) && job.threads >= 1)) throw invalidOption(name('threads'), 'an integer ≥ 1', job.threads);
  const tile = job.tile ?? 'auto';
  if (tile !== 'auto' && !(Array.isArray(tile) && tile.length === 3 && tile.every((n) => Number.isInteger(n) && n >= 1))) {
    throw invalidOption(name('tile'), 'auto or three integers ≥ 1 (z, y, x)', tile);
  }
  const memoryFraction = job.memoryFraction ?? 0.85;
  if (!(memoryFraction > 0 && memoryFraction <= 1)) throw invalidOption(name('memoryFraction'), 'a number in (0, 1]', memoryFraction);
  const memoryLimitBytes = job.memoryLimitBytes;
  if (memoryLimitBytes !== undefined && !(Number.isFinite(memoryLimitBytes) && memoryLimitBytes > 0)) {
    throw invalidOption(name('memoryLimitBytes'), 'a number of bytes > 0', memoryLimitBytes);
  }
  if (job.maskRadius !== undefined && !(Number.isFinite(job.maskRadius) && job.maskRadius > 0)) {
    throw invalidOption(name('maskRadius'), 'a radius > 0 Å', job.maskRadius);
  }
  const background = job.background ?? 'none';
  if (!BACKGROUNDS.includes(background)) throw invalidOption(name('background'), BACKGROUNDS.join(', '), background);
  const randomPhaseSeed = job.randomPhaseSeed ?? 1;
  if (!Number.isInteger(randomPhaseSeed)) throw invalidOption(name('randomPhaseSeed'), 'an integer', randomPhaseSeed);
  if (background === 'random-phase' && job.sharded) {
    throw invalidOption(name('background'), `none or rotation-stats with ${names.sharded ?? 'a shard'} (random-phase runs its second search within one job)`, background);
  }
  const spectrumPrecision = job.spectrumPrecision ?? 'single';
  if (!SPECTRUM_PRECISIONS.includes(spectrumPrecision)) throw invalidOption(name('spectrumPrecision'), 'single or half', spectrumPrecision);
  // Float16 spectra are a Vulkan storage format; the CPU path's spectra stay float32. The default device ('auto') is
  // the CPU on a machine without a GPU, so half asks for a Vulkan device by name.
  const onCpu = device === 'cpu' || device === 'auto' || (isDeviceList(device) && device.includes('cpu'));
  if (spectrumPrecision === 'half' && onCpu) {
    throw invalidOption(name('spectrumPrecision'), `single on the CPU (half is for a Vulkan ${names.device ?? 'device'}: give it by index, gpu or gpu:all)`, spectrumPrecision);
  }
  return {
    score, plan, padTarget, interpolation, rotationMode, spectrumPrecision, device, threads: job.threads, tile, memoryFraction, memoryLimitBytes, background, randomPhaseSeed,
  };
}


export interface PrepareOptions {
  /** Out of core: read the target through to find its moments (two passes over the file). Default true; an estimate
   *  that times nothing skips them (targetMean 0, targetVariance 1 then). */
  targetMoments?: boolean;
  /** A job prepared from the same target and options (template 0 of a multi-template job), whose preprocessed target
   *  is taken as it is where this template's would be the same (no target filter, or one padded by the same box). */
  sameTarget?: PreparedJob;
}

/** Validates a job and applies the score's preprocessing (Laplacian for lcc, standardisation for cam). */
export function prepareJob(job: MatchJob, options: PrepareOptions = {}): PreparedJob {
  const checked = checkJobOptions({ ...job, zoned: (job.zones?.filters.length ?? 1) > 1, sharded: job.rotationRange !== undefined || job.tileShard !== undefined });
  const { score, plan, padTarget, interpolation, rotationMode, spectrumPrecision, device, tile, memoryFraction, memoryLimitBytes, background, randomPhaseSeed } = checked;

  const priors = job.priors === undefined ? undefined : checkPriors(job.priors);
  // Per-voxel statistics over rotations would mix each voxel's allowed rotations with the others of its tile.
  if (priors !== undefined && background !== 'none') throw invalidOption('background', "'none' with priors", background);
  const { tileShard } = job;
  if (tileShard !== undefined) {
    const { index, count } = tileShard;
    if (!(Number.isInteger(index) && Number.isInteger(count) && index >= 0 && index < count)) {
      throw invalidOption('tileShard', 'i/n with 0 ≤ i < n', `${index}/${count}`);
    }
    // One kind of shard at a time: mergeShards joins either rotation ranges or tile ranges of one whole search.
    if (job.rotationRange !== undefined) throw invalidOption('tileShard', 'no rotationRange as well (shard by rotations or by tiles)', `${index}/${count}`);
  }
  const { target } = job;
  if (isRegionSource(target)) return prepareOutOfCore(job, checked, target, options.targetMoments ?? true);
  const side = prepareTemplateSide(job, checked, target);
  checkFinite(target.data, 'the target');
  const { sameTarget } = options;

  let targetMask: Float32Array | undefined;
  if (job.targetMask) {
    if (!job.targetMask.shape.every((n, i) => n === target.shape[i])) {
      throw new TmeError('ERR_TME_MISMATCH', `target mask shape (${job.targetMask.shape.join(', ')}) differs from the target's (${target.shape.join(', ')})`);
    }
    // Every template of a job reads the same target mask: one copy.
    targetMask = sameTarget?.targetMask ?? Float32Array.from(job.targetMask.data);
    if (targetMask !== sameTarget?.targetMask) checkFinite(targetMask, 'the target mask');
  } else if (plan.needsTargetMask) {
    throw new TmeError('ERR_TME_INVALID_OPTION', `the ${score} score needs a target mask (--target-mask)`);
  }

  const { template } = job;
  // The target filter is padded by the template's box: only with the same box is another template's target this one's.
  // Fourier rotation correlates the target through the template's filter with the unfiltered rotated template (native
  // README): filtered here, whole, like the target filter (per tile, a wedge's spread would wrap around each tile).
  const fourierFilter = rotationMode === 'fourier' ? job.filter : undefined;
  const reuse = sameTarget !== undefined && ((!job.targetFilter && !fourierFilter) || sameTarget.templateShape.every((n, i) => n === template.shape[i]));
  // Regions without data take the padding's value, so that their edges look like the target's faces (a 0-filled
  // band beside a mean-padded face would otherwise be a step the template matches), and they score nothing.
  const noData = reuse ? sameTarget.noData : findNoData(target.data, target.shape);
  let raw = target.data;
  if (noData && !reuse) {
    const fill = padTarget === 'zero' ? 0 : moments(target.data, noData).mean;
    raw = Float32Array.from(target.data);
    for (let i = 0; i < raw.length; i++) if (noData[i]) raw[i] = fill;
  }
  let targetData = reuse ? sameTarget.target : job.targetFilter
    ? filterTarget(raw, target.shape, target.voxelSize, template.shape, job.targetFilter, padTarget)
    : raw;
  if (plan.laplace && !reuse) targetData = laplacian(targetData, target.shape, 'nearest');
  if (plan.standardise && !reuse) targetData = standardise(targetData);
  if (fourierFilter && !reuse) targetData = filterTarget(targetData, target.shape, target.voxelSize, template.shape, fourierFilter, padTarget);
  const { mean, variance } = reuse ? { mean: sameTarget.targetMean, variance: sameTarget.targetVariance } : moments(targetData, noData);
  return {
    score, plan, padTarget, interpolation, rotationMode, spectrumPrecision, device, threads: job.threads, tile, memoryFraction, memoryLimitBytes,
    rotationCount: side.rotations.length / 9, rotationRange: side.rotationRange,
    ...(tileShard ? { tileShard: { index: tileShard.index, count: tileShard.count } } : {}), background, randomPhaseSeed, source: undefined,
    target: targetData, targetShape: target.shape, voxelSize: target.voxelSize, origin: target.origin,
    template: side.template, templateShape: template.shape, mask: side.mask, supportShape: side.supportShape, maskRadius: side.maskRadius,
    targetMask, fillValue: mean, filter: job.filter, zoneSplits: side.zoneSplits, zoneFilters: side.zoneFilters, templateFilter: side.templateFilter,
    filterShape: side.filterShape, targetMean: mean, targetVariance: variance, noData, rotations: side.rotations, priors,
    ...(fourierFilter ? { templateFilterInTarget: true } : {}),
  };
}

/** Whether a job's target is read from disk by region (out of core) rather than held whole. */
export function isRegionSource(target: Volume | VolumeRegionSource): target is VolumeRegionSource {
  return typeof (target as VolumeRegionSource).readRegion === 'function';
}

/**
 * What the out-of-core path supports: the target is read tile by tile, so every step that needs the whole target at
 * once is refused with the flag that asks for it (the message names `names`' spelling).
 */
export function checkOutOfCore(job: {
  /** 'no-rows': a filter that cannot give blocks of rows. */
  targetFilter?: boolean | 'no-rows'; targetMask?: boolean; score?: string; background?: string; moreTemplates?: boolean; priors?: boolean; tileShard?: boolean;
  /** Fourier-space rotation with a template filter. */
  fourierFilter?: boolean;
}, names: {
  targetFilter?: string; targetMask?: string; score?: string; background?: string; moreTemplates?: string; priors?: string; tileShard?: string;
  rotationMode?: string;
} = {}): void {
  const refuse = (what: string, why: string): never => {
    throw new TmeError('ERR_TME_UNSUPPORTED', `${what} is not available for a tomogram matched out of core (larger than memory): ${why}; bin or crop the tomogram, or give more --memory`);
  };
  // The target's filter is applied to the whole volume out of core too (volume-filter.ts), given blocks of rows.
  if (job.targetFilter === 'no-rows') refuse(names.targetFilter ?? 'targetFilter', 'a target filter on disk is applied by blocks of rows (RowFilterFunction, @tme/template\'s buildTargetFilter)');
  if (job.targetMask) refuse(names.targetMask ?? 'targetMask', 'the target mask is read whole');
  const checked = checkJobOptions({ score: job.score });
  if (checked.plan.laplace || checked.plan.standardise) refuse(`${names.score ?? 'score'} ${checked.score}`, 'its preprocessing acts on the whole tomogram');
  if ((job.background ?? 'none') !== 'none') refuse(`${names.background ?? 'background'} ${job.background ?? ''}`, 'its per-voxel maps are held whole');
  // A tile filtered on its own would wrap the filter's spread around the tile: out of core the picks then depended on
  // the tiling (48×80×80 under a ±60° wedge and a 30 Å low-pass: 3 picks at other angles against the in-memory 2).
  if (job.fourierFilter) {
    refuse(`${names.rotationMode ?? 'rotationMode'} fourier with a template filter`,
      'the whole tomogram is filtered by the template\'s filter first (real-space rotation, the default, has no such limit)');
  }
  // Not built out of core (the tile loop supports them in memory only): refused rather than run untested.
  if (job.moreTemplates) refuse(names.moreTemplates ?? 'moreTemplates', 'several templates in one pass are matched in memory only; search one template at a time');
  if (job.priors) refuse(names.priors ?? 'priors', 'priors per position are matched in memory only');
  if (job.tileShard) refuse(names.tileShard ?? 'tileShard', 'tile shards are matched in memory only');
}

/** A (z, y, x) tuple from one value per axis. */
export function perAxis(f: (axis: 0 | 1 | 2) => number): Zyx {
  return [f(0), f(1), f(2)];
}

/** Bytes read at once by the out-of-core passes over the target: at least 16 sections, so that the halo findNoData
 *  reads about them (2 sections each side) costs at most a quarter more. */
const SLAB_BYTES = 256 * 2 ** 20;
const SLAB_SECTIONS = 16;
export const NO_DATA_HALO = 2;

/**
 * The target's no-data voxels of the box [start, start + shape) (inside the target), from the box read with a halo
 * of NO_DATA_HALO voxels: findNoData looks one voxel around and grows one voxel, so that halo gives the same answer
 * as the whole volume. Returns the box read (with its halo) and its flags, or undefined flags when there are none.
 */
export function readWithNoData(source: VolumeRegionSource, start: Zyx, shape: Zyx): {
  data: Float32Array; start: Zyx; shape: Zyx; noData: Uint8Array | undefined;
} {
  const lo = perAxis((a) => Math.max(0, start[a] - NO_DATA_HALO));
  const hi = perAxis((a) => Math.min(source.shape[a], start[a] + shape[a] + NO_DATA_HALO));
  const boxShape: Zyx = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
  const data = source.readRegion(lo, boxShape);
  return { data, start: lo, shape: boxShape, noData: findNoData(data, boxShape) };
}


/**
 * Prepares a job whose target is on disk: the template side as in memory, and the target's moments (the numbers
 * every tile normalises by) from two passes over it in z-slabs, in voxel order, so that they equal the in-memory
 * run's to the last bit; no-data regions are found per slab with a halo (same flags as the whole volume's).
 */
function prepareOutOfCore(job: MatchJob, checked: CheckedJobOptions, source: VolumeRegionSource, targetMoments: boolean): PreparedJob {
  checkOutOfCore({
    targetFilter: job.targetFilter === undefined ? false : 'rows' in job.targetFilter ? true : 'no-rows', targetMask: job.targetMask !== undefined, score: checked.score, background: checked.background,
    moreTemplates: (job.moreTemplates?.length ?? 0) > 0, priors: job.priors !== undefined, tileShard: job.tileShard !== undefined,
    fourierFilter: checked.rotationMode === 'fourier' && job.filter !== undefined,
  });
  const side = prepareTemplateSide(job, checked, source);
  const [nz, ny, nx] = source.shape;
  const section = ny * nx;
  const slab = Math.max(SLAB_SECTIONS, Math.min(nz, Math.floor(SLAB_BYTES / (4 * section))));
  // Pass 1: finite values, the no-data voxels and the sum over the others; pass 2 the squared deviations.
  let s = 0;
  let n = 0;
  let anyNoData = false;
  if (!targetMoments) { s = 0; n = 1; }
  const eachSlab = (noData: boolean, visit: (data: Float32Array, skip: Uint8Array | undefined, from: number, to: number, first: number) => void): void => {
    for (let z0 = 0; z0 < nz; z0 += slab) {
      const zn = Math.min(slab, nz - z0);
      const read = noData ? readWithNoData(source, [z0, 0, 0], [zn, ny, nx]) : { data: source.readRegion([z0, 0, 0], [zn, ny, nx]), start: [z0, 0, 0], noData: undefined };
      const from = (z0 - read.start[0]) * section;
      visit(read.data, read.noData, from, from + zn * section, z0 * section);
    }
  };
  if (targetMoments) eachSlab(true, (data, skip, from, to, first) => {
    for (let i = from; i < to; i++) {
      const v = data[i] as number;
      if (!Number.isFinite(v)) {
        throw new TmeError('ERR_TME_FORMAT', `holds ${String(v)} at voxel ${first + i - from} (NaN or infinite values cannot be matched)`, { file: source.file });
      }
      if (skip?.[i]) { anyNoData = true; continue; }
      s += v;
      n++;
    }
  });
  const mean = n > 0 ? s / n : 0;
  let q = targetMoments ? 0 : 1;
  // A target filter: its passes (matchTemplateOutOfCore) need the no-data fill and the padding's (prepareJob's: the
  // mean of the tomogram with those voxels filled), and the moments are the filtered target's, found there.
  const filter = job.targetFilter && 'rows' in job.targetFilter ? job.targetFilter : undefined;
  const noDataFill = checked.padTarget === 'zero' ? 0 : mean;
  const voxels = nz * section;
  const diskFilter = filter && {
    filter, raw: source, noDataFill, anyNoData, applied: false,
    padFill: anyNoData ? (s + (voxels - n) * noDataFill) / voxels : mean,
  };
  // The in-memory moments square in two spellings (with and without no-data voxels); the same here, bit for bit.
  // The no-data flags again only where pass 1 found some (the usual tomogram has none: one plain read).
  if (targetMoments && !filter) eachSlab(anyNoData, (data, skip, from, to) => {
    if (!anyNoData) {
      for (let i = from; i < to; i++) { const d = (data[i] as number) - mean; q += d * d; }
    } else {
      for (let i = from; i < to; i++) if (!skip?.[i]) q += ((data[i] as number) - mean) ** 2;
    }
  });
  const variance = n > 0 ? q / n : 0;
  const { score, plan, padTarget, interpolation, rotationMode, spectrumPrecision, device, tile, memoryFraction, memoryLimitBytes, background, randomPhaseSeed } = checked;
  return {
    score, plan, padTarget, interpolation, rotationMode, spectrumPrecision, device, threads: job.threads, tile, memoryFraction, memoryLimitBytes,
    rotationCount: side.rotations.length / 9, rotationRange: side.rotationRange, background, randomPhaseSeed, source,
    target: new Float32Array(0), targetShape: source.shape, voxelSize: source.voxelSize, origin: source.origin,
    template: side.template, templateShape: job.template.shape, mask: side.mask, supportShape: side.supportShape, maskRadius: side.maskRadius,
    targetMask: undefined, fillValue: mean, filter: job.filter, zoneSplits: side.zoneSplits, zoneFilters: side.zoneFilters,
    templateFilter: side.templateFilter, filterShape: side.filterShape, targetMean: mean, targetVariance: variance,
    // Found per tile (readWithNoData); the whole volume's flags are never held.
    noData: undefined, rotations: side.rotations, priors: undefined, ...(diskFilter ? { diskFilter } : {}),
  };
}

/** The template side of a job (rotations, mask, support, filters): the same whether the target is held or on disk. */
export function prepareTemplateSide(job: MatchJob, checked: CheckedJobOptions, geometry: { shape: Zyx; voxelSize: Zyx }): {
  rotations: Float64Array; rotationRange: readonly [number, number]; template: Float32Array; mask: Float32Array; maskRadius: number | undefined;
  supportShape: Zyx; filterShape: Zyx; templateFilter: Float32Array | undefined; zoneSplits: Zyx; zoneFilters: Float32Array[] | undefined;
} {
  const { plan, interpolation, rotationMode } = checked;
  const rotations = job.rotations;
  if (!(rotations instanceof Float64Array) || rotations.length === 0 || rotations.length % 9 !== 0) {
    throw invalidOption('rotations', 'a Float64Array of 9 values per rotation (at least one)', rotations);
  }
  for (let i = 0; i < rotations.length; i++) {
    if (!Number.isFinite(rotations[i] as number)) throw invalidOption('rotations', 'finite matrix entries', rotations[i]);
  }
  const rotationRange: readonly [number, number] = job.rotationRange ?? [0, rotations.length / 9];
  const [rangeStart, rangeEnd] = rotationRange;
  if (!(Number.isInteger(rangeStart) && Number.isInteger(rangeEnd) && rangeStart >= 0 && rangeStart < rangeEnd && rangeEnd <= rotations.length / 9)) {
    throw invalidOption('rotationRange', `[start, end) with 0 ≤ start < end ≤ ${rotations.length / 9}`, rotationRange.join(','));
  }
  const { template } = job;
  if (!sameVoxelSize(geometry.voxelSize, template.voxelSize)) {
    throw new TmeError('ERR_TME_MISMATCH',
      `template voxel size (${template.voxelSize.join(', ')}) Å differs from the target's (${geometry.voxelSize.join(', ')}) Å; resample the template first`);
  }
  checkFinite(template.data, 'the template');
  let mask: Float32Array;
  let maskRadius: number | undefined;
  if (job.templateMask) {
    if (job.maskRadius !== undefined) throw invalidOption('maskRadius', 'no radius when a template mask is given', job.maskRadius);
    if (!job.templateMask.shape.every((n, i) => n === template.shape[i])) {
      throw new TmeError('ERR_TME_MISMATCH', `template mask shape (${job.templateMask.shape.join(', ')}) differs from the template's (${template.shape.join(', ')})`);
    }
    mask = Float32Array.from(job.templateMask.data);
    checkFinite(mask, 'the template mask');
  } else {
    maskRadius = job.maskRadius ?? inscribedRadius(template.shape, template.voxelSize);
    mask = sphereMask(template.shape, maskRadius, template.voxelSize);
  }
  let maskSum = 0;
  for (let i = 0; i < mask.length; i++) maskSum += mask[i] as number;
  if (!(maskSum >= 2)) throw new TmeError('ERR_TME_INVALID_OPTION', `the template mask covers fewer than 2 voxels (sum ${maskSum})`);
  let templateData = template.data;
  if (plan.laplace) templateData = laplacian(templateData, template.shape, 'zero');
  if (plan.standardise) templateData = standardise(templateData);
  const filterShape = filterGridFor(template.shape);
  const templateFilter = job.filter ? filterOn(job.filter, filterShape, template.voxelSize) : undefined;
  const zones = job.zones;
  if (zones !== undefined) {
    const n = zones.splits[0] * zones.splits[1] * zones.splits[2];
    if (!(zones.splits.every((v, a) => Number.isInteger(v) && v >= 1 && v <= (geometry.shape[a] as number)) && zones.filters.length === n)) {
      throw invalidOption('zones', 'zone counts of 1 … the target\'s size per axis and one filter per zone', `${zones.splits.join(',')} with ${zones.filters.length} filters`);
    }
  }
  const zoneSplits: Zyx = zones ? [zones.splits[0], zones.splits[1], zones.splits[2]] : [1, 1, 1];
  const zoneFilters = zones && zones.filters.length > 1 ? zones.filters.map((f) => filterOn(f, filterShape, template.voxelSize)) : undefined;
  return {
    rotations, rotationRange, template: templateData, mask, maskRadius,
    supportShape: templateSupport(mask, template.shape, plan.backendScore, interpolation, rotationMode),
    filterShape, templateFilter, zoneSplits, zoneFilters,
  };
}

/**
 * Every template of a job prepared (MatchJob.moreTemplates): template 0 from the job itself, the others with their own
 * template, mask and rotations and the job's options, sharing template 0's preprocessed target where it is theirs.
 */
export function prepareTemplates(job: MatchJob, options: Pick<PrepareOptions, 'targetMoments'> = {}): PreparedJob[] {
  const first = prepareJob(job, options);
  const more = job.moreTemplates ?? [];
  if (more.length === 0) return [first];
  // Shards and background maps are per rotation set and per template; neither is built for several templates.
  if (job.rotationRange !== undefined) throw invalidOption('rotationRange', 'no shard with several templates (moreTemplates)', job.rotationRange.join(','));
  if (first.background !== 'none') throw invalidOption('background', 'none with several templates (moreTemplates)', first.background);
  if (job.priors !== undefined) throw invalidOption('priors', 'no priors with several templates (moreTemplates)', `${job.priors.positions.length / 3} priors`);
  return [first, ...more.map((_t, k) => prepareJob(templateJob(job, k + 1), { sameTarget: first }))];
}

/** Template k of a job (0: the job's own; k ≥ 1: moreTemplates[k − 1]) as a job of its own, with the job's options. */
export function templateJob(job: MatchJob, k: number): MatchJob {
  const { moreTemplates, ...options } = job;
  if (k === 0) return options;
  const t = moreTemplates?.[k - 1];
  if (t === undefined) throw invalidOption('template', `an index from 0 to ${moreTemplates?.length ?? 0}`, k);
  const { templateMask: _m, maskRadius: _r, ...rest } = options;
  return {
    ...rest, template: t.template, rotations: t.rotations,
    ...(t.templateMask ? { templateMask: t.templateMask } : {}), ...(t.maskRadius !== undefined ? { maskRadius: t.maskRadius } : {}),
  };
}
