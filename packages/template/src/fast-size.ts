import { invalidOption } from '@tme/formats';

/** True when n has no prime factor above 7 (FFT-friendly for VkFFT, FFTW and the host FFT alike). */
export function isFastSize(n: number): boolean {
  if (!Number.isInteger(n) || n < 1) return false;
  let m = n;
  for (const p of [2, 3, 5, 7]) while (m % p === 0) m /= p;
  return m === 1;
}

/** Larger than any axis a volume can have (typed arrays end at 2³² elements); beyond 2⁵³ `m += 2` would not even
 *  change m, and the search below would never end. */
const MAX_FFT_AXIS = 2 ** 31;

/** The smallest even n' ≥ n whose prime factors are all ≤ 7. */
export function nextFastEvenSize(n: number): number {
  if (!(Number.isFinite(n) && n >= 0 && n <= MAX_FFT_AXIS)) throw invalidOption('size', `a size from 0 to ${MAX_FFT_AXIS}`, n);
  let m = Math.max(2, Math.ceil(n));
  if (m % 2) m++;
  while (!isFastSize(m)) m += 2;
  return m;
}
