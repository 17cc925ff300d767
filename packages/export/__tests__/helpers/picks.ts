import type { ExportPick } from '../../src/pick';
import { seededRandom } from '@tme/rotations';

/** The seeded generator tme uses everywhere (mulberry32), so test inputs are reproducible. */
export const rng = seededRandom;

/** A uniformly random rotation matrix (from a random unit quaternion), row-major, xyz frame. */
export function randomRotation(next: () => number): Float64Array {
  let q: number[];
  let n: number;
  do {
    q = [next() * 2 - 1, next() * 2 - 1, next() * 2 - 1, next() * 2 - 1];
    n = Math.hypot(...q);
  } while (n < 0.1 || n > 1);
  const [w, x, y, z] = q.map((v) => v / n) as [number, number, number, number];
  return Float64Array.from([
    1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
    2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
    2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
  ]);
}

export function identityRotation(): Float64Array {
  return Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
}

/** n picks with random rotations, positions inside `shape` (z, y, x) with fractional parts, scores descending. */
export function makePicks(n: number, shape: readonly [number, number, number], seed = 7): ExportPick[] {
  const next = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    position: [next() * (shape[0] - 1), next() * (shape[1] - 1), next() * (shape[2] - 1)] as const,
    rotation: randomRotation(next),
    score: 1 - i * 0.01,
    detail: i % 2,
  }));
}

/** Largest absolute element difference of two matrices. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i += 1) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}
