import type { Zyx } from '@tme/formats';
import { angleBetween, axisAngleToMatrix, multiply, relionEulerToMatrix } from '@tme/rotations';
import { refineOrientations, type OrientationScorer } from '../src';
import { nccScorer, rotateBox } from './helpers/rotate-box';
import { rng } from './helpers/synthetic';

function asymmetricTemplate(n: number): Float32Array {
  const t = new Float32Array(n ** 3);
  const c = Math.floor(n / 2);
  const blobs: Array<[number, number, number, number]> = [[0, 0, 0, 1], [4, 0, 0, 0.8], [0, 3, 1, 0.6], [-1, -2, 4, 0.5], [2, 2, -3, 0.7]];
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    let v = 0;
    for (const [bx, by, bz, a] of blobs) v += a * Math.exp(-((x - c - bx) ** 2 + (y - c - by) ** 2 + (z - c - bz) ** 2) / 3);
    t[(z * n + y) * n + x] = v;
  }
  return t;
}

/** A per-position scorer as the batch scorer refineOrientations calls (one query per pick, each level). */
function batch(score: (position: Zyx, rotations: Float64Array) => Float32Array): OrientationScorer {
  return async (queries) => queries.map((q) => score(q.position, q.rotations));
}

describe('refineOrientations', () => {
  it('moves a 7°-off rotation to the true one with a direct NCC scorer and reports the change', async () => {
    const tn = 15;
    const template = asymmetricTemplate(tn);
    const truth = relionEulerToMatrix(30, 60, -45);
    const vn = 31;
    const volume = new Float32Array(vn ** 3);
    const placed = rotateBox(template, [tn, tn, tn], truth);
    const u = rng(4);
    for (let i = 0; i < volume.length; i++) volume[i] = 0.05 * (u() - 0.5);
    const pos: Zyx = [15, 16, 14];
    for (let z = 0; z < tn; z++) for (let y = 0; y < tn; y++) for (let x = 0; x < tn; x++) {
      volume[((pos[0] + z - 7) * vn + pos[1] + y - 7) * vn + pos[2] + x - 7]! += placed[(z * tn + y) * tn + x]!;
    }
    const start = multiply(axisAngleToMatrix([0.6, -0.48, 0.64], 7), truth);
    expect(angleBetween(start, truth)).toBeCloseTo(7, 6);
    const scorer = nccScorer(volume, [vn, vn, vn], template, [tn, tn, tn]);
    const [r] = await refineOrientations([{ position: pos, rotation: start }], batch(scorer), { range: 10, levels: 3 });
    expect(angleBetween(r!.rotation, truth)).toBeLessThan(2.5);
    expect(r!.score).toBeGreaterThan(r!.originalScore);
    expect(r!.angularChange).toBeCloseTo(angleBetween(start, r!.rotation), 9);
    expect(r!.angularChange).toBeGreaterThan(4);
    expect(r!.evaluated).toBeGreaterThan(100);
  });

  it('evaluates the pick rotation first, then rotations within the range, finer per level', async () => {
    const seen: Float64Array[][] = [];
    const start = relionEulerToMatrix(40, 70, 120);
    const spy = (_p: Zyx, rots: Float64Array): Float32Array => {
      const level: Float64Array[] = [];
      for (let k = 0; k < rots.length / 9; k++) level.push(rots.slice(9 * k, 9 * k + 9));
      seen.push(level);
      return new Float32Array(level.length).map((_, k) => (k === level.length - 1 ? seen.length : 0)); // the last one wins, higher per level
    };
    const [r] = await refineOrientations([{ position: [1, 2, 3], rotation: start }], batch(spy), { range: 8, step: 4, levels: 2 });
    expect(seen).toHaveLength(2);
    expect(angleBetween(seen[0]![0]!, start)).toBeLessThan(1e-9);
    for (const m of seen[0]!) expect(angleBetween(m, start)).toBeLessThanOrEqual(16 + 1e-6); // cone 8° + in-plane 8°
    const centre1 = seen[0]![seen[0]!.length - 1]!;
    expect(angleBetween(seen[1]![0]!, centre1)).toBeLessThan(1e-9);
    for (const m of seen[1]!) expect(angleBetween(m, centre1)).toBeLessThanOrEqual(8 + 1e-6);
    expect(r!.evaluated).toBe(seen[0]!.length + seen[1]!.length);
    expect(r!.angularChange).toBeCloseTo(angleBetween(start, seen[1]![seen[1]!.length - 1]!), 9);
  });

  it('keeps the rotation when it is already the best and checks the scorer', async () => {
    const flat = (_p: Zyx, rots: Float64Array): Float32Array => {
      const out = new Float32Array(rots.length / 9);
      out[0] = 1; // the identity offset (the pick's own rotation) scores best
      return out;
    };
    const rot = relionEulerToMatrix(10, 20, 30);
    const [r] = await refineOrientations([{ position: [0, 0, 0], rotation: rot }], batch(flat), { range: 6, levels: 1 });
    expect(r!.angularChange).toBeLessThan(1e-6);
    expect(r!.score).toBe(1);
    await expect(refineOrientations([{ position: [0, 0, 0], rotation: rot }], batch(() => new Float32Array(1)))).rejects.toThrow(/returned 1 scores/);
    await expect(refineOrientations([], batch(flat), { range: 0 })).rejects.toThrow('Expected number of degrees in (0, 90] for range but received 0 of type number');
  });

  it('asks for every pick\'s candidates of a level in one call, and refines each pick around its own rotation', async () => {
    const calls: number[] = [];
    const a = relionEulerToMatrix(10, 20, 30);
    const b = relionEulerToMatrix(100, 40, -60);
    const scorer: OrientationScorer = async (queries) => {
      calls.push(queries.length);
      return queries.map((q) => new Float32Array(q.rotations.length / 9).fill(0).map((_, k) => (k === 0 ? 1 : 0)));
    };
    const out = await refineOrientations([{ position: [0, 0, 0], rotation: a }, { position: [1, 1, 1], rotation: b }], scorer, { range: 6, levels: 2 });
    expect(calls).toEqual([2, 2]);
    expect(angleBetween(out[0]!.rotation, a)).toBeLessThan(1e-6);
    expect(angleBetween(out[1]!.rotation, b)).toBeLessThan(1e-6);
  });
});
