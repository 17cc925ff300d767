import type { Matrix3 } from './matrix';
// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;
const F64 = Float64Array;

/**
 * A unit quaternion [w, x, y, z], scalar FIRST (scipy's `as_quat` is scalar last). q and −q are the same
 * rotation; tme's functions return the one with w ≥ 0 (and the first non-zero of x, y, z positive when w = 0).
 */
export type Quaternion = [w: number, x: number, y: number, z: number];

function canonical(q: Quaternion): Quaternion {
  const w = q[0], x = q[1], y = q[2], z = q[3];
  const n = M.sqrt(w * w + x * x + y * y + z * z);
  const lead = w !== 0 ? w : x !== 0 ? x : y !== 0 ? y : z;
  const s = (lead < 0 ? -1 : 1) / n;
  return [w * s, x * s, y * s, z * s];
}

/** The quaternion of a rotation matrix (Shepperd's method: divide by the largest of the four diagonal forms). */
export function matrixToQuaternion(r: Matrix3): Quaternion {
  const m00 = r[0]!, m01 = r[1]!, m02 = r[2]!, m10 = r[3]!, m11 = r[4]!, m12 = r[5]!, m20 = r[6]!, m21 = r[7]!, m22 = r[8]!;
  const tr = m00 + m11 + m22;
  let q: Quaternion;
  if (tr >= m00 && tr >= m11 && tr >= m22) {
    const s = 2 * M.sqrt(1 + tr);
    q = [s / 4, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s];
  } else if (m00 >= m11 && m00 >= m22) {
    const s = 2 * M.sqrt(1 + m00 - m11 - m22);
    q = [(m21 - m12) / s, s / 4, (m01 + m10) / s, (m02 + m20) / s];
  } else if (m11 >= m22) {
    const s = 2 * M.sqrt(1 + m11 - m00 - m22);
    q = [(m02 - m20) / s, (m01 + m10) / s, s / 4, (m12 + m21) / s];
  } else {
    const s = 2 * M.sqrt(1 + m22 - m00 - m11);
    q = [(m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, s / 4];
  }
  return canonical(q);
}

/** The rotation matrix of a quaternion [w, x, y, z] (normalised first, so any non-zero quaternion works). */
export function quaternionToMatrix(q: readonly [number, number, number, number]): Matrix3 {
  const n = M.hypot(q[0], q[1], q[2], q[3]);
  const w = q[0] / n, x = q[1] / n, y = q[2] / n, z = q[3] / n;
  return F64.of(
    1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
    2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
    2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
  );
}

/** Hamilton product a·b (the rotation b first, then a). */
export function multiplyQuaternions(a: readonly number[], b: readonly number[]): Quaternion {
  const aw = a[0]!, ax = a[1]!, ay = a[2]!, az = a[3]!;
  const bw = b[0]!, bx = b[1]!, by = b[2]!, bz = b[3]!;
  return [
    aw * bw - ax * bx - ay * by - az * bz,
    aw * bx + ax * bw + ay * bz - az * by,
    aw * by - ax * bz + ay * bw + az * bx,
    aw * bz + ax * by - ay * bx + az * bw,
  ];
}
