/** Array-order shape (z, y, x), x fastest. */
export type Zyx = readonly [number, number, number];

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

/** The smallest size ≥ n with prime factors ≤ maxPrime (and even when `even`). */
export function nextFastSize(n: number, maxPrime = 7, even = false): number {
  // Bounded: past 2⁵³ m++ stops changing m and the loop would never end.
  if (!(Number.isFinite(n) && n <= 2 ** 31)) throw new RangeError(`nextFastSize: expected a size up to ${2 ** 31} but received ${n}`);
  for (let m = Math.max(1, Math.ceil(n)); ; m++) {
    if (even && m % 2 !== 0) continue;
    if (largestPrimeFactor(m) <= maxPrime) return m;
  }
}

/**
 * The smallest shape ≥ `shape` per axis that both FFT back ends transform fast: prime factors 2, 3, 5, 7 only
 * (FFTW's codelets and VkFFT's radix kernels; the Vulkan path refuses axes with a prime factor above 13, where
 * Debian's VkFFT 1.2.26 switches to Bluestein's algorithm and returns wrong results), and an even x (the R2C
 * half spectrum then has exactly nx/2 + 1 columns).
 */
export function nextFastShape(shape: Zyx): [number, number, number] {
  return [nextFastSize(shape[0]), nextFastSize(shape[1]), nextFastSize(shape[2], 7, true)];
}
