import type { Zyx } from '@tme/formats';

/**
 * The discrete 6-neighbour Laplacian Σ_neighbours f − 6 f. `edge` says what lies beyond the volume: 'nearest'
 * repeats the edge voxel (for the target: no artificial step at its border), 'zero' is 0 (for the template, which
 * is 0 outside its box by definition).
 */
export function laplacian(data: Float32Array, shape: Zyx, edge: 'nearest' | 'zero'): Float32Array {
  const [nz, ny, nx] = shape;
  const out = new Float32Array(data.length);
  const at = (z: number, y: number, x: number): number => {
    if (z < 0 || y < 0 || x < 0 || z >= nz || y >= ny || x >= nx) {
      if (edge === 'zero') return 0;
      z = Math.min(nz - 1, Math.max(0, z));
      y = Math.min(ny - 1, Math.max(0, y));
      x = Math.min(nx - 1, Math.max(0, x));
    }
    return data[(z * ny + y) * nx + x] as number;
  };
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const centre = data[(z * ny + y) * nx + x] as number;
        out[(z * ny + y) * nx + x] =
          at(z - 1, y, x) + at(z + 1, y, x) + at(z, y - 1, x) + at(z, y + 1, x) + at(z, y, x - 1) + at(z, y, x + 1) - 6 * centre;
      }
    }
  }
  return out;
}

/** (v − mean) / std over the whole volume (cam); a flat volume becomes 0. */
export function standardise(data: Float32Array): Float32Array {
  let mean = 0;
  for (let i = 0; i < data.length; i++) mean += data[i] as number;
  mean /= data.length;
  let v = 0;
  for (let i = 0; i < data.length; i++) v += ((data[i] as number) - mean) ** 2;
  const sd = Math.sqrt(v / data.length);
  const out = new Float32Array(data.length);
  if (sd > 0) for (let i = 0; i < data.length; i++) out[i] = ((data[i] as number) - mean) / sd;
  return out;
}
