import { randomQuaternion, quaternionToMatrix, seededRandom } from '../src';
import { icosahedralCoveringBound, icosahedralGrid, icosahedralGridSize } from '../src/sphere-grid';

describe('icosahedral sphere grid', () => {
  it.each([1, 2, 3, 5, 8])('frequency %p: 10n² + 2 unit directions, +z first, sorted by polar angle', (n) => {
    const { directions, radii } = icosahedralGrid(n);
    expect(directions.length / 3).toBe(icosahedralGridSize(n));
    expect(Array.from(directions.subarray(0, 3))).toEqual([0, 0, 1]);
    for (let i = 0; i < radii.length; i++) {
      expect(Math.hypot(directions[3 * i]!, directions[3 * i + 1]!, directions[3 * i + 2]!)).toBeCloseTo(1, 14);
      if (i > 0) expect(directions[3 * i + 2]!).toBeLessThanOrEqual(directions[3 * i - 1]! + 1e-9);
      expect(radii[i]!).toBeLessThanOrEqual(icosahedralCoveringBound(n) + 1e-12);
    }
  });

  it.each([2, 4, 7])('frequency %p: the proven covering bound holds for random directions and is nearly tight', (n) => {
    const { directions } = icosahedralGrid(n);
    const random = seededRandom(n);
    let worst = 0;
    for (let k = 0; k < 4000; k++) {
      const d = quaternionToMatrix(randomQuaternion(random)).subarray(6, 9); // a uniform random direction
      let best = -1;
      for (let i = 0; i < directions.length / 3; i++) {
        best = Math.max(best, d[0]! * directions[3 * i]! + d[1]! * directions[3 * i + 1]! + d[2]! * directions[3 * i + 2]!);
      }
      worst = Math.max(worst, Math.acos(Math.min(1, best)) * 180 / Math.PI);
    }
    expect(worst).toBeLessThanOrEqual(icosahedralCoveringBound(n));
    expect(worst).toBeGreaterThan(0.9 * icosahedralCoveringBound(n));
  });
});
