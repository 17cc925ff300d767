import { TmeError, type VolumeRegionSource, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import { deviceBudgetBytes } from './match';
import { defaultBackend } from './native-backend';
import { extractRegion, reflectIndex, type PadMode } from './padding';
import { isRegionSource, perAxis, prepareJob, readWithNoData, type MatchJob } from './prepare';
import { boxCentre } from './rotate';
import { filterVolumeOutOfCore, sameVolumeFilter, type FilteredVolume, type VolumeFilterProgress } from './volume-filter';

/** Rotations (9 values each, xyz frame) to score with the template centred at one target voxel (z, y, x). */
export interface OrientationQuery {
  position: Zyx;
  rotations: Float64Array;
}

/** Scores every query's rotations, off the event loop: one Float32Array per query, in its rotations' order. */
export type OrientationScorer = (queries: readonly OrientationQuery[], options?: { signal?: AbortSignal }) => Promise<Float32Array[]>;

/**
 * Re-scores rotations at single voxels with the job's own score, filters and preprocessing — what a local orientation
 * search around a pick needs — at O(template box) per rotation instead of a whole FFT. The native addon rotates,
 * filters and normalises each template exactly as the search does and sums it against the target's box at the
 * voxel (the target prepared as the search prepares it: target filter, Laplacian, standardisation, padding).
 * Scores: cc (and lcc), flc-sphere (and corr, cam), flc. mcc is not offered (it needs whole-tile overlaps).
 */
export function createOrientationScorer(job: MatchJob): OrientationScorer {
  const p = prepareJob(job);
  const score = p.plan.backendScore;
  if (score === 'mcc') throw new TmeError('ERR_TME_UNSUPPORTED', 'orientation refinement does not support mcc; use flc or flc-sphere');
  const box = p.templateShape;
  const c = boxCentre(box);
  // The untiled search's geometry: the target continued by the padding mode c voxels before every face and
  // box − 1 − c after, so the patch of voxel x starts at x in this grid.
  const grid: Zyx = [p.targetShape[0] + box[0] - 1, p.targetShape[1] + box[1] - 1, p.targetShape[2] + box[2] - 1];
  const padded = extractRegion(p.target, p.targetShape, [-c[0], -c[1], -c[2]], grid, p.padTarget, p.fillValue);
  const boxVoxels = box[0] * box[1] * box[2];

  return async (queries, options = {}) => {
    checkQueries(queries, p.targetShape);
    const { offsets, rotations } = rotationsOf(queries);
    const patches = new Float32Array(queries.length * boxVoxels);
    queries.forEach((q, i) => patches.set(extractRegion(padded, grid, q.position, box, 'zero'), i * boxVoxels));
    const scores = await native.scoreOrientations({
      threads: p.threads, template: p.template, templateShape: box, mask: p.mask,
      // (Fourier rotation's target already went through the template filter: the template is then scored unfiltered.)
      ...(p.templateFilter && !p.templateFilterInTarget ? { filter: p.templateFilter, filterShape: p.filterShape } : {}),
      score, interpolation: p.interpolation, targetMean: p.targetMean, targetVariance: p.targetVariance,
      patches, rotations, offsets,
    }, options);
    return queries.map((_, i) => scores.slice(offsets[i] as number, offsets[i + 1] as number));
  };
}

function checkQueries(queries: readonly OrientationQuery[], shape: Zyx): void {
  for (const q of queries) {
    if (!q.position.every((v, a) => Number.isInteger(v) && v >= 0 && v < (shape[a] as number))) {
      throw new TmeError('ERR_TME_INVALID_OPTION', `Expected a voxel inside the target for position but received (${q.position.join(', ')})`);
    }
    if (q.rotations.length % 9 !== 0) throw new TmeError('ERR_TME_INVALID_OPTION', `Expected 9 values per rotation but received ${q.rotations.length}`);
  }
}

/** The queries' rotations one after another, and where each query's start (one more entry: the end). */
function rotationsOf(queries: readonly OrientationQuery[]): { offsets: Int32Array; rotations: Float64Array } {
  const offsets = new Int32Array(queries.length + 1);
  queries.forEach((q, i) => { offsets[i + 1] = (offsets[i] as number) + q.rotations.length / 9; });
  const rotations = new Float64Array(9 * (offsets[queries.length] as number));
  queries.forEach((q, i) => rotations.set(q.rotations, 9 * (offsets[i] as number)));
  return { offsets, rotations };
}

/** Bytes of target patches handed to the addon at once: refinement's memory stays a few boxes' worth, not the picks'. */
const PATCH_BATCH_BYTES = 64 * 2 ** 20;

/** A scorer of a target on disk (createDiskOrientationScorer): `release` deletes the filtered temporary volume it
 *  made (not one it was given). */
export interface DiskOrientationScorer {
  scorer: OrientationScorer;
  release: () => void;
  /** With a target filter: whether it read the search's filtered tomogram (options.filtered) rather than make one. */
  reusedFilter: boolean;
}

/**
 * createOrientationScorer for a target on disk (job.target a VolumeRegionSource, an MRC matched out of core): each
 * query's box is read by region, only the voxels its padding reaches, so memory holds boxes, never the tomogram.
 * The target is the search's own, exactly: no-data voxels filled as the tiles fill them (flags found with their halo),
 * the moments from the same passes in voxel order, and a target filter applied to the whole volume by the same passes
 * over temporary files in `dir` as the search's (volume-filter.ts; a per-box filter would differ: the filter reaches
 * across the whole volume). Scores equal the in-memory scorer's where the in-memory and on-disk targets are equal:
 * bit for bit without a target filter; with one, within the filter passes' 1e-7 of its largest value.
 */
export async function createDiskOrientationScorer(
  job: MatchJob, options: {
    dir: string; signal?: AbortSignal; onFilterProgress?: (p: VolumeFilterProgress) => void;
    /** The search's filtered tomogram (matchTemplateOutOfCore's keepFilteredTarget): read when it is this job's
     *  filter of this tomogram (sameVolumeFilter), instead of filtering it again; the caller releases it. */
    filtered?: FilteredVolume;
  },
): Promise<DiskOrientationScorer> {
  if (!isRegionSource(job.target)) throw new TmeError('ERR_TME_INTERNAL', 'createDiskOrientationScorer reads its target by region: give a VolumeRegionSource');
  // Refinement scores in real space (a Fourier-rotation search filters its whole target by the template's filter).
  let p = prepareJob({ ...job, rotationMode: 'real' });
  const score = p.plan.backendScore;
  if (score === 'mcc') throw new TmeError('ERR_TME_UNSUPPORTED', 'orientation refinement does not support mcc; use flc or flc-sphere');
  let filtered: FilteredVolume | undefined;
  let made: FilteredVolume | undefined;
  const d = p.diskFilter;
  const given = options.filtered;
  if (d && given && sameVolumeFilter(given, {
    source: d.raw, box: p.templateShape, filter: d.filter, padMode: p.padTarget, noDataFill: d.noDataFill, anyNoData: d.anyNoData, padFill: d.padFill,
  })) {
    filtered = given;
  } else if (d) {
    const backend = defaultBackend();
    const host = backend.listDevices().find((x) => x.index === 'cpu');
    filtered = made = await filterVolumeOutOfCore({
      source: d.raw, box: p.templateShape, filter: d.filter, padMode: p.padTarget, noDataFill: d.noDataFill, anyNoData: d.anyNoData,
      padFill: d.padFill, dir: options.dir, budgetBytes: host ? deviceBudgetBytes(p, backend, host) : (p.memoryLimitBytes ?? Infinity),
      ...(p.threads === undefined ? {} : { threads: p.threads }),
      ...(options.signal ? { signal: options.signal } : {}), ...(options.onFilterProgress ? { onProgress: options.onFilterProgress } : {}),
    });
  }
  if (filtered) p = { ...p, source: filtered.source, targetMean: filtered.mean, targetVariance: filtered.variance, fillValue: filtered.mean };
  const source = p.source as VolumeRegionSource;
  const box = p.templateShape;
  const c = boxCentre(box);
  const boxVoxels = box[0] * box[1] * box[2];
  // The box of voxel x in the search's padded grid starts at x − c: read what its padding reaches, filled as a tile is.
  const patchAt = (position: Zyx): Float32Array => readPaddedBox(source, [position[0] - c[0], position[1] - c[1], position[2] - c[2]], box, p.padTarget, p.fillValue,
    filtered ? undefined : (p.padTarget === 'zero' ? 0 : p.fillValue));
  const perCall = Math.max(1, Math.floor(PATCH_BATCH_BYTES / (4 * boxVoxels)));
  const scorer: OrientationScorer = async (queries, o = {}) => {
    checkQueries(queries, p.targetShape);
    const out: Float32Array[] = [];
    for (let q0 = 0; q0 < queries.length; q0 += perCall) {
      const part = queries.slice(q0, q0 + perCall);
      const { offsets, rotations } = rotationsOf(part);
      const patches = new Float32Array(part.length * boxVoxels);
      part.forEach((q, i) => patches.set(patchAt(q.position), i * boxVoxels));
      const scores = await native.scoreOrientations({
        threads: p.threads, template: p.template, templateShape: box, mask: p.mask,
        ...(p.templateFilter ? { filter: p.templateFilter, filterShape: p.filterShape } : {}),
        score, interpolation: p.interpolation, targetMean: p.targetMean, targetVariance: p.targetVariance,
        patches, rotations, offsets,
      }, o);
      part.forEach((_, i) => out.push(scores.slice(offsets[i] as number, offsets[i + 1] as number)));
    }
    return out;
  };
  return { scorer, release: () => made?.release(), reusedFilter: filtered !== undefined && made === undefined };
}

/**
 * The box [start, start + shape) of a volume on disk continued beyond its faces as `mode` says (extractRegion's
 * continuation: 'mirror' reflects, 'mean' fills with `fill`, 'zero' with 0): per axis the voxels the box maps to, read
 * as one region (with the no-data halo when `noDataFill` is given: those voxels take it, as in the search's tiles).
 */
export function readPaddedBox(source: VolumeRegionSource, start: Zyx, shape: Zyx, mode: PadMode, fill: number, noDataFill?: number): Float32Array {
  const indexOf = (a: 0 | 1 | 2): Int32Array => Int32Array.from({ length: shape[a] }, (_, k) => {
    const i = start[a] + k;
    return i >= 0 && i < source.shape[a] ? i : mode === 'mirror' ? reflectIndex(i, source.shape[a]) : -1;
  });
  const index = [indexOf(0), indexOf(1), indexOf(2)] as const;
  const outside = mode === 'mean' ? fill : 0;
  const out = new Float32Array(shape[0] * shape[1] * shape[2]);
  const lo = perAxis((a) => index[a].reduce((m, i) => (i >= 0 ? Math.min(m, i) : m), Infinity));
  const hi = perAxis((a) => index[a].reduce((m, i) => Math.max(m, i), -1) + 1);
  // Every voxel of the box outside the volume on some axis: all fill.
  if (![0, 1, 2].every((a) => Number.isFinite(lo[a]))) return out.fill(outside);
  const regionShape: Zyx = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
  let data: Float32Array;
  let rStart: Zyx = lo;
  let rShape: Zyx = regionShape;
  if (noDataFill === undefined) {
    data = source.readRegion(lo, regionShape);
  } else {
    const read = readWithNoData(source, lo, regionShape);
    ({ data, start: rStart, shape: rShape } = read);
    if (read.noData) for (let i = 0; i < data.length; i++) if (read.noData[i]) data[i] = noDataFill;
  }
  const [, ry, rx] = rShape;
  const [iz, iy, ix] = index;
  let o = 0;
  for (let z = 0; z < shape[0]; z++) {
    const sz = iz[z] as number;
    for (let y = 0; y < shape[1]; y++) {
      const sy = iy[y] as number;
      if (sz < 0 || sy < 0) { out.fill(outside, o, o + shape[2]); o += shape[2]; continue; }
      const row = ((sz - rStart[0]) * ry + sy - rStart[1]) * rx - rStart[2];
      for (let x = 0; x < shape[2]; x++, o++) {
        const sx = ix[x] as number;
        out[o] = sx < 0 ? outside : data[row + sx] as number;
      }
    }
  }
  return out;
}
