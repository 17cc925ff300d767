import { TmeError } from '@tme/errors';
import { MAX_FFT_SIZE, isFastSize, nextFastEvenSize, nextFastShape, nextFastSize } from '../src';

it('fast sizes have no prime factor above 7 (or maxPrime)', () => {
  expect([1, 2, 3, 5, 7, 8, 9, 10, 12, 14, 15, 16, 20, 21, 128, 210].every((n) => isFastSize(n))).toBe(true);
  expect([0, -4, 11, 13, 22, 26, 2.5, 9973].some((n) => isFastSize(n))).toBe(false);
  expect(isFastSize(26, 13)).toBe(true);
});

it('next sizes: the smallest fast one at or above, even where asked', () => {
  expect([0, 1, 11, 13, 17, 97, 161, 200.2].map((n) => nextFastSize(n))).toEqual([1, 1, 12, 14, 18, 98, 162, 210]);
  expect([0, 1, 11, 13, 15, 17].map(nextFastEvenSize)).toEqual([2, 2, 12, 14, 16, 18]);
  expect(nextFastShape([161, 97, 13])).toEqual([162, 98, 14]);
  expect(nextFastShape([15, 15, 15])).toEqual([15, 15, 16]);
});

// Before the bound, a size ≥ 2⁵⁴ searched for ever: a regression hangs here until jest's timeout fails the test.
it('refuses sizes no volume can have at once (at ≥ 2⁵⁴ the search never ended)', () => {
  for (const n of [2 ** 54, 1e30, Infinity, NaN]) expect(() => nextFastSize(n)).toThrow(TmeError);
  expect(() => nextFastEvenSize(-1)).toThrow(TmeError);
  expect(nextFastSize(MAX_FFT_SIZE - 5)).toBe(MAX_FFT_SIZE);
});
