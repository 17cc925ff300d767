// Shared test fixtures: seeded noise, small rotation sets, and brute-force per-voxel scores that share no code
// with the reference backend (they compute a masked Pearson correlation per voxel, directly from its definition).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MrcRegionReader, createVolume, type Volume, type Zyx } from '@tme/formats';
import { matchTemplateOutOfCore, type MatchOptions, type OutOfCoreMatchResult } from '../src/match';
import type { MatchJob } from '../src/prepare';
import { rotateBox } from '../src/rotate';
import { seededRandom } from '@tme/rotations';

/** The seeded generator tme uses everywhere (mulberry32), so test inputs are reproducible. */
export const rng = seededRandom;

export function gaussianNoise(n: number, seed: number, sigma = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(1e-12, r());
    out[i] = sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export function noiseVolume(shape: Zyx, seed: number, voxelSize = 2): Volume {
  return createVolume(gaussianNoise(shape[0] * shape[1] * shape[2], seed), shape, voxelSize);
}

/** An asymmetric blob template: three Gaussians at distinct offsets, so that rotations are distinguishable. */
export function blobTemplate(size: number, voxelSize = 2): Volume {
  const c = Math.floor(size / 2);
  const data = new Float32Array(size ** 3);
  const blobs: Array<[number, number, number, number]> = [[0, 0, 0, 1], [0, 0, 2, 0.8], [0, 2, 0, -0.6], [2, 0, -1, 0.5]];
  for (let z = 0; z < size; z++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let v = 0;
        for (const [bz, by, bx, a] of blobs) v += a * Math.exp(-((z - c - bz) ** 2 + (y - c - by) ** 2 + (x - c - bx) ** 2) / 1.2);
        data[(z * size + y) * size + x] = v;
      }
    }
  }
  return createVolume(data, [size, size, size], voxelSize);
}

/** Rotation about an axis of the xyz frame by `deg` degrees, row-major. */
export function axisRotation(axis: 'x' | 'y' | 'z', deg: number): number[] {
  const a = (deg * Math.PI) / 180;
  const c = Math.cos(a);
  const s = Math.sin(a);
  if (axis === 'z') return [c, -s, 0, s, c, 0, 0, 0, 1];
  if (axis === 'y') return [c, 0, s, 0, 1, 0, -s, 0, c];
  return [1, 0, 0, 0, c, -s, 0, s, c];
}

export function rotationSet(list: Array<['x' | 'y' | 'z', number]>): Float64Array {
  return Float64Array.from(list.flatMap(([axis, deg]) => axisRotation(axis, deg)));
}

export type BruteScore = 'cc' | 'flc-sphere' | 'flc' | 'mcc';

/**
 * The score at every voxel of a tile, by definition: the patch of the (circular) tile under the template box at
 * x, and a masked Pearson correlation (or a plain dot product for cc) with the rotated template.
 */
export function bruteForceScores(
  score: BruteScore, f: Float32Array, n: Zyx, t: Float32Array, box: Zyx, m: Float32Array, rotation: ArrayLike<number>,
  interpolation: 'linear' | 'cubic' = 'linear', targetMask?: Float32Array,
): Float64Array {
  const R = Float64Array.from(rotation);
  const tR = rotateBox(t, box, R, interpolation);
  const mR = score === 'flc' || score === 'mcc' ? rotateBox(m, box, R, interpolation) : Float64Array.from(m);
  const [nz, ny, nx] = n;
  const [bz, by, bx] = box;
  const c = [Math.floor(bz / 2), Math.floor(by / 2), Math.floor(bx / 2)];
  const out = new Float64Array(nz * ny * nx);
  const mod = (a: number, b: number): number => ((a % b) + b) % b;
  const nR = mR.reduce((s, v) => s + v, 0);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    let sw = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (let pz = 0; pz < bz; pz++) for (let py = 0; py < by; py++) for (let px = 0; px < bx; px++) {
      const pi = (pz * by + py) * bx + px;
      const fi = (mod(z + pz - c[0]!, nz) * ny + mod(y + py - c[1]!, ny)) * nx + mod(x + px - c[2]!, nx);
      const a = f[fi]!;
      const b = tR[pi]!;
      const w = score === 'cc' ? 1 : mR[pi]! * (score === 'mcc' ? targetMask![fi]! : 1);
      sw += w; sa += w * a; sb += w * b; saa += w * a * a; sbb += w * b * b; sab += w * a * b;
    }
    const i = (z * ny + y) * nx + x;
    if (score === 'cc') { out[i] = sab; continue; }
    if (score === 'mcc' && sw < 0.3 * nR) { out[i] = 0; continue; }
    const cov = sab - (sa * sb) / sw;
    const va = saa - (sa * sa) / sw;
    const vb = sbb - (sb * sb) / sw;
    const v = va > 0 && vb > 0 ? cov / Math.sqrt(va * vb) : 0;
    out[i] = score === 'mcc' ? Math.max(-1, Math.min(1, v)) : v;
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
}

/** A real filter on the half spectrum of `shape` (fz, fy, fx in cycles per voxel, signed; fx ≥ 0). */
export function halfSpectrumFilter(shape: Zyx, value: (fz: number, fy: number, fx: number) => number): Float32Array {
  const [nz, ny, nx] = shape;
  const hx = Math.floor(nx / 2) + 1;
  const out = new Float32Array(nz * ny * hx);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < hx; x++) {
    out[(z * ny + y) * hx + x] = value((z <= nz / 2 ? z : z - nz) / nz, (y <= ny / 2 ? y : y - ny) / ny, x / nx);
  }
  return out;
}

/** matchTemplateOutOfCore on the MRC `file` (read by region), its maps written into dir/out; the reader closed after. */
export async function runOutOfCore(
  file: string, job: Omit<MatchJob, 'target'>, dir: string, out: string, options: MatchOptions = {},
): Promise<OutOfCoreMatchResult> {
  fs.mkdirSync(path.join(dir, out), { recursive: true });
  const reader = new MrcRegionReader(file);
  try {
    return await matchTemplateOutOfCore({ ...job, target: reader }, { scores: path.join(dir, out, 'scores.mrc'), rotations: path.join(dir, out, 'rotations.mrc') }, options);
  } finally {
    reader.close();
  }
}

/** Noise (σ 0.5) with a 12³ blob template added at each centre, and (optionally) x ≥ 42 zeroed: a slab without data. */
export function plantedTarget(shape: Zyx, centres: ReadonlyArray<readonly [number, number, number]>, withNoData: boolean): Float32Array {
  const [nz, ny, nx] = shape;
  const data = gaussianNoise(nz * ny * nx, 11, 0.5);
  const t = blobTemplate(12);
  for (const [cz, cy, cx] of centres) {
    for (let z = 0; z < 12; z++) for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) {
      const i = ((cz - 6 + z) * ny + cy - 6 + y) * nx + cx - 6 + x;
      data[i] = (data[i] as number) + (t.data[(z * 12 + y) * 12 + x] as number);
    }
  }
  if (withNoData) for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) data.fill(0, (z * ny + y) * nx + 42, (z * ny + y) * nx + nx);
  return data;
}
