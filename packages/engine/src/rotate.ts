import type { Zyx } from '@tme/formats';
import type { Interpolation } from './backend';

/**
 * A rotation matrix given in the xyz frame (row-major, acting on (x, y, z) column vectors) re-expressed for (z, y, x)
 * array indices: P·R·P with P the axis reversal, i.e. entry (i, j) is R[2 − i][2 − j].
 */
export function toArrayOrder(rotations: Float64Array, index = 0): Float64Array {
  const out = new Float64Array(9);
  const o = 9 * index;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) out[3 * i + j] = rotations[o + 3 * (2 - i) + (2 - j)] as number;
  }
  return out;
}

/** The box centre of the contract: floor(shape / 2) per axis. */
export function boxCentre(shape: Zyx): Zyx {
  return [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2), Math.floor(shape[2] / 2)];
}

// Keys cubic convolution (a = −0.5, Catmull-Rom): interpolates, needs no prefilter, 4 taps per axis.
function cubicWeights(t: number, w: Float64Array): void {
  const t2 = t * t;
  const t3 = t2 * t;
  w[0] = -0.5 * t3 + t2 - 0.5 * t;
  w[1] = 1.5 * t3 - 2.5 * t2 + 1;
  w[2] = -1.5 * t3 + 2 * t2 + 0.5 * t;
  w[3] = 0.5 * t3 - 0.5 * t2;
}

/**
 * The template rotated by R (xyz frame, active) about its box centre c = floor(shape/2):
 * out(p) = in(c + R⁻¹(p − c)), interpolated, 0 outside the box. Float64, for the reference path.
 */
export function rotateBox(data: ArrayLike<number>, shape: Zyx, rotation: Float64Array, interpolation: Interpolation): Float64Array {
  const [nz, ny, nx] = shape;
  const [cz, cy, cx] = boxCentre(shape);
  const r = toArrayOrder(rotation);
  const out = new Float64Array(nz * ny * nx);
  const at = (z: number, y: number, x: number): number =>
    z < 0 || y < 0 || x < 0 || z >= nz || y >= ny || x >= nx ? 0 : (data[(z * ny + y) * nx + x] as number);
  const wz = new Float64Array(4);
  const wy = new Float64Array(4);
  const wx = new Float64Array(4);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const dz = z - cz;
        const dy = y - cy;
        const dx = x - cx;
        // R⁻¹ = Rᵀ: column-wise products.
        const sz = cz + (r[0] as number) * dz + (r[3] as number) * dy + (r[6] as number) * dx;
        const sy = cy + (r[1] as number) * dz + (r[4] as number) * dy + (r[7] as number) * dx;
        const sx = cx + (r[2] as number) * dz + (r[5] as number) * dy + (r[8] as number) * dx;
        const iz = Math.floor(sz);
        const iy = Math.floor(sy);
        const ix = Math.floor(sx);
        const fz = sz - iz;
        const fy = sy - iy;
        const fx = sx - ix;
        let v = 0;
        if (interpolation === 'linear') {
          for (let a = 0; a < 2; a++) {
            const gz = a === 0 ? 1 - fz : fz;
            if (gz === 0) continue;
            for (let b = 0; b < 2; b++) {
              const gy = b === 0 ? 1 - fy : fy;
              if (gy === 0) continue;
              for (let c = 0; c < 2; c++) {
                const gx = c === 0 ? 1 - fx : fx;
                if (gx === 0) continue;
                v += gz * gy * gx * at(iz + a, iy + b, ix + c);
              }
            }
          }
        } else {
          cubicWeights(fz, wz);
          cubicWeights(fy, wy);
          cubicWeights(fx, wx);
          for (let a = 0; a < 4; a++) {
            for (let b = 0; b < 4; b++) {
              for (let c = 0; c < 4; c++) {
                v += (wz[a] as number) * (wy[b] as number) * (wx[c] as number) * at(iz + a - 1, iy + b - 1, ix + c - 1);
              }
            }
          }
        }
        out[(z * ny + y) * nx + x] = v;
      }
    }
  }
  return out;
}
