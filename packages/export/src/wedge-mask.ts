import { invalidOption } from '@tme/formats';
import { validateBoxSize } from './box-size';

/** A tilt range in degrees, [min, max], e.g. [-60, 60]. */
export type TiltRange = readonly [min: number, max: number];

export function validateTiltRange(range: TiltRange): void {
  const [lo, hi] = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo >= -90 && hi <= 90 && lo < hi)) {
    throw invalidOption('tiltRange', 'MIN,MAX degrees with −90 ≤ MIN < MAX ≤ 90', `${lo},${hi}`);
  }
}

/**
 * True when the Fourier direction (kx, kz) was measured by a tilt series over `range` (beam along z, tilt axis
 * along y). A tilt by t measures the central section containing ky and the direction (cos t, sin t) in (kx, kz),
 * so a frequency is kept when its (kx, kz) line makes an angle atan(kz / kx) inside [min, max]. Frequencies on the
 * tilt axis (kx = kz = 0) are always measured.
 */
export function isMeasured(kx: number, kz: number, range: TiltRange): boolean {
  if (kx === 0 && kz === 0) return true;
  const angle = kx === 0 ? 90 : (Math.atan(kz / kx) * 180) / Math.PI; // (−90, 90]
  const tol = 1e-9;
  if (angle >= range[0] - tol && angle <= range[1] + tol) return true;
  // The line at +90° is also the line at −90°.
  return kx === 0 && range[0] <= -90 + tol;
}

/**
 * The missing-wedge weight of one tomogram for RELION's rlnCtfImage: a binary box×box×box volume in RELION's
 * CUBIC 3D-CTF layout — centred, with frequency 0 at voxel box//2 (RELION 3.1 src/reconstructor.cpp and
 * ml_optimiser.cpp: a cubic CTF volume gets setXmippOrigin() and Fctf(k) = Ictf(−k); the other accepted layout is
 * FFTW's box×box×(box/2+1)). The weight is centrosymmetric, so the k ↔ −k read needs no care. A tilt axis x swaps
 * the roles of kx and ky: the wedge then lies in the (ky, kz) plane.
 */
export function missingWedgeVolume(box: number, range: TiltRange, tiltAxis: 'y' | 'x' = 'y'): Float32Array {
  validateBoxSize(box);
  validateTiltRange(range);
  if (tiltAxis !== 'y' && tiltAxis !== 'x') throw invalidOption('tiltAxis', "'y' or 'x'", tiltAxis);
  const c = box / 2;
  const out = new Float32Array(box * box * box);
  for (let k = 0; k < box; k += 1) {
    for (let j = 0; j < box; j += 1) {
      for (let i = 0; i < box; i += 1) {
        out[(k * box + j) * box + i] = isMeasured(tiltAxis === 'y' ? i - c : j - c, k - c, range) ? 1 : 0;
      }
    }
  }
  return out;
}
