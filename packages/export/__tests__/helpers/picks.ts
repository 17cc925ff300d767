import type { ExportPick } from '../../src/pick';

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32) so tests are reproducible without a dependency. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
