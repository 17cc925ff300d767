import type { Zyx } from '@tme/formats';
import type { Region } from './region';

/**
 * Within half a template box of a face the template overlaps the padding, and the best-score map's spread there is
 * not the interior's (measured on pure noise: its upper tail up to ~5 % wider 3–6 voxels from a face for flc-sphere,
 * 8 % for mcc), which makes noise peaks denser there. The face's own statistics set its threshold instead: per
 * distance from the nearest face (of the volume, or of a region without data), the interior threshold is mapped
 * through the map's median and upper-tail spread at that distance, so noise exceeds it there about as rarely as
 * inside. Never lowered.
 */
export interface FaceThresholds {
  /** Distance (voxels, chessboard) from the nearest face of each voxel, capped at `bins` (the interior). */
  distance: Uint8Array;
  /** Threshold per distance 0 … bins − 1, then the interior's at index `bins`. */
  thresholds: Float64Array;
  /** Spread of the best-score map per distance ÷ the interior's (1 where not measured). */
  spreadRatio: Float64Array;
  bins: number;
}

/**
 * Chessboard distance from the volume's faces and from voxels without a score (rotation index < 0), capped. `slab`:
 * the arrays are sections [start, start + shape[0]) of a volume of `sections` (its faces are the volume's); exact in
 * the sections at least `cap` from the slab's own ends (a hole further away is beyond the cap).
 */
export function faceDistances(shape: Zyx, scores: Float32Array, rot: Int32Array | Float32Array, cap: number, slab?: { start: number; sections: number }): Uint8Array {
  const [nz, ny, nx] = shape;
  const z0 = slab?.start ?? 0;
  const total = slab?.sections ?? nz;
  const out = new Uint8Array(nz * ny * nx);
  let holes = false;
  for (let z = 0, i = 0; z < nz; z++) {
    const dz = Math.min(z0 + z, total - 1 - (z0 + z));
    for (let y = 0; y < ny; y++) {
      const dzy = Math.min(dz, y, ny - 1 - y);
      for (let x = 0; x < nx; x++, i++) {
        const s = scores[i]!;
        if (!(rot[i]! >= 0) || !(s === s)) { out[i] = 0; holes = true; continue; }
        out[i] = Math.min(cap, dzy, x, nx - 1 - x);
      }
    }
  }
  if (!holes) return out;
  // Regions without data are faces too: a two-pass chamfer with unit weights over the 26 neighbours is the exact
  // chessboard distance (first pass: the 13 neighbours before a voxel in raster order, second: the 13 after).
  const before: Array<[number, number, number]> = [];
  for (let dz = -1; dz <= 0; dz++) {
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) if (dz < 0 || dy < 0 || (dy === 0 && dx < 0)) before.push([dz, dy, dx]);
    }
  }
  for (const sign of [1, -1]) {
    for (let zi = 0; zi < nz; zi++) {
      const z = sign > 0 ? zi : nz - 1 - zi;
      for (let yi = 0; yi < ny; yi++) {
        const y = sign > 0 ? yi : ny - 1 - yi;
        for (let xi = 0; xi < nx; xi++) {
          const x = sign > 0 ? xi : nx - 1 - xi;
          const i = (z * ny + y) * nx + x;
          let d = out[i]!;
          if (d === 0) continue;
          for (const [dz, dy, dx] of before) {
            const zz = z + sign * dz;
            const yy = y + sign * dy;
            const xx = x + sign * dx;
            if (zz < 0 || zz >= nz || yy < 0 || yy >= ny || xx < 0 || xx >= nx) continue;
            const v = out[(zz * ny + yy) * nx + xx]! + 1;
            if (v < d) d = v;
          }
          out[i] = d;
        }
      }
    }
  }
  return out;
}

/** Every how many values of a distance's (in raster order) the spread is measured on: up to ~100,000 of them. */
function sampleStep(count: number): number {
  return Math.max(1, Math.floor(count / 100_000));
}

/**
 * Median and upper spread (95th percentile − median) of up to ~100,000 evenly spaced samples. The upper side, not
 * the body: a false alarm is a tail event, and near a face the tail widens more than the body (measured on white
 * noise with flc-sphere, face ÷ interior density of noise peaks above a high threshold: 1.32 matching the 16–84 %
 * range, 1.15 matching 50–95 %, 1.04 matching 50–99 %). Not further out: particles — about 1 % of a crowded
 * lamella's voxels sit on their peaks — would set it (matching 50–99 % cost 6 % of the face particles of a crowded
 * lamella; 50–95 % matches noise as well and leaves them).
 */
