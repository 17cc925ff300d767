/**
 * FFT-friendly sizes: prime factors 2, 3, 5 and 7 only — FFTW's codelets and VkFFT's radix kernels (the Vulkan path
 * refuses a prime factor above 13, where Debian's VkFFT 1.2.26 switches to Bluestein's algorithm and returns wrong
 * results). One implementation for every package that pads a tile, sizes a template box or a subtomogram.
 */
import { invalidOption } from '@tme/errors';

/** Array-order shape (z, y, x), x fastest. */
export type Zyx = readonly [number, number, number];

/** Larger than any axis a volume can have (typed arrays end at 2³² elements); past 2⁵³ `m + 1` would not even change
 *  m, and a search for the next size would never end. */
export const MAX_FFT_SIZE = 2 ** 31;

function largestPrimeFactor(n: number): number {
  let largest = 1;
  let rest = n;
  for (let p = 2; p * p <= rest; p++) {
    while (rest % p === 0) {
      largest = p;
      rest /= p;
    }
  }
  return rest > 1 ? rest : largest;
}

/** True when every prime factor of `n` is at most `maxPrime`. */
export function isFastSize(n: number, maxPrime = 7): boolean {
  return Number.isInteger(n) && n >= 1 && largestPrimeFactor(n) <= maxPrime;
}

/** The smallest size ≥ n with prime factors ≤ maxPrime (and even when `even`); refuses sizes past MAX_FFT_SIZE. */
export function nextFastSize(n: number, maxPrime = 7, even = false): number {
  if (!(Number.isFinite(n) && n <= MAX_FFT_SIZE)) throw invalidOption('size', `a size up to ${MAX_FFT_SIZE}`, n);
  for (let m = Math.max(1, Math.ceil(n)); ; m++) {
    if (even && m % 2 !== 0) continue;
    if (largestPrimeFactor(m) <= maxPrime) return m;
  }
}

/** The smallest even size ≥ n with prime factors ≤ 7 (template boxes and RELION's subtomograms are even). */
export function nextFastEvenSize(n: number): number {
  if (!(n >= 0)) throw invalidOption('size', `a size from 0 to ${MAX_FFT_SIZE}`, n);
  return nextFastSize(n, 7, true);
}

/** The smallest shape ≥ `shape` per axis that both FFT back ends transform fast, with an even x (the R2C half
 *  spectrum then has exactly nx/2 + 1 columns). */
export function nextFastShape(shape: Zyx): [number, number, number] {
  return [nextFastSize(shape[0]), nextFastSize(shape[1]), nextFastSize(shape[2], 7, true)];
}
