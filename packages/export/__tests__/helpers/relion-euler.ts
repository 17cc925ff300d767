/**
 * Independent reference for tests: RELION's Euler_angles2matrix (src/euler.cpp), written from its published
 * formula (relion-imod.md §2), degrees in, row-major 3×3 out. Not shared with @tme/rotations on purpose.
 */
export function relionEulerAngles2Matrix(rot: number, tilt: number, psi: number): number[] {
  const r = Math.PI / 180;
  const [ca, sa, cb, sb, cg, sg] = [Math.cos(rot * r), Math.sin(rot * r), Math.cos(tilt * r), Math.sin(tilt * r), Math.cos(psi * r), Math.sin(psi * r)];
  const cc = cb * ca;
  const cs = cb * sa;
  const sc = sb * ca;
  const ss = sb * sa;
  return [
    cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb,
    -sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb,
    sc, ss, cb,
  ];
}
