import type { Quaternion } from './quaternion';
// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;

/** A seeded uniform generator on [0, 1) (mulberry32): the same seed gives the same sequence everywhere. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = M.imul(t ^ (t >>> 15), t | 1);
    t ^= t + M.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A rotation drawn uniformly from SO(3) (Shoemake's method), as a quaternion [w, x, y, z]. */
export function randomQuaternion(random: () => number): Quaternion {
  const u1 = random(), u2 = 2 * M.PI * random(), u3 = 2 * M.PI * random();
  const a = M.sqrt(1 - u1), b = M.sqrt(u1);
  return [a * M.sin(u2), a * M.cos(u2), b * M.sin(u3), b * M.cos(u3)];
}
