// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;
const F64 = Float64Array;

/**
 * 3×3 rotation matrices as tme stores them: row-major `Float64Array(9)` in the xyz frame (x = fastest MRC axis),
 * ACTIVE template→tomogram: `apply(R, p)` is where the template point p (relative to the template centre) lands.
 */
export type Matrix3 = Float64Array;

/** A vector (x, y, z): the only place tme uses xyz order is geometry inside this package and at file formats. */
export type Vec3 = readonly [x: number, y: number, z: number];

const DEG = M.PI / 180;

export function identity(): Matrix3 {
  return F64.of(1, 0, 0, 0, 1, 0, 0, 0, 1);
}

/** Copies 9 numbers (row-major) into a new matrix. */
export function matrixFrom(values: ArrayLike<number>, offset = 0): Matrix3 {
  const m = new F64(9);
  for (let i = 0; i < 9; i++) m[i] = values[offset + i] as number;
  return m;
}

/** A·B (apply B first, then A). */
export function multiply(a: Matrix3, b: Matrix3): Matrix3 {
  const out = new F64(9);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      out[r * 3 + c] = a[r * 3]! * b[c]! + a[r * 3 + 1]! * b[3 + c]! + a[r * 3 + 2]! * b[6 + c]!;
    }
  }
  return out;
}

/** Rᵀ, which for a rotation is its inverse. */
export function transpose(r: Matrix3): Matrix3 {
  return F64.of(r[0]!, r[3]!, r[6]!, r[1]!, r[4]!, r[7]!, r[2]!, r[5]!, r[8]!);
}

/** R·v for a column vector v = (x, y, z). */
export function apply(r: Matrix3, v: Vec3): [number, number, number] {
  return [
    r[0]! * v[0] + r[1]! * v[1] + r[2]! * v[2],
    r[3]! * v[0] + r[4]! * v[1] + r[5]! * v[2],
    r[6]! * v[0] + r[7]! * v[1] + r[8]! * v[2],
  ];
}

/** The rotation angle of R in degrees, in [0, 180]. */
export function rotationAngle(r: Matrix3): number {
  const c = M.min(1, M.max(-1, (r[0]! + r[4]! + r[8]! - 1) / 2));
  // acos loses precision near 0; use the antisymmetric part there.
  const sx = r[7]! - r[5]!, sy = r[2]! - r[6]!, sz = r[3]! - r[1]!;
  const s = M.sqrt(sx * sx + sy * sy + sz * sz) / 2;
  return M.atan2(s, c) / DEG;
}

/** The geodesic distance on SO(3) in degrees: the angle of R1ᵀ·R2, in [0, 180]. */
export function angleBetween(r1: Matrix3, r2: Matrix3): number {
  return rotationAngle(multiply(transpose(r1), r2));
}

/**
 * The same rotation acting on (z, y, x) index vectors: P·R·P with P the axis reversal. Use it to rotate arrays
 * stored in (z, y, x) order.
 */
export function toArrayOrder(r: Matrix3): Matrix3 {
  const out = new F64(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) out[i * 3 + j] = r[(2 - i) * 3 + (2 - j)]!;
  return out;
}

/** The active rotation by `angle` degrees about `axis` (right-handed: counter-clockwise looking down the axis). */
export function axisAngleToMatrix(axis: Vec3, angle: number): Matrix3 {
  const n = M.hypot(axis[0], axis[1], axis[2]);
  const x = axis[0] / n, y = axis[1] / n, z = axis[2] / n;
  const c = M.cos(angle * DEG), s = M.sin(angle * DEG), t = 1 - c;
  return F64.of(
    t * x * x + c, t * x * y - s * z, t * x * z + s * y,
    t * x * y + s * z, t * y * y + c, t * y * z - s * x,
    t * x * z - s * y, t * y * z + s * x, t * z * z + c,
  );
}

/** Active rotations about the coordinate axes, angle in degrees. */
export function rotationX(angle: number): Matrix3 {
  const c = M.cos(angle * DEG), s = M.sin(angle * DEG);
  return F64.of(1, 0, 0, 0, c, -s, 0, s, c);
}
export function rotationY(angle: number): Matrix3 {
  const c = M.cos(angle * DEG), s = M.sin(angle * DEG);
  return F64.of(c, 0, s, 0, 1, 0, -s, 0, c);
}
export function rotationZ(angle: number): Matrix3 {
  const c = M.cos(angle * DEG), s = M.sin(angle * DEG);
  return F64.of(c, -s, 0, s, c, 0, 0, 0, 1);
}

/**
 * The smallest rotation that takes the unit z-axis to the direction `d` (about the axis z × d). For d = −z it is
 * the half turn about y, chosen so the result is deterministic.
 */
export function rotationFromZ(d: Vec3): Matrix3 {
  const n = M.hypot(d[0], d[1], d[2]);
  const x = d[0] / n, y = d[1] / n, z = d[2] / n;
  if (z < -1 + 1e-15) return F64.of(-1, 0, 0, 0, 1, 0, 0, 0, -1);
  // Rodrigues with axis (−y, x, 0)/s and cos = z, written without dividing by s (stable near +z).
  // 1 + z loses digits near −z; there use the equal (x² + y²) / (1 − z).
  const k = z >= 0 ? 1 / (1 + z) : (1 - z) / (x * x + y * y);
  return F64.of(
    1 - x * x * k, -x * y * k, x,
    -x * y * k, 1 - y * y * k, y,
    -x, -y, z,
  );
}

/** Largest |Rᵀ R − I| entry and |det R − 1|: 0 for an exact rotation. */
export function orthogonalityError(r: Matrix3): number {
  const p = multiply(transpose(r), r);
  let e = 0;
  for (let i = 0; i < 9; i++) e = M.max(e, M.abs(p[i]! - (i % 4 === 0 ? 1 : 0)));
  const det = r[0]! * (r[4]! * r[8]! - r[5]! * r[7]!) - r[1]! * (r[3]! * r[8]! - r[5]! * r[6]!)
    + r[2]! * (r[3]! * r[7]! - r[4]! * r[6]!);
  return M.max(e, M.abs(det - 1));
}
