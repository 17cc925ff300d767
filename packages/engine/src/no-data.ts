import type { Zyx } from '@tme/formats';

/**
 * Voxels that hold no data: the exactly constant regions a reconstruction leaves outside its field of view, or a
 * masked or cropped volume (zero- or mean-filled). A voxel is in one when all its neighbours (3×3×3, inside the
 * volume) hold exactly its value — which noise, even 8-bit noise, never does over 26 neighbours — and the region
 * is grown by one voxel into neighbours of the same value, so its rim is included. Returns undefined when there is
 * none (the usual case), else 1 per no-data voxel.
 */
export function findNoData(data: Float32Array, shape: Zyx): Uint8Array | undefined {
  const [nz, ny, nx] = shape;
  const plane = ny * nx;
  const core = new Uint8Array(data.length);
  let any = false;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = (z * ny + y) * nx + x;
        const v = data[i] as number;
        // The six face neighbours first: almost every data voxel fails at the first one.
        if ((x > 0 && data[i - 1] !== v) || (x < nx - 1 && data[i + 1] !== v) || (y > 0 && data[i - nx] !== v) ||
          (y < ny - 1 && data[i + nx] !== v) || (z > 0 && data[i - plane] !== v) || (z < nz - 1 && data[i + plane] !== v)) continue;
        let flat = true;
        for (let dz = -1; dz <= 1 && flat; dz++) {
          const zz = z + dz;
          if (zz < 0 || zz >= nz) continue;
          for (let dy = -1; dy <= 1 && flat; dy++) {
            const yy = y + dy;
            if (yy < 0 || yy >= ny) continue;
            for (let dx = -1; dx <= 1; dx++) {
              const xx = x + dx;
              if (xx < 0 || xx >= nx) continue;
              if (data[(zz * ny + yy) * nx + xx] !== v) { flat = false; break; }
            }
          }
        }
        if (flat) { core[i] = 1; any = true; }
      }
    }
  }
  if (!any) return undefined;
  const out = Uint8Array.from(core);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = (z * ny + y) * nx + x;
        if (!core[i]) continue;
        const v = data[i] as number;
        for (let dz = -1; dz <= 1; dz++) {
          const zz = z + dz;
          if (zz < 0 || zz >= nz) continue;
          for (let dy = -1; dy <= 1; dy++) {
            const yy = y + dy;
            if (yy < 0 || yy >= ny) continue;
            for (let dx = -1; dx <= 1; dx++) {
              const xx = x + dx;
              if (xx < 0 || xx >= nx) continue;
              const j = (zz * ny + yy) * nx + xx;
              if (data[j] === v) out[j] = 1;
            }
          }
        }
      }
    }
  }
  return out;
}
