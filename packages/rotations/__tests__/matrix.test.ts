import {
  angleBetween, apply, axisAngleToMatrix, identity, multiply, rotationAngle, rotationFromZ, rotationX, rotationZ,
  toArrayOrder, transpose, orthogonalityError,
} from '../src';
import { seeded } from './helpers/scipy';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-12): void => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(tol);
};

describe('matrix helpers', () => {
  it('rotations are active and right-handed: Rz(90) takes x to y, Rx(90) takes y to z', () => {
    close(apply(rotationZ(90), [1, 0, 0]), [0, 1, 0]);
    close(apply(rotationX(90), [0, 1, 0]), [0, 0, 1]);
    close(axisAngleToMatrix([0, 0, 2], 90), rotationZ(90));
  });
  it('multiply applies the right factor first; transpose inverts', () => {
    const a = rotationZ(90), b = rotationX(90);
    close(apply(multiply(a, b), [0, 1, 0]), apply(a, apply(b, [0, 1, 0])));
    close(multiply(a, transpose(a)), identity());
  });
  it('angleBetween is the geodesic angle, exact at small angles and at 180°', () => {
    expect(angleBetween(identity(), rotationZ(1e-6))).toBeCloseTo(1e-6, 15);
    expect(angleBetween(rotationX(10), rotationX(-25))).toBeCloseTo(35, 12);
    expect(rotationAngle(axisAngleToMatrix([1, 1, 1], 180))).toBeCloseTo(180, 12);
    expect(rotationAngle(axisAngleToMatrix([1, -2, 0.5], 123))).toBeCloseTo(123, 12);
  });
  it('toArrayOrder acts on (z, y, x) vectors as R acts on (x, y, z)', () => {
    const r = axisAngleToMatrix([0.3, -0.5, 0.8], 70);
    const v: [number, number, number] = [0.2, -1.5, 3];
    const xyz = apply(r, v);
    close(apply(toArrayOrder(r), [v[2], v[1], v[0]]), [xyz[2], xyz[1], xyz[0]]);
  });
  it('rotationFromZ takes z to d by the smallest angle', () => {
    const rand = seeded(3);
    for (let i = 0; i < 100; i++) {
      const d: [number, number, number] = [rand() - 0.5, rand() - 0.5, rand() - 0.5];
      const n = Math.hypot(...d);
      const r = rotationFromZ(d);
      close(apply(r, [0, 0, 1]), d.map((x) => x / n));
      expect(rotationAngle(r)).toBeCloseTo(Math.acos(d[2] / n) * 180 / Math.PI, 9);
      expect(orthogonalityError(r)).toBeLessThan(1e-14);
    }
    close(apply(rotationFromZ([0, 0, -1]), [0, 0, 1]), [0, 0, -1]);
    close(rotationFromZ([0, 0, 1]), identity());
  });
});
