import { nextFastEvenSize } from '@tme/fft-size';
import { invalidOption } from '@tme/formats';


/**
 * The default subtomogram box: the smallest even size with prime factors ≤ 7 that is at least 1.5× the particle
 * diameter, so the particle keeps a margin of background for RELION's normalisation and masks.
 */
export function defaultBoxSize(diameterVoxels: number): number {
  if (!(Number.isFinite(diameterVoxels) && diameterVoxels > 0)) {
    throw invalidOption('diameter', 'number > 0 (voxels)', diameterVoxels);
  }
  // Even, prime factors ≤ 7 (sizes FFT libraries, RELION's included, handle fastest); bounded (a diameter of 1e300
  // once meant a search that never ended).
  return nextFastEvenSize(1.5 * diameterVoxels - 1e-9);
}

/**
 * RELION rotates about box//2 and only gives correct results for even boxes (an odd box runs but reconstructs
 * garbage: relion-imod.md §3), so odd boxes are refused here rather than exported silently.
 */
export function validateBoxSize(box: number): void {
  if (!Number.isInteger(box) || box < 2) throw invalidOption('box', 'even integer ≥ 2 (voxels)', box);
  if (box % 2 !== 0) {
    throw invalidOption('box', 'an EVEN integer (RELION reconstructs odd boxes wrongly; try ' + String(box + 1) + ')', box);
  }
}
