import { relionEulerToMatrix } from '@tme/rotations';
import { scorePicks } from '../src/score-picks';

const R0 = relionEulerToMatrix(0, 0, 0);
const R10 = relionEulerToMatrix(10, 0, 0);
const R30 = relionEulerToMatrix(0, 30, 0);

describe('scorePicks', () => {
  const truth = [
    { position: [10, 10, 10] as const, rotation: R0 },
    { position: [30, 30, 30] as const, rotation: R0 },
  ];

  test('a pick within the distance matches; the angular error is the geodesic angle', () => {
    const s = scorePicks([{ position: [11, 10, 10], rotation: R10 }], truth, 2);
    expect(s.matched).toBe(1);
    expect(s.recall).toBe(0.5);
    expect(s.precision).toBe(1);
    expect(s.medianAngularError).toBeCloseTo(10, 9);
  });

  test('a pick just beyond the distance does not match', () => {
    const s = scorePicks([{ position: [10, 10, 12.01], rotation: R0 }], truth, 2);
    expect(s.matched).toBe(0);
    expect(s.precision).toBe(0);
    expect(Number.isNaN(s.medianAngularError)).toBe(true);
  });

  test('a second pick of the same particle is a false positive', () => {
    const s = scorePicks([
      { position: [10, 10, 10], rotation: R0 },
      { position: [10, 11, 10], rotation: R0 },
      { position: [30, 30, 31], rotation: R30 },
    ], truth, 2);
    expect(s.matched).toBe(2);
    expect(s.recall).toBe(1);
    expect(s.precision).toBeCloseTo(2 / 3, 12);
    expect(s.medianAngularError).toBeCloseTo(15, 9);
  });
});
