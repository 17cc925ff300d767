import { invalidOption, type Volume, type Zyx } from '@tme/formats';
import { validateBoxSize } from './box-size';

/** What to do with a box that reaches past the tomogram: fill the outside with the tomogram mean, or drop the pick. */
export type EdgeMode = 'pad' | 'skip';

export interface ExtractOptions {
  /** Cubic box edge, voxels; must be even. */
  box: number;
  /** Edge handling. Default 'pad'. */
  edge?: EdgeMode;
  /** Multiply by −1 (dark protein in cryo-ET → bright, as RELION expects). Default false. */
  invert?: boolean;
  /** Scale to mean 0, std 1 over the box (RELION expects normalised particles). Default true. */
  normalise?: boolean;
  /** Value for voxels outside the tomogram; default: the tomogram mean (computed once by the caller or here). */
  padValue?: number;
}

export type ExtractResult =
  | { status: 'inside' | 'padded'; data: Float32Array; centre: Zyx }
  | { status: 'skipped'; reason: 'edge' | 'outside'; centre: Zyx };

/** The integer voxel a box is centred on: the pick rounded per axis. The rest becomes RELION's origin shift. */
export function boxCentreOf(position: Zyx): Zyx {
  return [Math.round(position[0]), Math.round(position[1]), Math.round(position[2])];
}

/** Mean of a volume in float64 (the pad value). */
export function volumeMean(volume: Volume): number {
  let sum = 0;
  for (let i = 0; i < volume.data.length; i += 1) sum += volume.data[i] as number;
  return sum / volume.data.length;
}

/**
 * Cuts the box×box×box subtomogram whose voxel box//2 is the pick's integer voxel (RELION's rotation centre, so the
 * template centre lands on it). Boxes crossing the edge are padded or skipped; picks whose centre voxel lies outside
 * the tomogram are always skipped.
 */
export function extractSubtomogram(tomogram: Volume, position: Zyx, options: ExtractOptions): ExtractResult {
  const { box } = options;
  validateBoxSize(box);
  const edge = options.edge ?? 'pad';
  if (edge !== 'pad' && edge !== 'skip') throw invalidOption('edge', "'pad' or 'skip'", edge);
  const centre = boxCentreOf(position);
  const [nz, ny, nx] = tomogram.shape;
  if (centre.some((c, a) => c < 0 || c >= (tomogram.shape[a] as number))) return { status: 'skipped', reason: 'outside', centre };
  const half = box / 2;
  const start = [centre[0] - half, centre[1] - half, centre[2] - half] as const;
  const crosses = start.some((s, a) => s < 0 || s + box > (tomogram.shape[a] as number));
  if (crosses && edge === 'skip') return { status: 'skipped', reason: 'edge', centre };
  const pad = options.padValue ?? (crosses ? volumeMean(tomogram) : 0);
  const out = new Float32Array(box * box * box);
  const src = tomogram.data;
  for (let k = 0; k < box; k += 1) {
    const z = start[0] + k;
    for (let j = 0; j < box; j += 1) {
      const y = start[1] + j;
      const rowOut = (k * box + j) * box;
      if (z < 0 || z >= nz || y < 0 || y >= ny) { out.fill(pad, rowOut, rowOut + box); continue; }
      const rowIn = (z * ny + y) * nx;
      for (let i = 0; i < box; i += 1) {
        const x = start[2] + i;
        out[rowOut + i] = x < 0 || x >= nx ? pad : (src[rowIn + x] as number);
      }
    }
  }
  if (options.invert) for (let i = 0; i < out.length; i += 1) out[i] = -(out[i] as number);
  if (options.normalise ?? true) normaliseInPlace(out);
  return { status: crosses ? 'padded' : 'inside', data: out, centre };
}

/** Mean 0, standard deviation 1 (population); a constant box only loses its mean. */
export function normaliseInPlace(data: Float32Array): void {
  let sum = 0;
  let sum2 = 0;
  for (let i = 0; i < data.length; i += 1) { const v = data[i] as number; sum += v; sum2 += v * v; }
  const mean = sum / data.length;
  const variance = Math.max(0, sum2 / data.length - mean * mean);
  const scale = variance > 0 ? 1 / Math.sqrt(variance) : 1;
  for (let i = 0; i < data.length; i += 1) data[i] = ((data[i] as number) - mean) * scale;
}
