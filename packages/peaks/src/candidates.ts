import type { FaceThresholds } from './faces';
import type { Region } from './region';

/** Candidate voxels, growable typed arrays: flat voxel index and score. */
export interface Candidates {
  index: Uint32Array;
  score: Float32Array;
  count: number;
}

/**
 * One pass over the region: every scored voxel with lower ≤ score ≤ upper that is (when `localMaxima`) a local
 * maximum of its 26 neighbours (no neighbour strictly higher; neighbours outside the region still count, so the
 * shoulder of an excluded or out-of-region peak is not a candidate). With `faces`, the lower bound of each voxel
 * is its distance's threshold instead. Memory grows with the candidates only.
 */
export function collectCandidates(
  scores: Float32Array,
  rot: Int32Array | Float32Array,
  region: Region,
  lower: number,
  upper: number,
  localMaxima: boolean,
  faces?: FaceThresholds,
): Candidates {
  const [nz, ny, nx] = region.shape;
  const [z0, y0, x0] = region.start;
  const [z1, y1, x1] = region.end;
  const mask = region.mask;
  const sy = nx;
  const sz = nx * ny;
  let cap = 1 << 16;
  let index = new Uint32Array(cap);
  let score = new Float32Array(cap);
  let count = 0;
  const offsets = neighbourOffsets(ny, nx);
  for (let z = z0; z < z1; z++) {
    const zLo = z > 0 ? -1 : 0;
    const zHi = z < nz - 1 ? 1 : 0;
    const zIn = zLo === -1 && zHi === 1;
    for (let y = y0; y < y1; y++) {
      const yLo = y > 0 ? -1 : 0;
      const yHi = y < ny - 1 ? 1 : 0;
      const yIn = yLo === -1 && yHi === 1;
      const row = (z * ny + y) * nx;
      for (let x = x0; x < x1; x++) {
        const i = row + x;
        const s = scores[i]!;
        if (!(s >= (faces ? faces.thresholds[faces.distance[i]!]! : lower)) || s > upper) continue; // also drops NaN
        if (localMaxima) {
          if (zIn && yIn && x > 0 && x < nx - 1) {
            // interior: 26 fixed offsets, face neighbours first (most voxels fail there)
            let k = 0;
            for (; k < 26; k++) if (scores[i + offsets[k]!]! > s) break;
            if (k < 26) continue;
          } else if (!isBoundaryMax(scores, i, s, x, nx, zLo, zHi, yLo, yHi, sy, sz)) {
            continue;
          }
        }
        if (!(rot[i]! >= 0)) continue;
        if (mask !== undefined && !(mask[i]! >= 0.5)) continue;
        if (count === cap) {
          cap *= 2;
          const ni = new Uint32Array(cap);
          ni.set(index);
          index = ni;
          const ns = new Float32Array(cap);
          ns.set(score);
          score = ns;
        }
        index[count] = i;
        score[count] = s;
        count++;
      }
    }
  }
  return { index, score, count };
}

/** Flat-index offsets of the 26 neighbours, the 6 face neighbours first. */
function neighbourOffsets(ny: number, nx: number): Int32Array {
  const out: number[] = [-1, 1, -nx, nx, -nx * ny, nx * ny];
  for (let dz = -1; dz <= 1; dz++) {
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const o = (dz * ny + dy) * nx + dx;
        if (o !== 0 && !out.includes(o)) out.push(o);
      }
    }
  }
  return Int32Array.from(out);
}

/** The local-maximum test for a voxel on a face of the volume: only the neighbours that exist. */
function isBoundaryMax(
  scores: Float32Array, i: number, s: number, x: number, nx: number,
  zLo: number, zHi: number, yLo: number, yHi: number, sy: number, sz: number,
): boolean {
  const xLo = x > 0 ? -1 : 0;
  const xHi = x < nx - 1 ? 1 : 0;
  for (let dz = zLo; dz <= zHi; dz++) {
    for (let dy = yLo; dy <= yHi; dy++) {
      const base = i + dz * sz + dy * sy;
      for (let dx = xLo; dx <= xHi; dx++) if (scores[base + dx]! > s) return false;
    }
  }
  return true;
}
