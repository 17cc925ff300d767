import { invalidOption } from '@tme/formats';
import { measureCovering } from './covering';
import type { Matrix3 } from './matrix';
import { rotationFromZ } from './matrix';
import { matrixToQuaternion } from './quaternion';
import { icosahedralCoveringBound } from './sphere-grid';
import { classOneSet, smallGeodesicSets, type SphereSet } from './sphere-sets';
import { parseSymmetry, symmetryGroup } from './symmetry';
// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;
const F64 = Float64Array;

const DEG = M.PI / 180;

/** A set of rotations to search. */
export interface RotationSet {
  /** 9·count numbers: row-major active template→tomogram matrices (xyz frame). Index 0 is the identity. */
  matrices: Float64Array;
  count: number;
  /** The requested step (degrees): the set is built so that every orientation is within this angle of a member. */
  angularStep: number;
  /** MEASURED covering radius (degrees): the largest probe-to-nearest-member angle found (see measureCovering). */
  coveringAngle: number;
  /** PROVEN upper bound on the covering radius (degrees), from the construction. */
  coveringBound: number;
  /** Normalised symmetry name ('C1', 'C5', 'D7', 'T', 'O', 'I'); the set covers SO(3) after multiplying by the group. */
  symmetry: string;
  /** How the set was built, in words, with its parameters. */
  method: string;
}

export interface SampleRotationsOptions {
  /** Largest allowed angle (degrees) from any orientation to the nearest sampled rotation; 2 to 180 (2°: ~10⁶ rotations). */
  angularStep: number;
  /** Template symmetry; default 'C1'. Only an asymmetric unit is sampled. */
  symmetry?: string;
  /** Measure the covering radius with random probes (adds ~10–30% to the time); default true. */
  measure?: boolean;
}

/** The parameters of a Hopf-type grid: a set of directions × M in-plane angles over 360/fold degrees. */
interface HopfPlan { sphere: SphereSet; inplane: number; fold: number; sphereRadius: number; inplaneStep: number; bound: number }

/**
 * Covering bound of directions × in-plane angles. A rotation R with z-axis d is reached from the member with the
 * nearest direction d_i (angle α ≤ ρ) and nearest in-plane angle (δ ≤ Δψ/2): R = Rot(d_i, δ)·M with M about an axis
 * ⊥ d_i by α, so cos(θ/2) = cos(α/2)·cos(δ/2) ≥ cos(ρ/2)·cos(Δψ/4).
 */
function hopfBound(sphereRadius: number, inplaneStep: number): number {
  const c = M.cos((sphereRadius * DEG) / 2) * M.cos((inplaneStep * DEG) / 4);
  return (2 * M.acos(M.min(1, c))) / DEG;
}

/**
 * The grid with the fewest rotations whose bound is ≤ step, over the in-plane count M and the direction sets:
 * class-I icosahedral grids of any frequency, and the small class (a, b) grids with exact covering radii.
 * `weight(ρ)` is the fraction of directions kept (1, or about half for dihedral groups).
 */
function planHopf(step: number, fold: number, weight: (rho: number) => number): HopfPlan {
  let best: HopfPlan | undefined;
  let bestCount = Infinity;
  const range = 360 / fold;
  const small = smallGeodesicSets();
  for (let m = 1; m <= 4096; m++) {
    const inplaneStep = range / m;
    const c = M.cos((step * DEG) / 2) / M.cos((M.min(inplaneStep, 359.999) * DEG) / 4);
    if (c >= 1) continue; // in-plane spacing alone exceeds the step
    const rhoNeeded = (2 * M.acos(c)) / DEG;
    // No set of directions covers with thickness below ~1.2 (hexagonal optimum 1.209): skip hopeless M.
    const lowest = (2 * 1.15) / (1 - M.cos(rhoNeeded * DEG)) * m * weight(rhoNeeded);
    if (lowest >= bestCount) {
      if (rhoNeeded > step * 0.999 && m > 8) break;
      continue;
    }
    let n = M.max(1, M.floor(36 / rhoNeeded));
    while (icosahedralCoveringBound(n) > rhoNeeded) n++;
    while (n > 1 && icosahedralCoveringBound(n - 1) <= rhoNeeded) n--;
    let sphere = classOneSet(n);
    // Sets too small to cover at rhoNeeded even with thickness 1.2 are skipped without building their hull.
    const minSize = (2 * 1.2) / (1 - M.cos(rhoNeeded * DEG));
    for (const s of small) {
      if (s.size >= sphere.size || s.size * m * weight(rhoNeeded) >= bestCount) break;
      if (s.size < minSize) continue;
      if (s.radius <= rhoNeeded) { sphere = s; break; }
    }
    const rho = sphere.radius;
    const count = sphere.size * weight(rho) * m;
    if (count < bestCount && hopfBound(rho, inplaneStep) <= step) { // the explicit check guards against rounding
      bestCount = count;
      best = { sphere, inplane: m, fold, sphereRadius: rho, inplaneStep, bound: hopfBound(rho, inplaneStep) };
    }
    if (rhoNeeded > step * 0.999 && m > 8) break; // finer in-plane steps cannot save directions any more
  }
  if (best === undefined) throw new Error('no plan'); // unreachable for 2 ≤ step ≤ 180
  return best;
}

