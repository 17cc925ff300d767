import { invalidOption, TmeError } from '@tme/formats';
import type { Matrix3, Vec3 } from './matrix';
import { multiply, orthogonalityError, rotationFromZ, rotationZ } from './matrix';
import { parseSymmetry } from './symmetry';

const M = Math; // module-local alias (see matrix.ts)
const DEG = M.PI / 180;

/** Rotations for a local search: not a covering of SO(3), so no covering angle. */
export interface LocalRotationSet {
  /** 9·count row-major matrices; index 0 is the centre orientation itself. */
  matrices: Float64Array;
  count: number;
  /** Number of template z-axis directions in the cone. */
  directions: number;
  /** In-plane angles per direction. */
  inplaneCount: number;
  method: string;
}

export interface ConeRotationsOptions {
  /** The orientation searched around (e.g. a pick's rotation). */
  center: Matrix3;
  /** Half-angle of the cone of template z-axis directions about the centre's, degrees, 0–180. */
  coneAngle: number;
  /** Spacing of the directions in the cone, degrees (> 0). */
  angularStep: number;
  /** Half-range of the in-plane angle about the centre's, degrees; default coneAngle; ≥ 180 means the full circle. */
  inplaneAngle?: number;
  /** In-plane spacing, degrees; default angularStep. */
  inplaneStep?: number;
}

function positive(name: string, v: unknown, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
    throw invalidOption(name, max === Infinity ? 'a number of degrees > 0' : `a number of degrees in (0, ${max}]`, v);
  }
  return v;
}

/**
 * Directions within `cone` degrees of +z: rings at polar angles k·Δ (Δ = cone / ceil(cone/step), so the last ring
 * lies on the rim), ring k with ceil(360·sin θ / step) equally spaced azimuths starting at 0. Direction 0 is +z.
 */
function coneDirections(cone: number, step: number): Vec3[] {
  const out: Vec3[] = [[0, 0, 1]];
  if (cone === 0) return out;
  const rings = M.ceil(cone / step - 1e-9);
  for (let k = 1; k <= rings; k++) {
    const theta = (k * cone) / rings;
    const n = M.max(1, M.ceil((360 * M.sin(theta * DEG)) / step - 1e-9));
    for (let j = 0; j < n; j++) {
      const phi = (360 * j) / n;
      out.push([M.sin(theta * DEG) * M.cos(phi * DEG), M.sin(theta * DEG) * M.sin(phi * DEG), M.cos(theta * DEG)]);
    }
  }
  return out;
}

/** In-plane angles: full circle j·range/m, or 0, +s, −s, +2s, −2s, … up to ±half (s = half / ceil(half/step)). */
function inplaneAngles(half: number, step: number, range: number): number[] {
  if (half >= range / 2) {
    const m = M.max(1, M.ceil(range / step - 1e-9));
    return Array.from({ length: m }, (_, j) => (range * j) / m);
  }
  if (half === 0) return [0];
  const k = M.ceil(half / step - 1e-9);
  const s = half / k;
  const out = [0];
  for (let i = 1; i <= k; i++) out.push(i * s, -i * s);
  return out;
}

function build(center: Matrix3, dirs: Vec3[], psis: number[]): Float64Array {
  const out = new Float64Array(dirs.length * psis.length * 9);
  const inplane = psis.map((p) => rotationZ(p));
  let o = 0;
  for (const d of dirs) {
    const local = rotationFromZ(d);
    for (const r of inplane) { out.set(multiply(center, multiply(local, r)), o); o += 9; }
  }
  return out;
}

/**
 * Rotations near `center`: R = C·D(d)·Rz(ψ), with d over directions within `coneAngle` of +z (so the template
 * z-axis R·z stays within coneAngle of C·z), D(d) the smallest rotation taking z to d, and ψ the in-plane angle.
 * Order: directions (rings from the centre outwards, then azimuth), in-plane angles inner (0, +s, −s, …).
 */
