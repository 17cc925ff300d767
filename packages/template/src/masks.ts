import { createVolume, invalidOption, type Volume, type Zyx } from '@tme/formats';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/** A mask and the radius (Å) of the smallest sphere about box//2 that holds all of it (for 'flc-sphere'). */
export interface MaskResult {
  mask: Volume;
  radiusAngstrom: number;
}

export interface SphereMaskOptions {
  /** Radius (Å) of the plateau where the mask is 1. */
  radiusAngstrom: number;
  /** Width (Å) of the raised-cosine fall-off outside the radius. Default 0 (hard edge). */
  edgeAngstrom?: number;
  /** Centre (voxel coordinates, z, y, x). Default box//2. */
  center?: Zyx;
}

export interface EllipsoidMaskOptions {
  /** Semi-axes (Å, z, y, x). */
  radiiAngstrom: Zyx;
  /** Raised-cosine fall-off width (Å), measured along the scaled radius. Default 0. */
  edgeAngstrom?: number;
  center?: Zyx;
}

export interface ThresholdMaskOptions {
  /** Voxels above this value seed the mask. Default 0.2 × the template's maximum (Warp's choice). */
  threshold?: number;
  /** Grow the seed by this distance (Å). Default 0. */
  dilationAngstrom?: number;
  /** Raised-cosine fall-off width (Å) beyond the dilation. Default 0. */
  edgeAngstrom?: number;
}

/** 1 for d ≤ 0, ½(1 + cos(π·d/w)) for 0 < d < w, 0 beyond. */
export function cosineEdge(d: number, width: number): number {
  if (d <= 0) return 1;
  if (width <= 0 || d >= width) return 0;
  return 0.5 * (1 + Math.cos((Math.PI * d) / width));
}

const boxCenter = (shape: Zyx): Zyx => [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2), Math.floor(shape[2] / 2)];

function enclosingRadius(mask: Float32Array, shape: Zyx, voxelSize: Zyx): number {
  const c = boxCenter(shape);
  let r2 = 0;
  let i = 0;
  for (let z = 0; z < shape[0]; z++)
    for (let y = 0; y < shape[1]; y++)
      for (let x = 0; x < shape[2]; x++, i++)
        if ((mask[i] as number) > 0) r2 = Math.max(r2, ((z - c[0]) * voxelSize[0]) ** 2 + ((y - c[1]) * voxelSize[1]) ** 2 + ((x - c[2]) * voxelSize[2]) ** 2);
  return Math.sqrt(r2);
}

/** A sphere of `radiusAngstrom` with an optional soft cosine edge; reports the radius including the edge. */
export function sphereMask(shape: Zyx, voxelSize: Zyx | number, options: SphereMaskOptions): MaskResult {
  const r = options.radiusAngstrom;
  return ellipsoidMask(shape, voxelSize, { radiiAngstrom: [r, r, r], edgeAngstrom: options.edgeAngstrom, center: options.center });
}

/** An ellipsoid with semi-axes `radiiAngstrom` and an optional soft cosine edge. */
export function ellipsoidMask(shape: Zyx, voxelSize: Zyx | number, options: EllipsoidMaskOptions): MaskResult {
  const vs: Zyx = typeof voxelSize === 'number' ? [voxelSize, voxelSize, voxelSize] : voxelSize;
  const radii = options.radiiAngstrom;
  if (!radii.every((r) => Number.isFinite(r) && r > 0)) throw invalidOption('radiusAngstrom', 'a radius > 0 Å', radii.join(','));
  const edge = options.edgeAngstrom ?? 0;
  if (!(edge >= 0)) throw invalidOption('edgeAngstrom', 'a width ≥ 0 Å', edge);
  const c = options.center ?? boxCenter(shape);
  const rmin = Math.min(...radii);
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  let i = 0;
  for (let z = 0; z < shape[0]; z++)
    for (let y = 0; y < shape[1]; y++)
      for (let x = 0; x < shape[2]; x++, i++) {
        const dz = (z - c[0]) * vs[0];
        const dy = (y - c[1]) * vs[1];
        const dx = (x - c[2]) * vs[2];
        // Scaled radius: 1 on the ellipsoid surface; distance beyond it measured in Å of the smallest semi-axis.
        const q = Math.sqrt((dz / radii[0]) ** 2 + (dy / radii[1]) ** 2 + (dx / radii[2]) ** 2);
        data[i] = cosineEdge((q - 1) * rmin, edge);
      }
  const mask = createVolume(data, shape, vs);
  return { mask, radiusAngstrom: enclosingRadius(data, shape, vs) };
}

