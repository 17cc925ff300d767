import { invalidOption, type Zyx } from '@tme/formats';

/**
 * How the target is continued beyond its edges, so that translations near the edge see a whole template:
 * 'mean' fills with the target's mean (flat: adds no structure, the default), 'zero' with 0, 'mirror' reflects
 * without repeating the edge voxel (numpy's "reflect": … c b | a b c … ).
 */
export type PadMode = 'mirror' | 'zero' | 'mean';
export const PAD_MODES: readonly PadMode[] = ['mean', 'zero', 'mirror'];
export const DEFAULT_PAD_MODE: PadMode = 'mean';

export function resolvePadMode(value: string, option = 'padTarget'): PadMode {
  if ((PAD_MODES as readonly string[]).includes(value)) return value as PadMode;
  throw invalidOption(option, `one of ${PAD_MODES.join(', ')}`, value);
}

/** Index i of an axis of n continued as 'mirror' does (numpy's "reflect"). */
export function reflectIndex(i: number, n: number): number {
  return reflect(i, n);
}

function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = i % period;
  if (j < 0) j += period;
  return j < n ? j : period - j;
}

/**
 * The box [start, start + size) of a volume that extends beyond its edges as `mode` says (`fill` is the value
 * for 'mean'). `start` may be negative. Targets masks use 'zero'.
 */
export function extractRegion(
  data: Float32Array, shape: Zyx, start: Zyx, size: Zyx, mode: PadMode, fill = 0,
): Float32Array {
  const [nz, ny, nx] = shape;
  const [sz, sy, sx] = size;
  const out = new Float32Array(sz * sy * sx);
  const outside = mode === 'mean' ? fill : 0;
  for (let z = 0; z < sz; z++) {
    let iz = start[0] + z;
    if (iz < 0 || iz >= nz) {
      if (mode !== 'mirror') { out.fill(outside, z * sy * sx, (z + 1) * sy * sx); continue; }
      iz = reflect(iz, nz);
    }
    for (let y = 0; y < sy; y++) {
      let iy = start[1] + y;
      const row = (z * sy + y) * sx;
      if (iy < 0 || iy >= ny) {
        if (mode !== 'mirror') { out.fill(outside, row, row + sx); continue; }
        iy = reflect(iy, ny);
      }
      const srcRow = (iz * ny + iy) * nx;
      // The part of the row inside the volume in one copy; the edges voxel by voxel.
      const x0 = Math.min(sx, Math.max(0, -start[2])), x1 = Math.max(x0, Math.min(sx, nx - start[2]));
      if (x1 > x0) out.set(data.subarray(srcRow + start[2] + x0, srcRow + start[2] + x1), row + x0);
      const edge = (x: number): void => {
        if (mode !== 'mirror') out[row + x] = outside;
        else out[row + x] = data[srcRow + reflect(start[2] + x, nx)] as number;
      };
      for (let x = 0; x < x0; x++) edge(x);
      for (let x = x1; x < sx; x++) edge(x);
    }
  }
  return out;
}