export function coneRotations(options: ConeRotationsOptions): LocalRotationSet {
  const c = options?.center;
  if (!(c instanceof Float64Array) || c.length !== 9 || !(orthogonalityError(c) < 1e-6)) {
    throw invalidOption('center', 'a rotation matrix (Float64Array of 9)', c);
  }
  const cone = options.coneAngle;
  if (typeof cone !== 'number' || !Number.isFinite(cone) || cone < 0 || cone > 180) {
    throw invalidOption('coneAngle', 'a number of degrees from 0 to 180', cone);
  }
  const step = positive('angularStep', options.angularStep, 180);
  const half = options.inplaneAngle ?? cone;
  if (typeof half !== 'number' || !Number.isFinite(half) || half < 0) throw invalidOption('inplaneAngle', 'a number of degrees ≥ 0', half);
  const inStep = positive('inplaneStep', options.inplaneStep ?? step, 360);
  const dirs = coneDirections(cone, step);
  const psis = inplaneAngles(half, inStep, 360);
  return {
    matrices: build(c, dirs, psis), count: dirs.length * psis.length, directions: dirs.length, inplaneCount: psis.length,
    method: `cone: ${dirs.length} directions within ${cone}° (step ${step}°) × ${psis.length} in-plane angles`
      + (half >= 180 ? ' over 360°' : ` within ±${half}°`),
  };
}

export interface PriorConeOptions {
  /** The prior direction for the template z-axis, xyz (e.g. a membrane normal); any length > 0. */
  axis: Vec3;
  /** Largest angle between the template z-axis and `axis`, degrees, 0–180. */
  coneAngle: number;
  /** Spacing of the directions, degrees. */
  angularStep: number;
  /** In-plane spacing, degrees; default angularStep. The in-plane angle is free (full circle). */
  inplaneStep?: number;
  /** Also allow the opposite direction (normals of unknown polarity); default false. */
  bothDirections?: boolean;
  /** Template symmetry: 'Cn' divides the in-plane circle by n; default 'C1'. */
  symmetry?: string;
}

/**
 * Orientations whose template z-axis lies within `coneAngle` of a prior axis, with the in-plane angle free:
 * coneRotations about the smallest rotation taking z to `axis`, in-plane over 360/n degrees.
 */
export function priorCone(options: PriorConeOptions): LocalRotationSet {
  const a = options?.axis;
  const n = Array.isArray(a) && a.length === 3 && a.every((x) => Number.isFinite(x)) ? M.hypot(a[0], a[1], a[2]) : 0;
  if (!(n > 0)) throw invalidOption('axis', 'a non-zero [x, y, z] direction', a);
  const sym = parseSymmetry(options.symmetry ?? 'C1');
  if (sym.kind !== 'C') throw new TmeError('ERR_TME_UNSUPPORTED', `symmetry ${sym.name} with an orientation prior: only Cn is supported`);
  const step = positive('angularStep', options.angularStep, 180);
  const inStep = positive('inplaneStep', options.inplaneStep ?? step, 360);
  const cone = options.coneAngle;
  if (typeof cone !== 'number' || !Number.isFinite(cone) || cone < 0 || cone > 180) {
    throw invalidOption('coneAngle', 'a number of degrees from 0 to 180', cone);
  }
  const range = 360 / sym.n;
  const psis = inplaneAngles(range / 2, inStep, range);
  const dirs = coneDirections(cone, step);
  const axes: Vec3[] = options.bothDirections ? [a, [-a[0], -a[1], -a[2]]] : [a];
  const parts = axes.map((ax) => build(rotationFromZ(ax), dirs, psis));
  const matrices = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { matrices.set(p, o); o += p.length; }
  return {
    matrices, count: matrices.length / 9, directions: dirs.length * axes.length, inplaneCount: psis.length,
    method: `prior cone: ${dirs.length} directions within ${cone}° of the axis${axes.length > 1 ? ' and of its opposite' : ''}`
      + ` × ${psis.length} in-plane angles over ${range}°`,
  };
}
