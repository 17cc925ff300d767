import { matrixToQuaternion, multiply, randomQuaternion, seededRandom, type Matrix3 } from '../../src';

const M = Math; // local alias: global lookups are slow in jest's vm context

/** Brute force: the largest angle (degrees) from `probes` seeded random rotations to the nearest of S·G. */
export function bruteCovering(matrices: Float64Array, probes: number, seed: number, group: Matrix3[] = []): number {
  const members: number[][] = [];
  for (let i = 0; i < matrices.length / 9; i++) {
    const r = matrices.subarray(i * 9, i * 9 + 9);
    if (group.length === 0) members.push(matrixToQuaternion(r));
    for (const g of group) members.push(matrixToQuaternion(multiply(r, g)));
  }
  const random = seededRandom(seed);
  let worst = 0;
  for (let p = 0; p < probes; p++) {
    const q = randomQuaternion(random);
    let best = 0;
    for (const m of members) best = M.max(best, M.abs(q[0] * m[0]! + q[1] * m[1]! + q[2] * m[2]! + q[3] * m[3]!));
    worst = M.max(worst, 2 * M.acos(M.min(1, best)) * (180 / M.PI));
  }
  return worst;
}