function buildHopf(plan: HopfPlan, keepDirection: (z: number) => boolean): Float64Array {
  const dirs = plan.sphere.directions();
  const cos = Array.from({ length: plan.inplane }, (_, j) => M.cos(j * plan.inplaneStep * DEG));
  const sin = Array.from({ length: plan.inplane }, (_, j) => M.sin(j * plan.inplaneStep * DEG));
  const kept: number[] = [];
  for (let i = 0; i < dirs.length / 3; i++) if (keepDirection(dirs[i * 3 + 2]!)) kept.push(i);
  const out = new F64(kept.length * plan.inplane * 9);
  let o = 0;
  for (const i of kept) {
    const d = rotationFromZ([dirs[i * 3]!, dirs[i * 3 + 1]!, dirs[i * 3 + 2]!]);
    for (let j = 0; j < plan.inplane; j++) {
      // D·Rz(ψ): the first two columns turn by ψ, the third stays.
      const c = cos[j]!, s = sin[j]!;
      for (let r = 0; r < 3; r++) {
        const a = d[r * 3]!, b = d[r * 3 + 1]!;
        out[o + r * 3] = a * c + b * s + 0; // + 0: no −0 in the output
        out[o + r * 3 + 1] = -a * s + b * c + 0;
        out[o + r * 3 + 2] = d[r * 3 + 2]! + 0;
      }
      o += 9;
    }
  }
  return out;
}

/**
 * Keeps the members that lie within `margin` (rotation angle, degrees) of the Dirichlet domain of the identity
 * under right multiplication by the group ({R : angle(R) ≤ angle(R·g) for all g}). If S covers SO(3) within
 * `margin`, the kept S' satisfies: S'·G covers SO(3) within `margin`. Distances to the domain are bounded from
 * below by the distance to each of its bounding half-spaces in quaternion space, so nothing needed is dropped.
 */
function keepNearFundamentalDomain(matrices: Float64Array, group: readonly Matrix3[], margin: number): Float64Array {
  const normals: number[][] = [];
  for (const g of group) {
    const q = matrixToQuaternion(g);
    if (M.abs(q[0]) > 1 - 1e-12) continue; // the identity
    for (const s of [1, -1]) {
      const h = [s * q[0], -s * q[1], -s * q[2], -s * q[3]]; // ±conj(q_g): w(q·q_g) = <q, conj(q_g)>
      const v = [1 - h[0]!, -h[1]!, -h[2]!, -h[3]!];
      const len = M.hypot(v[0]!, v[1]!, v[2]!, v[3]!);
      normals.push(v.map((x) => x / len));
    }
  }
  normals.push([1, 0, 0, 0]); // w ≥ 0
  const limit = M.sin(M.min(90, margin / 2 + 1e-9) * DEG);
  const kept: number[] = [];
  const n = matrices.length / 9;
  for (let i = 0; i < n; i++) {
    const q = matrixToQuaternion(matrices.subarray(i * 9, i * 9 + 9));
    let ok = false;
    for (const s of [1, -1]) {
      let worst = 0; // sin of the lower bound on the distance to the domain
      for (const nv of normals) {
        const d = -s * (q[0] * nv[0]! + q[1] * nv[1]! + q[2] * nv[2]! + q[3] * nv[3]!);
        if (d > worst) worst = d;
      }
      if (worst <= limit) { ok = true; break; }
    }
    if (ok) kept.push(i);
  }
  const out = new F64(kept.length * 9);
  kept.forEach((i, k) => out.set(matrices.subarray(i * 9, i * 9 + 9), k * 9));
  return out;
}

