import { isTmeError } from '@tme/formats';
import { defaultBoxSize, validateBoxSize } from '../src/box-size';

describe('defaultBoxSize', () => {
  it.each([
    [20, 30], [21, 32], [32, 48], [40, 60], [10, 16], [1, 2], [27, 42], [29, 48],
  ])('diameter %d voxels → box %d (even, factors ≤ 7, ≥ 1.5×)', (d, box) => {
    expect(defaultBoxSize(d)).toBe(box);
  });

  // A regression (the endless search) hangs here until jest's timeout fails the test.
  it('refuses a diameter no box can hold at once (1e300 once meant a search that never ended)', () => {
    expect(() => defaultBoxSize(1e300)).toThrow(/for size/);
  });

  it('is always even and at least 1.5× the diameter', () => {
    for (let d = 1; d < 200; d += 0.7) {
      const b = defaultBoxSize(d);
      expect(b % 2).toBe(0);
      expect(b).toBeGreaterThanOrEqual(1.5 * d - 1e-9);
    }
  });
});

describe('validateBoxSize', () => {
  it('refuses an odd box with a clear option error', () => {
    let err: unknown;
    try { validateBoxSize(41); } catch (e) { err = e; }
    expect(isTmeError(err, 'ERR_TME_INVALID_OPTION')).toBe(true);
    expect((err as Error).message).toMatch(/EVEN integer.*for box but received 41/);
  });
  it('accepts even boxes and refuses non-integers', () => {
    expect(() => validateBoxSize(40)).not.toThrow();
    expect(() => validateBoxSize(39.5)).toThrow(/even integer/);
  });
});
