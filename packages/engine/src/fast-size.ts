/** The smallest n' ≥ n whose prime factors are all 2, 3, 5 or 7: sizes FFTW and VkFFT transform fast. */
export function nextSmoothSize(n: number): number {
  for (let m = Math.max(1, Math.ceil(n)); ; m++) {
    let r = m;
    for (const p of [2, 3, 5, 7]) while (r % p === 0) r /= p;
    if (r === 1) return m;
  }
}