const cache = new Map<string, RotationSet>();

/** The angular steps (degrees) a sampling can be made for: below 2° a set has millions of rotations. */
export const ANGULAR_STEP_RANGE = [2, 180] as const;

function validateStep(step: unknown): number {
  const [min, max] = ANGULAR_STEP_RANGE;
  if (typeof step !== 'number' || !Number.isFinite(step) || step < min || step > max) {
    throw invalidOption('angularStep', `a number of degrees from ${min} to ${max}`, step);
  }
  return step;
}

/**
 * A uniform sampling of rotations in which every orientation (up to the template's symmetry) lies within
 * `angularStep` degrees of a member.
 *
 * Construction ("Hopf grid"): R = D(d)·Rz(ψ), where d runs over the directions of a geodesic icosahedral grid of
 * class (a, b) (ordered from +z by polar angle, then azimuth), D(d) is the smallest rotation taking z to d, and
 * ψ = 0, Δψ, 2Δψ, … (inner loop). Index 0 is the identity. The grid and the in-plane count are chosen to minimise
 * the count under the proven bound 2·acos(cos(ρ/2)·cos(Δψ/4)) ≤ step (ρ: the directions' covering radius). Symmetry: Cn restricts ψ to
 * [0, 360/n); Dn also keeps only directions with z ≥ −sin ρ; T, O and I keep the members near the identity's
 * Dirichlet domain (see keepNearFundamentalDomain). Results are cached in memory per (step, symmetry).
 */
export function sampleRotations(options: SampleRotationsOptions): RotationSet {
  const step = validateStep(options?.angularStep);
  const sym = parseSymmetry(options.symmetry ?? 'C1');
  const measure = options.measure ?? true;
  const key = `${step}|${sym.name}|${measure}`;
  const hit = cache.get(key);
  if (hit) return { ...hit, matrices: hit.matrices.slice() };

  let matrices: Float64Array;
  let plan: HopfPlan;
  let method: string;
  const describe = (p: HopfPlan): string =>
    `hopf-icosahedral: ${p.sphere.size} directions (${p.sphere.label} grid, covering ${p.sphereRadius.toFixed(3)}°)`
    + ` × ${p.inplane} in-plane steps of ${p.inplaneStep.toFixed(4)}°`;
  if (step >= 180) {
    plan = { sphere: classOneSet(1), inplane: 1, fold: 1, sphereRadius: 180, inplaneStep: 360, bound: 180 };
    matrices = F64.of(1, 0, 0, 0, 1, 0, 0, 0, 1);
    method = 'identity only: every rotation is within 180° of it';
  } else if (sym.kind === 'C') {
    plan = planHopf(step, sym.n, () => 1);
    matrices = buildHopf(plan, () => true);
    method = describe(plan) + (sym.n > 1 ? ` over 360/${sym.n}°` : '');
  } else if (sym.kind === 'D') {
    plan = planHopf(step, sym.n, (rho) => (1 + M.sin(rho * DEG)) / 2);
    const zMin = -M.sin(plan.sphereRadius * DEG) - 1e-12;
    matrices = buildHopf(plan, (z) => z >= zMin);
    method = describe(plan) + ` over 360/${sym.n}°, directions with z ≥ −sin ρ`;
  } else {
    plan = planHopf(step, 1, () => 1);
    matrices = keepNearFundamentalDomain(buildHopf(plan, () => true), symmetryGroup(sym.name), plan.bound);
    method = describe(plan) + `, members within the bound of the ${sym.name} fundamental domain`;
  }
  const group = sym.name === 'C1' ? undefined : symmetryGroup(sym.name);
  const coveringAngle = measure ? measureCovering(matrices, { group }).coveringAngle : Number.NaN;
  const set: RotationSet = {
    matrices, count: matrices.length / 9, angularStep: step, coveringAngle, coveringBound: plan.bound, symmetry: sym.name, method,
  };
  cache.set(key, set);
  return { ...set, matrices: matrices.slice() };
}

/** The i-th matrix of a set (a copy). */
export function rotationAt(set: Pick<RotationSet, 'matrices'>, i: number): Matrix3 {
  return set.matrices.slice(i * 9, i * 9 + 9);
}
