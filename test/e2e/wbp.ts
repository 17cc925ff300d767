/**
 * A minimal weighted back-projection in IMOD's geometry: a TEST helper, not part of tme. No tomographic
 * reconstruction program is packaged in Debian 12 (IMOD, tomo3d, Xmipp, AreTomo are absent; RELION 3.1's
 * `relion_tomo_test` is a developer stub), so this file reproduces what IMOD does, from IMOD's source:
 *
 * - `tilt` (IMOD's flib/tilt/tilt.f90) back-projects each view into slices perpendicular to the tilt axis
 *   (y). A slice point at (xx, zz), zz along the slice's rows (the thickness), takes the view's value at
 *   xp = xx·cos β + zz·sinβ with sinβ = −sin θ ("take the negative of the sine of tilt angle … equations are written
 *   for rotations in the X/Z plane, viewed from the negative Y axis"), θ the angle in the .tlt file. So a view at θ
 *   is the projection onto x' = xx·cos θ − zz·sin θ: the views a microscope gives IMOD must be those projections for
 *   IMOD's tomogram to be the specimen.
 * - eTomo's default post-processing (Etomo TrimvolReorientation.DEFAULT = ROTATE → `trimvol -rx` → `clip rotx`)
 *   rotates that file by −90° about X, keeping the handedness: clip_proc.c writes output section Z from input row
 *   ny − 1 − Z, so the final tomogram's z is −zz.
 *
 * In the final tomogram's frame a view at θ therefore projects onto x' = x·cos θ + z·sin θ: by the central-slice
 * theorem it samples the plane holding ky and (kx, kz) = (cos θ, sin θ), the convention of @tme/template's wedge.
 * (The other eTomo choice, "flip Y and Z" (`-yz`), inverts the handedness and mirrors the wedge.)
 */
import type { Zyx } from '@tme/formats';

/** The views of `volume` (z, y, x; final-tomogram frame) at each angle: one row of x' per y, (angle, y, x') order. */
export function imodTiltSeries(volume: Float32Array | Float64Array, shape: Zyx, angles: readonly number[]): Float64Array[] {
  const [nz, ny, nx] = shape;
  const cx = (nx - 1) / 2;
  const cz = (nz - 1) / 2;
  const views: Float64Array[] = [];
  for (const deg of angles) {
    const t = (deg * Math.PI) / 180;
    const c = Math.cos(t);
    const s = Math.sin(t);
    const view = new Float64Array(ny * nx);
    for (let z = 0; z < nz; z++) {
      // IMOD's slice row: the final z is −zz (clip rotx), so zz = −(z − cz).
      const zz = -(z - cz);
      for (let y = 0; y < ny; y++) {
        const row = y * nx;
        for (let x = 0; x < nx; x++) {
          const v = volume[(z * ny + y) * nx + x] as number;
          if (v === 0) continue;
          const u = (x - cx) * c - zz * s + cx; // tilt.f90: xx·cos β + zz·(−sin θ)
          const i0 = Math.floor(u);
          const f = u - i0;
          if (i0 >= 0 && i0 < nx) view[row + i0] = (view[row + i0] as number) + v * (1 - f);
          if (i0 + 1 >= 0 && i0 + 1 < nx) view[row + i0 + 1] = (view[row + i0 + 1] as number) + v * f;
        }
      }
    }
    views.push(view);
  }
  return views;
}

/** Ram-Lak ramp filter of one line (spatial kernel: ¼ at 0, −1/(π²n²) at odd n), the "weighted" of WBP. */
function rampFilter(line: Float64Array): Float64Array {
  const n = line.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let acc = 0.25 * (line[i] as number);
    for (let k = 1; k < n; k += 2) {
      const h = -1 / (Math.PI * Math.PI * k * k);
      if (i - k >= 0) acc += h * (line[i - k] as number);
      if (i + k < n) acc += h * (line[i + k] as number);
    }
    out[i] = acc;
  }
  return out;
}

/**
 * Weighted back-projection of `views` (from imodTiltSeries' layout) into a tomogram of `shape` in the final frame:
 * IMOD's slice geometry (xp = xx·cos θ − zz·sin θ) and eTomo's default rotation about X (z = −zz).
 */
export function imodWeightedBackProjection(views: readonly Float64Array[], angles: readonly number[], shape: Zyx): Float32Array {
  const [nz, ny, nx] = shape;
  const cx = (nx - 1) / 2;
  const cz = (nz - 1) / 2;
  const out = new Float64Array(nz * ny * nx);
  angles.forEach((deg, v) => {
    const t = (deg * Math.PI) / 180;
    const c = Math.cos(t);
    const s = Math.sin(t);
    const view = views[v] as Float64Array;
    for (let y = 0; y < ny; y++) {
      const line = rampFilter(view.subarray(y * nx, (y + 1) * nx));
      for (let z = 0; z < nz; z++) {
        const zz = -(z - cz);
        for (let x = 0; x < nx; x++) {
          const u = (x - cx) * c - zz * s + cx;
          const i0 = Math.floor(u);
          const f = u - i0;
          let value = 0;
          if (i0 >= 0 && i0 < nx) value += (line[i0] as number) * (1 - f);
          if (i0 + 1 >= 0 && i0 + 1 < nx) value += (line[i0 + 1] as number) * f;
          const i = (z * ny + y) * nx + x;
          out[i] = (out[i] as number) + value;
        }
      }
    }
  });
  return Float32Array.from(out);
}
