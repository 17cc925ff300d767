// A direct orientation scorer for tests: normalised cross-correlation of the rotated template box with the volume
// patch centred at the pick (the engine's scorer plays this role in tme). Not part of the package.
import type { Zyx } from '@tme/formats';

const { floor } = Math;

/** t_R(p) = t(c + R⁻¹(p − c)) by trilinear interpolation, 0 outside; c = floor(shape/2); R in the xyz frame. */
export function rotateBox(t: Float32Array, shape: Zyx, r: Float64Array, out = new Float32Array(t.length)): Float32Array {
  const [nz, ny, nx] = shape;
  const cz = floor(nz / 2), cy = floor(ny / 2), cx = floor(nx / 2);
  // R⁻¹ = Rᵀ: source (x, y, z) = Rᵀ·(p − c) + c
  const r00 = r[0]!, r01 = r[1]!, r02 = r[2]!, r10 = r[3]!, r11 = r[4]!, r12 = r[5]!, r20 = r[6]!, r21 = r[7]!, r22 = r[8]!;
  let o = 0;
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    const px = x - cx, py = y - cy, pz = z - cz;
    const sx = r00 * px + r10 * py + r20 * pz + cx;
    const sy = r01 * px + r11 * py + r21 * pz + cy;
    const sz = r02 * px + r12 * py + r22 * pz + cz;
    const x0 = floor(sx), y0 = floor(sy), z0 = floor(sz);
    const fx = sx - x0, fy = sy - y0, fz = sz - z0;
    let v = 0;
    for (let dz = 0; dz < 2; dz++) {
      const zz = z0 + dz; if (zz < 0 || zz >= nz) continue;
      const wz = dz ? fz : 1 - fz;
      for (let dy = 0; dy < 2; dy++) {
        const yy = y0 + dy; if (yy < 0 || yy >= ny) continue;
        const wy = dy ? fy : 1 - fy;
        for (let dx = 0; dx < 2; dx++) {
          const xx = x0 + dx; if (xx < 0 || xx >= nx) continue;
          v += wz * wy * (dx ? fx : 1 - fx) * t[(zz * ny + yy) * nx + xx]!;
        }
      }
    }
    out[o++] = v;
  }
  return out;
}

/** NCC of each rotated template with the volume patch whose box centre sits at `position`. */
export function nccScorer(volume: Float32Array, volumeShape: Zyx, template: Float32Array, templateShape: Zyx) {
  const [tz, ty, tx] = templateShape;
  const [, vy, vx] = volumeShape;
  const buf = new Float32Array(template.length);
  return (position: Zyx, rotations: Float64Array): Float32Array => {
    const n = rotations.length / 9;
    const out = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      rotateBox(template, templateShape, rotations.subarray(9 * k, 9 * k + 9), buf);
      let st = 0, sv = 0, stt = 0, svv = 0, stv = 0, m = 0;
      for (let z = 0; z < tz; z++) for (let y = 0; y < ty; y++) for (let x = 0; x < tx; x++) {
        const t = buf[m++]!;
        const v = volume[((position[0] + z - floor(tz / 2)) * vy + position[1] + y - floor(ty / 2)) * vx + position[2] + x - floor(tx / 2)]!;
        st += t; sv += v; stt += t * t; svv += v * v; stv += t * v;
      }
      const cov = stv / m - (st / m) * (sv / m);
      out[k] = cov / Math.sqrt((stt / m - (st / m) ** 2) * (svv / m - (sv / m) ** 2));
    }
    return out;
  };
}
