/**
 * Euler angles ⇄ tme's rotation matrices. This file is THE statement of tme's Euler conventions.
 *
 * R is the active template→tomogram rotation in the xyz frame (see matrix.ts). Rz, Ry, Rx below are active,
 * right-handed (counter-clockwise) rotations of column vectors; angles in degrees.
 *
 * - RELION (rot, tilt, psi), used in angles.tsv and STAR files: RELION's `Euler_angles2matrix(rot, tilt, psi)`
 *   equals R, i.e. R = (Rz(rot)·Ry(tilt)·Rz(psi))ᵀ = Rz(−psi)·Ry(−tilt)·Rz(−rot).
 *   scipy: `Rotation.from_euler('ZYZ', [rot, tilt, psi], degrees=True).as_matrix().T == R`.
 *   Output: tilt ∈ [0, 180], rot, psi ∈ (−180, 180]; at tilt 0 or 180 rot = 0 (as RELION's Euler_matrix2angles).
 * - pyTME (euler_x, euler_y, euler_z) of its orientations TSV: R = Rz(ez)·Ry(ey)·Rz(ex),
 *   scipy: `Rotation.from_euler('zyz', [ex, ey, ez], degrees=True).as_matrix() == R` (lower case = extrinsic).
 *   Output as scipy's `as_euler('zyz')`: ey ∈ [0, 180], ex, ez ∈ (−180, 180]; at ey 0 or 180 ez = 0.
 *   RELION = (180 − ex, ey, 180 − ez) mod 360.
 * - Dynamo (tdrot, tilt, narot) of .tbl columns 7–9: `dynamo_euler2matrix([tdrot, tilt, narot])` equals R,
 *   R = Rz(narot)·Rx(tilt)·Rz(tdrot), scipy: `from_euler('zxz', [tdrot, tilt, narot], degrees=True)`.
 *   (Dynamo's matrix rotates the template onto the particle, the same sense as RELION's matrix.)
 *   Output: tilt ∈ [0, 180], tdrot, narot ∈ (−180, 180]; at tilt 0 or 180 narot = 0.
 * - STOPGAP (phi, psi, the) of a motive list: `sg_euler2matrix(phi, psi, the)` = Rz(psi)·Rx(the)·Rz(phi) equals R.
 *   STOPGAP rotates the reference by this matrix onto the particle (`sg_rotate_vol(ref, [phi, psi, the])` in its
 *   alignment; tom_rotatec samples out(p) = in(Mᵀp), an active rotation by M), the sense of R. Same product as
 *   Dynamo's with phi = tdrot, the = tilt, psi = narot, so the same ranges; at the = 0 or 180 psi = 0.
 */
import type { Matrix3 } from './matrix';
import { rotationY, rotationZ, rotationX, multiply, transpose } from './matrix';
// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;

export type EulerTriple = [number, number, number];

const DEG = 180 / M.PI;

/** An angle in degrees mapped to (−180, 180] (and −0 to 0). */
export function wrapDegrees(angle: number): number {
  let y = angle % 360;
  if (y > 180) y -= 360;
  else if (y <= -180) y += 360;
  return y === 0 ? 0 : y;
}

/** Below this sin(tilt) the first and third axes coincide (gimbal lock) and one angle is set to 0. */
const GIMBAL_SIN = 1e-12;

/**
 * Angles (a, b, c) in degrees with M = Rz(a)·Ry(b)·Rz(c), b ∈ [0, 180]. In gimbal lock a = 0.
 * Precision: a comes from the third column (scaled by sin b), and c from the well-conditioned sum (b ≤ 90) or
 * difference (b > 90) of a and c, so the rebuilt matrix is exact to rounding even very near gimbal lock.
 */
