import { matrixToQuaternion, type Quaternion } from './quaternion';
// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;
const F64 = Float64Array;

const DEG = 180 / M.PI;
const MAX_CELLS_PER_AXIS = 40; // 40⁴ cells: 10 MB of Int32 heads

/**
 * Nearest-rotation queries over a rotation set: unit quaternions (both q and −q, since they are the same rotation)
 * bucketed on a 4D grid, searched ring by ring until no closer entry can exist. Exact, not approximate.
 */
export class RotationIndex {
  readonly count: number;
  private readonly quats: Float64Array;
  private readonly dims: number;
  private readonly cell: number;
  private readonly heads: Int32Array;
  private readonly next: Int32Array;

  /**
   * @param matrices 9·count numbers, row-major rotation matrices.
   * @param typicalAngle the expected nearest-neighbour angle in degrees (sets the cell size; any value is correct).
   */
  constructor(matrices: Float64Array, typicalAngle: number) {
    this.count = M.floor(matrices.length / 9);
    this.quats = new F64(this.count * 4);
    for (let i = 0; i < this.count; i++) this.quats.set(matrixToQuaternion(matrices.subarray(i * 9, i * 9 + 9)), i * 4);
    const chord = 2 * M.sin(M.min(M.max(typicalAngle, 0.01), 180) / DEG / 4);
    this.dims = M.max(1, M.min(MAX_CELLS_PER_AXIS, M.ceil(2 / chord)));
    this.cell = 2 / this.dims;
    this.heads = new Int32Array(this.dims ** 4).fill(-1);
    this.next = new Int32Array(this.count * 2);
    for (let e = 0; e < this.count * 2; e++) {
      const s = e & 1 ? -1 : 1, o = (e >> 1) * 4;
      const c = this.cellOf(s * this.quats[o]!, s * this.quats[o + 1]!, s * this.quats[o + 2]!, s * this.quats[o + 3]!);
      this.next[e] = this.heads[c]!;
      this.heads[c] = e;
    }
  }

  private coord(x: number): number {
    return M.min(this.dims - 1, M.max(0, M.floor((x + 1) / this.cell)));
  }

  private cellOf(w: number, x: number, y: number, z: number): number {
    const d = this.dims;
    return ((this.coord(w) * d + this.coord(x)) * d + this.coord(y)) * d + this.coord(z);
  }

  /** The index of the nearest rotation and the angle to it (degrees); `exclude` skips one member (its own index). */
  nearest(q: Quaternion, exclude = -1): { index: number; angle: number } {
    const w = q[0], x = q[1], y = q[2], z = q[3]; // no destructuring: test transpilers make it slow in hot loops
    const n = M.sqrt(w * w + x * x + y * y + z * z);
    const qw = w / n, qx = x / n, qy = y / n, qz = z / n;
    const d = this.dims;
    const c0 = this.coord(qw), c1 = this.coord(qx), c2 = this.coord(qy), c3 = this.coord(qz);
    let bestDot = -2, best = -1, bestSign = 1;
    for (let k = 0; k <= d; k++) {
      for (let a = M.max(0, c0 - k); a <= M.min(d - 1, c0 + k); a++) {
        const da = M.abs(a - c0);
        for (let b = M.max(0, c1 - k); b <= M.min(d - 1, c1 + k); b++) {
          const db = M.max(da, M.abs(b - c1));
          for (let c = M.max(0, c2 - k); c <= M.min(d - 1, c2 + k); c++) {
            const dc = M.max(db, M.abs(c - c2));
            for (let e3 = M.max(0, c3 - k); e3 <= M.min(d - 1, c3 + k); e3++) {
              if (M.max(dc, M.abs(e3 - c3)) !== k) continue; // only the shell at distance k
              for (let e = this.heads[((a * d + b) * d + c) * d + e3]!; e >= 0; e = this.next[e]!) {
                if (e >> 1 === exclude) continue;
                const o = (e >> 1) * 4, s = e & 1 ? -1 : 1;
                const dot = s * (qw * this.quats[o]! + qx * this.quats[o + 1]! + qy * this.quats[o + 2]! + qz * this.quats[o + 3]!);
                if (dot > bestDot || (dot === bestDot && (e >> 1) < best)) { bestDot = dot; best = e >> 1; bestSign = s; }
              }
            }
          }
        }
      }
      // Every entry within chord k·cell of q lies in shells ≤ k, so a best chord ≤ k·cell is final.
      if (best >= 0 && M.sqrt(M.max(0, 2 - 2 * bestDot)) <= k * this.cell) break;
    }
    if (best < 0) return { index: -1, angle: Number.NaN };
    // The angle from the chord |q − s·m| directly: exact to rounding even for (near-)coincident rotations.
    const o = best * 4;
    const chord = M.hypot(qw - bestSign * this.quats[o]!, qx - bestSign * this.quats[o + 1]!, qy - bestSign * this.quats[o + 2]!, qz - bestSign * this.quats[o + 3]!);
    return { index: best, angle: 4 * M.asin(M.min(1, chord / 2)) * DEG };
  }
}
