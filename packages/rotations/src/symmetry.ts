import { invalidOption } from '@tme/formats';
import type { Matrix3 } from './matrix';
import { axisAngleToMatrix, multiply, rotationX, rotationZ } from './matrix';
import { matrixToQuaternion } from './quaternion';
// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;

/**
 * Point-group symmetry of a template, in RELION's standard orientations (checked against
 * `relion_refine --print_symmetry_ops`):
 * - Cn: n-fold axis along z.
 * - Dn: n-fold along z, a 2-fold along x.
 * - T: 3-fold along z, a 2-fold in the yz plane along (0, √(2/3), √(1/3)).
 * - O: 4-folds along x, y and z.
 * - I: RELION's default (I2, "Crowther 222"): 2-folds along x, y, z; 5-folds along (±1, 0, φ), (0, φ, ±1), (φ, ±1, 0).
 * A template with symmetry G looks the same after R·g for any g in G, so orientations R and R·g are equivalent.
 */
export type SymmetryName = string;

const PHI = (1 + M.sqrt(5)) / 2;

interface ParsedSymmetry { kind: 'C' | 'D' | 'T' | 'O' | 'I'; n: number; name: string }

/** 'c5' → { kind: 'C', n: 5, name: 'C5' }; throws ERR_TME_INVALID_OPTION for anything else. */
export function parseSymmetry(name: string, option = 'symmetry'): ParsedSymmetry {
  const m = /^\s*([CcDdTtOoIi])(\d*)\s*$/.exec(String(name));
  const kind = m?.[1]?.toUpperCase() as ParsedSymmetry['kind'] | undefined;
  const digits = m?.[2] ?? '';
  if (kind === undefined) throw invalidOption(option, "'C1', 'Cn', 'Dn', 'T', 'O' or 'I'", name);
  if (kind === 'C' || kind === 'D') {
    const n = Number(digits);
    if (digits === '' || !Number.isInteger(n) || n < 1 || n > 360) {
      throw invalidOption(option, `'${kind}n' with n an integer from 1 to 360`, name);
    }
    return { kind, n, name: `${kind}${n}` };
  }
  if (digits !== '') throw invalidOption(option, "'C1', 'Cn', 'Dn', 'T', 'O' or 'I'", name);
  return { kind, n: 0, name: kind };
}

function close(generators: Matrix3[]): Matrix3[] {
  const out: Matrix3[] = [Float64Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1)];
  const keys = new Set<string>([key(out[0]!)]);
  for (let i = 0; i < out.length; i++) {
    for (const g of generators) {
      const p = multiply(out[i]!, g);
      const k = key(p);
      if (!keys.has(k)) { keys.add(k); out.push(p); }
    }
    if (out.length > 1000) break; // cannot happen for the groups above
  }
  return out;
}

/** A rounding key of the rotation: q and −q (the same rotation) get the same key, also when w is ~0. */
function key(r: Matrix3): string {
  const q = matrixToQuaternion(r);
  const lead = q.find((x) => M.abs(x) > 1e-6) ?? 1;
  return q.map((x) => M.round((lead < 0 ? -x : x) * 1e6) + 0).join(',');
}

/** The group's rotations (identity first). Order: Cn n, Dn 2n, T 12, O 24, I 60. */
export function symmetryGroup(name: SymmetryName): Matrix3[] {
  const s = parseSymmetry(name);
  switch (s.kind) {
    case 'C': return Array.from({ length: s.n }, (_, k) => rotationZ((360 * k) / s.n));
    case 'D': {
      const c = Array.from({ length: s.n }, (_, k) => rotationZ((360 * k) / s.n));
      return [...c, ...c.map((r) => multiply(r, rotationX(180)))];
    }
    case 'T': return close([rotationZ(120), axisAngleToMatrix([0, M.sqrt(2 / 3), M.sqrt(1 / 3)], 180)]);
    case 'O': return close([rotationZ(90), rotationX(90)]);
    case 'I': return close([rotationZ(180), rotationX(180), axisAngleToMatrix([1, 0, PHI], 72)]);
  }
}