function decomposeZyz(m: Matrix3): EulerTriple {
  const m00 = m[0]!, m01 = m[1]!, m02 = m[2]!, m10 = m[3]!, m11 = m[4]!, m12 = m[5]!, m20 = m[6]!, m21 = m[7]!, m22 = m[8]!;
  const sb = M.sqrt((m02 * m02 + m12 * m12 + m20 * m20 + m21 * m21) / 2);
  const b = M.atan2(sb, m22);
  const sum = M.atan2(m10 - m01, m00 + m11); // a + c, well defined unless b = 180
  const diff = M.atan2(-m10 - m01, m11 - m00); // a − c, well defined unless b = 0
  if (sb <= GIMBAL_SIN) {
    return m22 > 0 ? [0, 0, wrapDegrees(sum * DEG)] : [0, 180, wrapDegrees(-diff * DEG)];
  }
  const a = M.atan2(m12, m02);
  const c = m22 >= 0 ? sum - a : a - diff;
  return [wrapDegrees(a * DEG), b * DEG, wrapDegrees(c * DEG)];
}

function zyz(a: number, b: number, c: number): Matrix3 {
  return multiply(rotationZ(a), multiply(rotationY(b), rotationZ(c)));
}

/** RELION's Euler_angles2matrix(rot, tilt, psi): the matrix R of an active template→tomogram rotation. */
export function relionEulerToMatrix(rot: number, tilt: number, psi: number): Matrix3 {
  return transpose(zyz(rot, tilt, psi));
}

/** RELION angles [rot, tilt, psi] (degrees) of R; see the ranges at the top of this file. */
export function matrixToRelionEuler(r: Matrix3): EulerTriple {
  return decomposeZyz(transpose(r));
}

/** pyTME's (euler_x, euler_y, euler_z): scipy from_euler('zyz', [ex, ey, ez], degrees=True).as_matrix(). */
export function pytmeEulerToMatrix(ex: number, ey: number, ez: number): Matrix3 {
  return zyz(ez, ey, ex);
}

/** pyTME angles [ex, ey, ez] (degrees) of R, as scipy's as_euler('zyz') gives them. */
export function matrixToPytmeEuler(r: Matrix3): EulerTriple {
  const [a, b, c] = decomposeZyz(r);
  return [c, b, a];
}

/** Dynamo's dynamo_euler2matrix([tdrot, tilt, narot]) = Rz(narot)·Rx(tilt)·Rz(tdrot). */
export function dynamoEulerToMatrix(tdrot: number, tilt: number, narot: number): Matrix3 {
  return multiply(rotationZ(narot), multiply(rotationX(tilt), rotationZ(tdrot)));
}

/** Dynamo angles [tdrot, tilt, narot] (degrees) of R. */
export function matrixToDynamoEuler(r: Matrix3): EulerTriple {
  // Rx(t) = Rz(−90)·Ry(t)·Rz(90), so R = Rz(narot − 90)·Ry(tilt)·Rz(tdrot + 90).
  const [a, b, c] = decomposeZyz(r);
  if (b === 0 || b === 180) {
    // Gimbal lock: only narot ± tdrot is defined; put it all in tdrot (narot = 0).
    const total = b < 90 ? a + c : c - a; // b = 0: a + c = narot + tdrot; b = 180: c − a = tdrot − narot + 180
    return b < 90 ? [wrapDegrees(total), 0, 0] : [wrapDegrees(total - 180), 180, 0];
  }
  return [wrapDegrees(c - 90), b, wrapDegrees(a + 90)];
}

/** STOPGAP's sg_euler2matrix(phi, psi, the) = Rz(psi)·Rx(the)·Rz(phi) (arguments in STOPGAP's column order). */
export function stopgapEulerToMatrix(phi: number, psi: number, the: number): Matrix3 {
  return dynamoEulerToMatrix(phi, the, psi);
}

/** STOPGAP angles [phi, psi, the] (degrees, its motive-list column order) of R. */
export function matrixToStopgapEuler(r: Matrix3): EulerTriple {
  const [phi, the, psi] = matrixToDynamoEuler(r);
  return [phi, psi, the];
}

/** RELION angles from pyTME angles: (180 − ex, ey, 180 − ez) mod 360 (same rotation). */
export function pytmeToRelionEuler(ex: number, ey: number, ez: number): EulerTriple {
  return [wrapDegrees(180 - ex), ey, wrapDegrees(180 - ez)];
}
