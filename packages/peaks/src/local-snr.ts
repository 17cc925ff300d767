import type { Zyx } from '@tme/formats';

/**
 * Local signal-to-noise of a pick: (score − m) / s, with m and s the mean and standard deviation of the
 * best-score map in the spherical shell inner ≤ r ≤ outer voxels around the pick (scored voxels inside the map
 * only). It compares a peak with its own neighbourhood, so it stays meaningful where the background level
 * drifts across the tomogram (thickness, ice, lamella edges). NaN when the shell holds fewer than 8 voxels.
 * Large shells are sampled on a regular sub-grid (stride s per axis, about 4096 voxels), so the cost per pick is
 * bounded whatever the particle size.
 */
export function localSnr(
  scores: Float32Array,
  rot: Int32Array | Float32Array,
  shape: Zyx,
  position: Zyx,
  score: number,
  inner: number,
  outer: number,
): number {
  const [nz, ny, nx] = shape;
  const [pz, py, px] = position;
  const r = Math.floor(outer);
  const shellVoxels = ((4 * Math.PI) / 3) * (outer ** 3 - inner ** 3);
  const stride = Math.max(1, Math.floor(Math.cbrt(shellVoxels / 4096)));
  const in2 = inner * inner;
  const out2 = outer * outer;
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  for (let dz = -r; dz <= r; dz += stride) {
    const z = pz + dz;
    if (z < 0 || z >= nz) continue;
    for (let dy = -r; dy <= r; dy += stride) {
      const y = py + dy;
      if (y < 0 || y >= ny) continue;
      const row = (z * ny + y) * nx;
      for (let dx = -r; dx <= r; dx += stride) {
        const x = px + dx;
        if (x < 0 || x >= nx) continue;
        const d2 = dz * dz + dy * dy + dx * dx;
        if (d2 < in2 || d2 > out2) continue;
        const s = scores[row + x]!;
        if (!(s === s) || !(rot[row + x]! >= 0)) continue;
        const d = s - score;
        sum += d;
        sumSq += d * d;
        n++;
      }
    }
  }
  if (n < 8) return NaN;
  const meanOffset = sum / n; // mean − score
  const variance = Math.max(0, sumSq / n - meanOffset * meanOffset);
  return variance > 0 ? -meanOffset / Math.sqrt(variance) : NaN;
}
