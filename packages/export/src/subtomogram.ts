import { invalidOption, type Volume, type VolumeRegionSource, type Zyx } from '@tme/formats';
import { validateBoxSize } from './box-size';

/**
 * What to do with a box that reaches past the tomogram: fill the outside (with the mean of the box's voxels inside
 * the tomogram, which normalisation turns into 0), or drop the pick.
 */
export type EdgeMode = 'pad' | 'skip';

export interface ExtractOptions {
  /** Cubic box edge, voxels; must be even. */
  box: number;
  /** Edge handling. Default 'pad'. */
  edge?: EdgeMode;
  /** Multiply by −1 (dark protein in cryo-ET → bright, as RELION expects). Default false. */
  invert?: boolean;
  /** Scale to mean 0, std 1 over the voxels inside the tomogram (RELION expects normalised particles). Default true. */
  normalise?: boolean;
}

export type ExtractResult =
  | {
    status: 'inside' | 'padded'; data: Float32Array; centre: Zyx;
    /** Fraction of the box's voxels outside the tomogram (filled); 0 for 'inside'. */
    outsideFraction: number;
  }
  | { status: 'skipped'; reason: 'edge' | 'outside'; centre: Zyx };

/** The integer voxel a box is centred on: the pick rounded per axis. The rest becomes RELION's origin shift. */
export function boxCentreOf(position: Zyx): Zyx {
  return [Math.round(position[0]), Math.round(position[1]), Math.round(position[2])];
}

/**
 * Cuts the box×box×box subtomogram whose voxel box//2 is the pick's integer voxel (RELION's rotation centre, so the
 * template centre lands on it). Boxes crossing a face are filled or skipped; picks whose centre voxel lies outside
 * the tomogram are always skipped. A filled box is normalised with the mean and std of its voxels inside the
 * tomogram and its outside set to that mean: 0 after normalisation (RELION's background value), so the fill adds no
 * density and does not shrink the particle's contrast; without normalisation the outside is that mean. A tomogram on
 * disk (a VolumeRegionSource: an MRC larger than memory) is read by region, only the box's part inside it: the same
 * voxels in the same order, so the same subtomogram.
 */
export function extractSubtomogram(tomogram: Volume | VolumeRegionSource, position: Zyx, options: ExtractOptions): ExtractResult {
  const { box } = options;
  validateBoxSize(box);
  const edge = options.edge ?? 'pad';
  if (edge !== 'pad' && edge !== 'skip') throw invalidOption('edge', "'pad' or 'skip'", edge);
  const centre = boxCentreOf(position);
  if (centre.some((c, a) => c < 0 || c >= (tomogram.shape[a] as number))) return { status: 'skipped', reason: 'outside', centre };
  const half = box / 2;
  const start: Zyx = [centre[0] - half, centre[1] - half, centre[2] - half];
  const crosses = start.some((s, a) => s < 0 || s + box > (tomogram.shape[a] as number));
  if (crosses && edge === 'skip') return { status: 'skipped', reason: 'edge', centre };
  // The part of the box inside the tomogram, in box indices [lo, hi) per axis: an axis-aligned sub-box.
  const lo = start.map((s) => Math.max(0, -s)) as unknown as Zyx;
  const hi = start.map((s, a) => Math.min(box, (tomogram.shape[a] as number) - s)) as unknown as Zyx;
  // Voxel (k, j, i) of the box is src[row(k, j) + i]: the whole tomogram's array, or the inside part read by region.
  const onDisk = 'readRegion' in tomogram;
  const src = onDisk ? tomogram.readRegion([start[0] + lo[0], start[1] + lo[1], start[2] + lo[2]], [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]]) : tomogram.data;
  const [, ny, nx] = onDisk ? [0, hi[1] - lo[1], hi[2] - lo[2]] : tomogram.shape;
  const at: Zyx = onDisk ? [-lo[0], -lo[1], -lo[2]] : start;
  const row = (k: number, j: number): number => ((at[0] + k) * ny + at[1] + j) * nx + at[2];
  // Sums of v − ref (the centre voxel): no cancellation for tomograms stored with a large offset.
  const ref = src[row(half, half) + half] as number;
  let sum = 0;
  let sum2 = 0;
  for (let k = lo[0]; k < hi[0]; k += 1) {
    for (let j = lo[1]; j < hi[1]; j += 1) {
      const rowIn = row(k, j);
      for (let i = lo[2]; i < hi[2]; i += 1) { const d = (src[rowIn + i] as number) - ref; sum += d; sum2 += d * d; }
    }
  }
  const inside = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]);
  const variance = Math.max(0, sum2 / inside - (sum / inside) ** 2);
  const mean = ref + sum / inside;
  const sign = options.invert ? -1 : 1;
  const normalise = options.normalise ?? true;
  // v → (v − shift)·scale: mean 0, std 1 inside when normalising, else only the sign.
  const shift = normalise ? mean : 0;
  const scale = sign * (normalise && variance > 0 ? 1 / Math.sqrt(variance) : 1);
  const fill = normalise ? 0 : sign * mean;
  const out = new Float32Array(box * box * box);
  for (let k = 0; k < box; k += 1) {
    for (let j = 0; j < box; j += 1) {
      const rowOut = (k * box + j) * box;
      if (k < lo[0] || k >= hi[0] || j < lo[1] || j >= hi[1]) { out.fill(fill, rowOut, rowOut + box); continue; }
      const rowIn = row(k, j);
      out.fill(fill, rowOut, rowOut + lo[2]);
      for (let i = lo[2]; i < hi[2]; i += 1) out[rowOut + i] = ((src[rowIn + i] as number) - shift) * scale;
      out.fill(fill, rowOut + hi[2], rowOut + box);
    }
  }
  return { status: crosses ? 'padded' : 'inside', data: out, centre, outsideFraction: 1 - inside / out.length };
}
