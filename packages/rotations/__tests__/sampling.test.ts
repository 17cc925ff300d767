import {
  angleBetween, identity, matrixToQuaternion, rotationAt, sampleRotations, RotationIndex, orthogonalityError,
  randomQuaternion, seededRandom, quaternionToMatrix,
} from '../src';
import { bruteCovering } from './helpers/brute';

// pyTME's Karney sets (count, covering angle in degrees), from pytme.md: the reference for efficiency.
const KARNEY: [number, number][] = [[27.78, 360], [20.83, 648], [16.29, 1992], [12.29, 4344], [9.72, 7416], [8.17, 12648], [7.4, 19560], [6.6, 27672]];
/** Karney's count scaled to `step` from the set with the nearest covering angle (count ∝ angle⁻³). */
function karneyAt(step: number): number {
  const [angle, n] = KARNEY.reduce((a, b) => (Math.abs(b[0] - step) < Math.abs(a[0] - step) ? b : a));
  return n * (angle / step) ** 3;
}

describe('sampleRotations (C1)', () => {
  // Counts are fixed by the construction: a change here is a change of every job's rotation list.
  const expected: [number, number][] = [[30, 320], [20, 1080], [15, 2440], [10, 8160], [7, 23490]];
  it.each(expected)('%p° → %p rotations, measured covering ≤ step ≤ proven bound', (step, count) => {
    const set = sampleRotations({ angularStep: step });
    expect(set.count).toBe(count);
    expect(set.matrices.length).toBe(9 * count);
    expect(set.symmetry).toBe('C1');
    expect(set.coveringBound).toBeLessThanOrEqual(step);
    expect(set.coveringAngle).toBeLessThanOrEqual(set.coveringBound + 1e-9);
    // Refined probes get close to the bound: the set is not needlessly dense.
    expect(set.coveringAngle).toBeGreaterThan(0.85 * step);
    expect(set.count).toBeLessThan(2 * karneyAt(step));
  });

  it.each([[5, 65124], [3, 300768]])('%p°: %p rotations with a proven bound ≤ step (generation only)', (step, count) => {
    const set = sampleRotations({ angularStep: step, measure: false });
    expect(set.count).toBe(count);
    expect(set.coveringBound).toBeLessThanOrEqual(step);
    expect(Number.isNaN(set.coveringAngle)).toBe(true);
  });

  it('is within 1.3× of Karney\'s count at Karney\'s own covering angles (16.29°, 12.29°, 9.72°, 7.4°)', () => {
    for (const [angle, n] of KARNEY.slice(2, 7)) {
      const set = sampleRotations({ angularStep: angle, measure: false });
      expect(set.coveringBound).toBeLessThanOrEqual(angle);
      expect(set.count / n).toBeLessThan(1.3);
    }
  });

  it('brute force over random probes agrees: no orientation is farther than the step (15°, 20°, 30°)', () => {
    for (const step of [30, 20, 15]) {
      const set = sampleRotations({ angularStep: step });
      const worst = bruteCovering(set.matrices, 3000, 99);
      expect(worst).toBeLessThanOrEqual(step);
      expect(worst).toBeLessThanOrEqual(set.coveringAngle + 1e-9);
    }
  });

  it('members are exact rotations, index 0 is the identity, and the index finds each member itself', () => {
    const set = sampleRotations({ angularStep: 10 });
    expect(rotationAt(set, 0)).toEqual(identity());
    const index = new RotationIndex(set.matrices, 10);
    let worstOrtho = 0, worstSelf = 0, notSelf = 0; // accumulated: one expect per member would dominate the run time
    for (let i = 0; i < set.count; i++) {
      const r = rotationAt(set, i);
      worstOrtho = Math.max(worstOrtho, orthogonalityError(r));
      const { index: self, angle } = index.nearest(matrixToQuaternion(r));
      if (self !== i) notSelf++;
      worstSelf = Math.max(worstSelf, angle);
    }
    expect(worstOrtho).toBeLessThan(1e-13);
    expect(notSelf).toBe(0);
    expect(worstSelf).toBeLessThan(1e-9);
  });

  // A covering of radius θ needs no member within θ of another (evenly spaced points 2θ apart cover a line with
  // radius θ), so the checks are: no near-duplicates, and no member isolated by more than 2θ.
  it.each([30, 15, 10, 7])('%p°: nearest-neighbour angles between members lie in [0.5·step, 2·step]', (step) => {
    const set = sampleRotations({ angularStep: step });
    const index = new RotationIndex(set.matrices, step);
    let lo = 180, hi = 0, disagree = 0;
    for (let i = 0; i < set.count; i++) {
      const { index: j, angle } = index.nearest(matrixToQuaternion(rotationAt(set, i)), i);
      if (Math.abs(angle - angleBetween(rotationAt(set, i), rotationAt(set, j))) > 1e-6) disagree++;
      lo = Math.min(lo, angle);
      hi = Math.max(hi, angle);
    }
    expect(disagree).toBe(0);
    expect(lo).toBeGreaterThan(0.5 * step);
    expect(hi).toBeLessThanOrEqual(2 * step);
  });

  it('is deterministic and returns independent copies', () => {
    const a = sampleRotations({ angularStep: 20 });
    a.matrices[0] = 42;
    const b = sampleRotations({ angularStep: 20, measure: false });
    const c = sampleRotations({ angularStep: 20 });
    expect(c.matrices[0]).toBe(1);
    expect(Array.from(b.matrices)).toEqual(Array.from(c.matrices));
  });

  it('rejects steps outside 2…180° with ERR_TME_INVALID_OPTION; 180° is the identity alone', () => {
    expect(() => sampleRotations({ angularStep: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
    expect(() => sampleRotations({ angularStep: Number.NaN })).toThrow(/angularStep/);
    expect(() => sampleRotations({ angularStep: 10, symmetry: 'X3' })).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
    expect(sampleRotations({ angularStep: 180 }).count).toBe(1);
  });
});

describe('RotationIndex', () => {
  it('finds the same nearest angle as brute force, for any cell size', () => {
    const set = sampleRotations({ angularStep: 10, measure: false });
    const quats = Array.from({ length: set.count }, (_, i) => matrixToQuaternion(rotationAt(set, i)));
    const random = seededRandom(4);
    const queries = Array.from({ length: 150 }, () => randomQuaternion(random));
    const brute = queries.map((q) => {
      let bestDot = -1;
      for (const m of quats) bestDot = Math.max(bestDot, Math.abs(q[0] * m[0] + q[1] * m[1] + q[2] * m[2] + q[3] * m[3]));
      return 2 * Math.acos(Math.min(1, bestDot)) * 180 / Math.PI;
    });
    for (const cell of [2, 10, 60]) {
      const index = new RotationIndex(set.matrices, cell);
      let worst = 0;
      queries.forEach((q, k) => {
        const got = index.nearest(q);
        worst = Math.max(worst, Math.abs(got.angle - brute[k]!), Math.abs(angleBetween(quaternionToMatrix(q), rotationAt(set, got.index)) - brute[k]!));
      });
      expect(worst).toBeLessThan(1e-6);
    }
  });
});
