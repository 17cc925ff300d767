import { invalidOption, type Zyx } from '@tme/formats';
import { boxCentre } from './rotate';

/**
 * A binary sphere on a box: 1 where the distance (in Å, per-axis voxel size) from the box centre floor(shape/2)
 * is ≤ `radius` Å. A sphere is rotation-invariant, which flc-sphere's single normalisation relies on.
 */
export function sphereMask(shape: Zyx, radius: number, voxelSize: Zyx): Float32Array {
  if (!(radius > 0) || !Number.isFinite(radius)) throw invalidOption('maskRadius', 'a number > 0 (Å)', radius);
  const [nz, ny, nx] = shape;
  const [cz, cy, cx] = boxCentre(shape);
  const out = new Float32Array(nz * ny * nx);
  const r2 = radius * radius * (1 + 1e-9);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const d2 = ((z - cz) * voxelSize[0]) ** 2 + ((y - cy) * voxelSize[1]) ** 2 + ((x - cx) * voxelSize[2]) ** 2;
        if (d2 <= r2) out[(z * ny + y) * nx + x] = 1;
      }
    }
  }
  return out;
}

/** The default mask radius: the largest sphere about the box centre that stays inside the box, in Å. */
export function inscribedRadius(shape: Zyx, voxelSize: Zyx): number {
  let r = Infinity;
  for (let a = 0; a < 3; a++) {
    const n = shape[a] as number;
    const c = Math.floor(n / 2);
    r = Math.min(r, Math.min(c, n - 1 - c) * (voxelSize[a] as number));
  }
  return r > 0 ? r : Math.min(...voxelSize) / 2;
}
