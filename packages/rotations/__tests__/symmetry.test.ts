import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  apply, matrixToQuaternion, multiply, parseSymmetry, rotationAngle, sampleRotations, symmetryGroup, type Matrix3,
} from '../src';
import { bruteCovering } from './helpers/brute';

// `relion_refine --print_symmetry_ops --sym X` (RELION 3.1.3, printed to 5 significant digits).
const relion = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'relion-symmetry.json'), 'utf8')) as Record<string, number[][]>;

function sameRotation(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): boolean {
  for (let i = 0; i < 9; i++) if (Math.abs(a[i]! - b[i]!) > tol) return false;
  return true;
}
function contains(group: Matrix3[], r: ArrayLike<number>, tol = 1e-9): boolean {
  return group.some((g) => sameRotation(g, r, tol));
}

describe('symmetryGroup', () => {
  it.each([['C1', 1], ['C5', 5], ['c12', 12], ['D2', 4], ['D7', 14], ['T', 12], ['O', 24], ['I', 60]] as const)(
    '%s has order %p, starts with the identity and is closed under multiplication',
    (name, order) => {
      const g = symmetryGroup(name);
      expect(g).toHaveLength(order);
      expect(rotationAngle(g[0]!)).toBe(0);
      const keys = new Set(g.map((r) => matrixToQuaternion(r).map((x) => Math.round(x * 1e6)).join()));
      expect(keys.size).toBe(order); // no duplicates
      for (const a of g) for (const b of g) expect(contains(g, multiply(a, b))).toBe(true);
    },
  );

  it.each(['C4', 'D3', 'T', 'O', 'I'])('%s is the same set of matrices as RELION prints', (name) => {
    const ours = symmetryGroup(name);
    const theirs = relion[name]!;
    expect(ours).toHaveLength(theirs.length);
    for (const r of theirs) expect(contains(ours, r, 1e-4)).toBe(true);
  });

  it('Cn turns about z and the dihedral 2-fold lies along x', () => {
    const c5 = symmetryGroup('C5');
    expect(apply(c5[1]!, [1, 0, 0])[1]).toBeCloseTo(Math.sin((72 * Math.PI) / 180), 12);
    const d7 = symmetryGroup('D7');
    const flip = d7[7]!;
    expect(apply(flip, [1, 0, 0])).toEqual([1, 0, 0].map((x) => expect.closeTo(x, 12)));
    expect(apply(flip, [0, 0, 1])[2]).toBeCloseTo(-1, 12);
  });

  it('parses names case-insensitively and rejects others with ERR_TME_INVALID_OPTION', () => {
    expect(parseSymmetry(' d7 ').name).toBe('D7');
    for (const bad of ['C0', 'C', 'X', 'I3', 'D-2', '']) {
      expect(() => symmetryGroup(bad)).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
    }
  });
});

describe('sampling an asymmetric unit', () => {
  const c1 = new Map<number, number>();
  const c1Count = (step: number): number => {
    if (!c1.has(step)) c1.set(step, sampleRotations({ angularStep: step, measure: false }).count);
    return c1.get(step)!;
  };
  it.each([['C5', 15], ['D7', 15], ['T', 20], ['O', 15], ['I', 15], ['C2', 30], ['D2', 20]] as const)(
    '%s at %p°: S·G covers SO(3) within the step; far fewer rotations than C1',
    (name, step) => {
      const set = sampleRotations({ angularStep: step, symmetry: name });
      const group = symmetryGroup(name);
      expect(set.symmetry).toBe(name);
      expect(set.coveringBound).toBeLessThanOrEqual(step);
      expect(set.coveringAngle).toBeLessThanOrEqual(step);
      expect(bruteCovering(set.matrices, 1500, 7, group)).toBeLessThanOrEqual(step);
      expect(set.count).toBeLessThan((3 * c1Count(step)) / group.length);
      expect(rotationAngle(set.matrices.subarray(0, 9))).toBe(0);
    },
  );
});
