import { random, voxels, type Shape } from './reference';

/** Separable Gaussian blur (zero outside), to make band-limited test volumes. */
export function blur(v: Float32Array, s: Shape, sigma: number): Float32Array {
  const r = Math.ceil(3 * sigma);
  const w: number[] = [];
  for (let i = -r; i <= r; i++) w.push(Math.exp(-(i * i) / (2 * sigma * sigma)));
  let cur = v;
  const strides = [s[1] * s[2], s[2], 1];
  for (let axis = 0; axis < 3; axis++) {
    const out = new Float32Array(cur.length);
    const stride = strides[axis]!;
    for (let i = 0; i < cur.length; i++) {
      const c = [Math.floor(i / (s[1] * s[2])), Math.floor(i / s[2]) % s[1], i % s[2]][axis]!;
      let acc = 0;
      for (let k = -r; k <= r; k++) {
        const cc = c + k;
        if (cc < 0 || cc >= s[axis]!) continue;
        acc += w[k + r]! * cur[i + k * stride]!;
      }
      out[i] = acc;
    }
    cur = out;
  }
  return cur;
}

export function smoothVolume(shape: Shape, seed: number, sigma = 1.5): Float32Array {
  const r = random(seed);
  return blur(Float32Array.from({ length: voxels(shape) }, () => r() * 2 - 1), shape, sigma);
}

/** Uniformly random rotations (xyz frame, row-major), from random unit quaternions. */
export function randomRotations(count: number, seed: number): number[][] {
  const r = random(seed);
  const out: number[][] = [];
  for (let i = 0; i < count; i++) {
    const u1 = r();
    const u2 = r() * 2 * Math.PI;
    const u3 = r() * 2 * Math.PI;
    const a = Math.sqrt(1 - u1);
    const b = Math.sqrt(u1);
    const [w, x, y, z] = [a * Math.sin(u2), a * Math.cos(u2), b * Math.sin(u3), b * Math.cos(u3)];
    out.push([
      1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
      2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
      2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]);
  }
  return out;
}

/** Adds `box`-shaped values into the tile with the box centre at `centre` (z, y, x), circularly. */
export function plant(tile: Float32Array, tileShape: Shape, values: ArrayLike<number>, box: Shape, centre: Shape): void {
  let i = 0;
  for (let z = 0; z < box[0]; z++)
    for (let y = 0; y < box[1]; y++)
      for (let x = 0; x < box[2]; x++, i++) {
        const tz = (centre[0] + z - Math.floor(box[0] / 2) + tileShape[0]) % tileShape[0];
        const ty = (centre[1] + y - Math.floor(box[1] / 2) + tileShape[1]) % tileShape[1];
        const tx = (centre[2] + x - Math.floor(box[2] / 2) + tileShape[2]) % tileShape[2];
        tile[(tz * tileShape[1] + ty) * tileShape[2] + tx]! += values[i] as number;
      }
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if ((v[i] as number) > (v[best] as number)) best = i;
  return best;
}

/** A template filter for tests: a Gaussian low-pass times a wedge-like cut (zero where |kz| > |kx|, DC kept) —
 *  real and even in k, not separable. Half-spectrum layout of `g`. */
export function wedgeLowPass(g: Shape, sigma: number): Float32Array {
  const hx = Math.floor(g[2] / 2) + 1;
  const f = new Float32Array(g[0] * g[1] * hx);
  for (let z = 0; z < g[0]; z++)
    for (let y = 0; y < g[1]; y++)
      for (let x = 0; x < hx; x++) {
        const fz = (z <= g[0] / 2 ? z : z - g[0]) / g[0];
        const fy = (y <= g[1] / 2 ? y : y - g[1]) / g[1];
        const wedge = Math.abs(fz) > Math.abs(x / g[2]) + 1e-9 ? 0 : 1;
        f[(z * g[1] + y) * hx + x] = Math.exp(-(fz * fz + fy * fy + (x / g[2]) ** 2) / (2 * sigma ** 2)) * (z === 0 && y === 0 && x === 0 ? 1 : wedge);
      }
  return f;
}
