// Test helpers: a seeded PRNG and synthetic score maps. Not part of the package.
import type { Zyx } from '@tme/formats';
import type { ScoreMaps } from '../../src';
import { seededRandom } from '@tme/rotations';

/** The seeded generator tme uses everywhere (mulberry32), so test inputs are reproducible. */
export const rng = seededRandom;

/**
 * The best-score map of a search over pure noise, simulated directly: per voxel the maximum of R independent
 * N(0, 1) scores, its argmax as the rotation index, and the mean/std of all voxels × R scores as the engine
 * tracks them.
 */
// Math's functions held in module constants: inside jest's vm context every `Math.x` lookup costs ~200 ns.
const { sqrt, log, cos, sin, imul, PI } = Math;

export function noiseSearch(shape: Zyx, rotations: number, seed: number): ScoreMaps {
  const n = shape[0] * shape[1] * shape[2];
  // Inlined mulberry32 + Box–Muller (both values): this loop makes millions of draws per test.
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = imul(a ^ (a >>> 15), a | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const draws = new Float64Array(rotations + 1);
  const scores = new Float32Array(n);
  const rotationIndices = new Int32Array(n);
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < rotations; r += 2) {
      const rad = sqrt(-2 * log(1 - uniform()));
      const phi = 2 * PI * uniform();
      draws[r] = rad * cos(phi);
      draws[r + 1] = rad * sin(phi);
    }
    let best = -Infinity;
    let arg = 0;
    for (let r = 0; r < rotations; r++) {
      const s = draws[r]!;
      sum += s;
      sumSq += s * s;
      if (s > best) { best = s; arg = r; }
    }
    scores[i] = best;
    rotationIndices[i] = arg;
  }
  const count = n * rotations;
  const mean = sum / count;
  return {
    scores, rotationIndices, shape,
    rotations: identityTable(rotations),
    statistics: { mean, std: Math.sqrt(sumSq / count - mean * mean), rotations, voxels: n, count },
  };
}

/** R rotations about z by 1° steps: distinct, valid matrices to index into. */
export function identityTable(rotations: number): Float64Array {
  const t = new Float64Array(9 * rotations);
  for (let r = 0; r < rotations; r++) {
    const a = (r * Math.PI) / 180;
    t.set([Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a), 0, 0, 0, 1], 9 * r);
  }
  return t;
}

/** Adds (by maximum) a Gaussian blob of height h and width sigma (voxels) centred at a (z, y, x) point. */
export function plantBlob(maps: ScoreMaps, centre: Zyx, h: number, sigma: number, rotationIndex = 0): void {
  const [nz, ny, nx] = maps.shape;
  const r = Math.ceil(4 * sigma);
  for (let z = Math.max(0, Math.floor(centre[0]) - r); z <= Math.min(nz - 1, Math.ceil(centre[0]) + r); z++) {
    for (let y = Math.max(0, Math.floor(centre[1]) - r); y <= Math.min(ny - 1, Math.ceil(centre[1]) + r); y++) {
      for (let x = Math.max(0, Math.floor(centre[2]) - r); x <= Math.min(nx - 1, Math.ceil(centre[2]) + r); x++) {
        const d2 = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2;
        const v = h * Math.exp(-d2 / (2 * sigma * sigma));
        const i = (z * ny + y) * nx + x;
        if (v > maps.scores[i]!) {
          maps.scores[i] = v;
          maps.rotationIndices[i] = rotationIndex;
        }
      }
    }
  }
}
