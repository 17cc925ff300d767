import type { VolumeData, Zyx } from '@tme/formats';
import type { MapMoments } from './statistics';
import { combineMoments } from './statistics';

/**
 * The calling region: the box left after the edge margin, intersected with the mask (≥ 0.5), and only voxels
 * that were scored (finite score, rotation index ≥ 0).
 */
export interface Region {
  shape: Zyx;
  /** First and one-past-last voxel per axis, (z, y, x). */
  start: Zyx;
  end: Zyx;
  mask: VolumeData | undefined;
}

/** `edge` voxels are left out at the low and the high faces of each axis. */
export function regionFor(shape: Zyx, edge: Zyx, mask: VolumeData | undefined): Region {
  const start: Zyx = [Math.min(edge[0], shape[0]), Math.min(edge[1], shape[1]), Math.min(edge[2], shape[2])];
  const end: Zyx = [Math.max(start[0], shape[0] - edge[0]), Math.max(start[1], shape[1] - edge[1]), Math.max(start[2], shape[2] - edge[2])];
  return { shape, start, end, mask };
}

/**
 * The edge margin around a region as up to six disjoint boxes (z slabs, then y slabs and x slabs inside the
 * region's z and y range), so the margin can be scanned without scanning the region twice.
 */
export function marginSlabs(region: Region): Region[] {
  const { shape, start, end, mask } = region;
  const [nz, ny, nx] = shape;
  const boxes: Array<[Zyx, Zyx]> = [
    [[0, 0, 0], [start[0], ny, nx]],
    [[end[0], 0, 0], [nz, ny, nx]],
    [[start[0], 0, 0], [end[0], start[1], nx]],
    [[start[0], end[1], 0], [end[0], ny, nx]],
    [[start[0], start[1], 0], [end[0], end[1], start[2]]],
    [[start[0], start[1], end[2]], [end[0], end[1], nx]],
  ];
  return boxes.filter(([s, e]) => s.every((v, a) => v < (e[a] as number))).map(([s, e]) => ({ shape, start: s, end: e, mask }));
}

/** Running sums of regionMoments, carried from one slab of a map to the next (slab-wise peak calling). */
export interface MomentsAccumulator { count: number; shift: number; sum: number; sumSq: number; min: number; max: number }

export function newMoments(): MomentsAccumulator {
  return { count: 0, shift: NaN, sum: 0, sumSq: 0, min: Infinity, max: -Infinity };
}

/** Voxel count, mean, std, min and max of the best-score map inside the region: one pass, float64 sums. */
export function regionMoments(scores: Float32Array, rot: Int32Array | Float32Array, region: Region): MapMoments {
  const acc = newMoments();
  addRegionMoments(acc, scores, rot, region);
  return finishMoments(acc);
}

/** Adds the region's voxels in raster order: slabs added in z order give regionMoments' numbers to the last bit. */
export function addRegionMoments(acc: MomentsAccumulator, scores: Float32Array, rot: Int32Array | Float32Array, region: Region): void {
  const [, ny, nx] = region.shape;
  const [z0, y0, x0] = region.start;
  const [z1, y1, x1] = region.end;
  const mask = region.mask;
  let { count, shift, sum, sumSq, min, max } = acc;
  for (let z = z0; z < z1; z++) {
    for (let y = y0; y < y1; y++) {
      const row = (z * ny + y) * nx;
      // Per-row partial sums keep the float64 accumulation error at the level of a row, not the volume.
      let rs = 0;
      let rq = 0;
      let rc = 0;
      for (let i = row + x0, e = row + x1; i < e; i++) {
        const s = scores[i]!;
        if (!(s === s) || !(rot[i]! >= 0)) continue;
        if (mask !== undefined && !(mask[i]! >= 0.5)) continue;
        if (shift !== shift) shift = s;
        const d = s - shift;
        rs += d;
        rq += d * d;
        rc++;
        if (s < min) min = s;
        if (s > max) max = s;
      }
      sum += rs;
      sumSq += rq;
      count += rc;
    }
  }
  Object.assign(acc, { count, shift, sum, sumSq, min, max });
}

export function finishMoments(acc: MomentsAccumulator): MapMoments {
  const { count, shift, sum, sumSq, min, max } = acc;
  const m = combineMoments(count, sum, sumSq, min, max);
  return { ...m, mean: m.mean + (count > 0 ? shift : 0) };
}
