import { nextFastSize } from '@tme/fft-size';

/** The smallest n' ≥ n whose prime factors are all 2, 3, 5 or 7 (@tme/fft-size's nextFastSize, by its older name). */
export function nextSmoothSize(n: number): number {
  return nextFastSize(n);
}