/** 1D squared distance transform (Felzenszwalb & Huttenlocher 2012) with sample spacing `h`. */
function edt1d(f: Float64Array, n: number, h: number, d: Float64Array, v: Int32Array, zb: Float64Array): void {
  let k = 0;
  v[0] = 0;
  zb[0] = -Infinity;
  zb[1] = Infinity;
  for (let q = 1; q < n; q++) {
    if (f[q] === Infinity) continue;
    if (f[v[0] as number] === Infinity) {
      v[0] = q;
      continue;
    }
    let s: number;
    for (;;) {
      const p = v[k] as number;
      s = ((f[q] as number) + (q * h) ** 2 - ((f[p] as number) + (p * h) ** 2)) / (2 * h * (q - p));
      if (s <= (zb[k] as number) && k > 0) k--;
      else break;
    }
    k++;
    v[k] = q;
    zb[k] = s;
    zb[k + 1] = Infinity;
  }
  if (f[v[0] as number] === Infinity) {
    for (let q = 0; q < n; q++) d[q] = Infinity;
    return;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while ((zb[k + 1] as number) < q * h) k++;
    const p = v[k] as number;
    d[q] = ((q - p) * h) ** 2 + (f[p] as number);
  }
}

/** Exact Euclidean distance (Å) from every voxel to the nearest `seed` voxel, anisotropic voxels allowed. */
export function distanceTransform(seed: Uint8Array, shape: Zyx, voxelSize: Zyx): Float64Array {
  const [nz, ny, nx] = shape;
  const dist = new Float64Array(nz * ny * nx);
  for (let i = 0; i < dist.length; i++) dist[i] = seed[i] ? 0 : Infinity;
  const nmax = Math.max(nz, ny, nx);
  const f = new Float64Array(nmax);
  const d = new Float64Array(nmax);
  const v = new Int32Array(nmax);
  const zb = new Float64Array(nmax + 1);
  const pass = (n: number, stride: number, starts: number[], h: number) => {
    for (const base of starts) {
      for (let q = 0; q < n; q++) f[q] = dist[base + q * stride] as number;
      edt1d(f, n, h, d, v, zb);
      for (let q = 0; q < n; q++) dist[base + q * stride] = d[q] as number;
    }
  };
  const range = (a: number) => Array.from({ length: a }, (_, i) => i);
  pass(nx, 1, range(nz * ny).map((r) => r * nx), voxelSize[2]);
  pass(ny, nx, range(nz * nx).map((r) => Math.floor(r / nx) * nx * ny + (r % nx)), voxelSize[1]);
  pass(nz, nx * ny, range(ny * nx), voxelSize[0]);
  for (let i = 0; i < dist.length; i++) dist[i] = Math.sqrt(dist[i] as number);
  return dist;
}

/** Mask from the template: voxels above `threshold`, grown by `dilationAngstrom`, with a soft cosine edge. */
export function thresholdMask(template: Volume, options: ThresholdMaskOptions = {}): MaskResult {
  let max = -Infinity;
  for (const x of template.data) max = Math.max(max, x);
  const threshold = options.threshold ?? 0.2 * max;
  if (!Number.isFinite(threshold)) throw invalidOption('threshold', 'a finite value', threshold);
  const dilation = options.dilationAngstrom ?? 0;
  const edge = options.edgeAngstrom ?? 0;
  if (!(dilation >= 0)) throw invalidOption('dilationAngstrom', 'a distance ≥ 0 Å', dilation);
  if (!(edge >= 0)) throw invalidOption('edgeAngstrom', 'a width ≥ 0 Å', edge);
  const seed = new Uint8Array(template.data.length);
  let any = false;
  for (let i = 0; i < seed.length; i++) if ((template.data[i] as number) > threshold) (seed[i] = 1), (any = true);
  if (!any) throw invalidOption('threshold', `a value below the template maximum ${max}`, threshold);
  const dist = distanceTransform(seed, template.shape, template.voxelSize);
  const data = new Float32Array(seed.length);
  for (let i = 0; i < data.length; i++) data[i] = cosineEdge((dist[i] as number) - dilation, edge);
  const mask = createVolume(data, template.shape, template.voxelSize, template.origin);
  return { mask, radiusAngstrom: enclosingRadius(data, template.shape, template.voxelSize) };
}
