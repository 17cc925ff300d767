import { invalidOption } from '@tme/formats';

/** The smallest n' ≥ n whose prime factors are all 2, 3, 5 or 7: sizes FFTW and VkFFT transform fast. */
export function nextSmoothSize(n: number): number {
  // Bounded: past 2⁵³ m++ stops changing m and the loop would never end.
  if (!(Number.isFinite(n) && n <= 2 ** 31)) throw invalidOption('size', `a size up to ${2 ** 31}`, n);
  for (let m = Math.max(1, Math.ceil(n)); ; m++) {
    let r = m;
    for (const p of [2, 3, 5, 7]) while (r % p === 0) r /= p;
    if (r === 1) return m;
  }
}