function centreAndSpread(sample: Float32Array): [number, number] {
  const n = sample.length;
  const sorted = sample.sort();
  const at = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.round(q * (n - 1))))]!;
  return [at(0.5), at(0.95) - at(0.5)];
}

/**
 * The samples faceThresholds measures, gathered a part of the map at a time: `count` each part's voxels per distance
 * (a first pass over the map), then `sample` them (a second; parts in raster order, as one pass over the whole map
 * would visit them). `distance` and `region` are the part's (its own frame).
 */
export class FaceSamples {
  readonly counts: Float64Array;
  private readonly seen: Float64Array;
  private samples: Float32Array[] | undefined;
  private readonly filled: Int32Array;

  constructor(readonly bins: number) {
    this.counts = new Float64Array(bins + 1);
    this.seen = new Float64Array(bins + 1);
    this.filled = new Int32Array(bins + 1);
  }

  count(distance: Uint8Array, scores: Float32Array, rot: Int32Array | Float32Array, region: Region): void {
    forEachInRegion(scores, rot, region, (i) => { this.counts[distance[i]!]!++; });
  }

  sample(distance: Uint8Array, scores: Float32Array, rot: Int32Array | Float32Array, region: Region): void {
    const samples = this.samples ??= Array.from(this.counts, (c) => new Float32Array(Math.ceil(c / sampleStep(c))));
    forEachInRegion(scores, rot, region, (i) => {
      const d = distance[i]!;
      const k = this.seen[d]!;
      this.seen[d] = k + 1;
      if (k % sampleStep(this.counts[d]!) === 0) samples[d]![this.filled[d]!++] = scores[i]!;
    });
  }

  /** The thresholds per distance for an interior threshold `t` (FaceThresholds' `thresholds` and `spreadRatio`). */
  thresholds(t: number): { thresholds: Float64Array; spreadRatio: Float64Array } {
    const { bins, counts } = this;
    const thresholds = new Float64Array(bins + 1).fill(t);
    const spreadRatio = new Float64Array(bins + 1).fill(1);
    // Too few voxels to measure a spread (a tiny map, a mask with no interior): keep the one threshold.
    const enough = 5000;
    if (counts[bins]! < enough || !Number.isFinite(t) || !this.samples) return { thresholds, spreadRatio };
    const [m0, s0] = centreAndSpread(Float32Array.from(this.samples[bins]!));
    if (!(s0 > 0)) return { thresholds, spreadRatio };
    for (let d = 0; d < bins; d++) {
      if (counts[d]! < enough) continue;
      const [m, s] = centreAndSpread(Float32Array.from(this.samples[d]!));
      spreadRatio[d] = s / s0;
      thresholds[d] = Math.max(t, m + (s / s0) * (t - m0));
    }
    return { thresholds, spreadRatio };
  }
}

function forEachInRegion(scores: Float32Array, rot: Int32Array | Float32Array, region: Region, visit: (i: number) => void): void {
  const [, ny, nx] = region.shape;
  for (let z = region.start[0]; z < region.end[0]; z++) {
    for (let y = region.start[1]; y < region.end[1]; y++) {
      const row = (z * ny + y) * nx;
      for (let i = row + region.start[2]; i < row + region.end[2]; i++) {
        if (!(region.mask !== undefined && !(region.mask[i]! >= 0.5)) && rot[i]! >= 0 && scores[i] === scores[i]) visit(i);
      }
    }
  }
}

/**
 * The thresholds per distance from a face for one threshold `t` of the interior, from the best-score map inside the
 * calling region. `bins` = half the template box: beyond it the template no longer reaches the face.
 */
export function faceThresholds(scores: Float32Array, rot: Int32Array | Float32Array, region: Region, t: number, bins: number): FaceThresholds {
  const distance = faceDistances(region.shape, scores, rot, bins);
  const samples = new FaceSamples(bins);
  samples.count(distance, scores, rot, region);
  samples.sample(distance, scores, rot, region);
  return { distance, ...samples.thresholds(t), bins };
}
