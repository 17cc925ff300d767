import type { Matrix3 } from './matrix';
import { multiply } from './matrix';
import { multiplyQuaternions, type Quaternion } from './quaternion';
import { randomQuaternion, seededRandom } from './random-rotations';
import { RotationIndex } from './rotation-index';
// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;
const F64 = Float64Array;

export interface MeasureCoveringOptions {
  /** Uniform random probe rotations; default the set's size (after the group), at least 20 000, at most 100 000. */
  probes?: number;
  /** Seed of the probe generator; default 1. */
  seed?: number;
  /** Symmetry group: measure the covering of S·G (every sampled rotation times every group element). */
  group?: readonly Matrix3[];
  /** Worst probes refined by local ascent to find deeper holes; default 64. */
  refine?: number;
}

export interface CoveringMeasurement {
  /** Largest angle (degrees) from a probe to its nearest sampled rotation: a measured lower estimate of the covering radius. */
  coveringAngle: number;
  /** Mean nearest angle over the random probes (degrees). */
  meanAngle: number;
  probes: number;
}

/** Expands S to S·G (group element index fastest). */
export function expandByGroup(matrices: Float64Array, group: readonly Matrix3[]): Float64Array {
  const n = matrices.length / 9;
  const out = new F64(n * group.length * 9);
  for (let i = 0; i < n; i++) {
    const r = matrices.subarray(i * 9, i * 9 + 9);
    group.forEach((g, k) => out.set(multiply(r, g), (i * group.length + k) * 9));
  }
  return out;
}

/**
 * Measures how well a rotation set covers SO(3): the largest angle from any probe rotation to its nearest set
 * member. Probes are seeded uniform random rotations; the worst ones are then pushed uphill (random steps that
 * increase the distance are kept), which finds the deep holes that random probes alone miss.
 */
export function measureCovering(matrices: Float64Array, options: MeasureCoveringOptions = {}): CoveringMeasurement {
  const all = options.group && options.group.length > 1 ? expandByGroup(matrices, options.group) : matrices;
  const count = all.length / 9;
  // Typical spacing from the SO(3) volume (π² in quaternion measure) per rotation.
  const typical = M.min(180, 3 * M.cbrt((3 * M.PI) / (4 * count)) * (180 / M.PI));
  const index = new RotationIndex(all, typical);
  const probes = options.probes ?? M.min(100_000, M.max(20_000, count));
  const random = seededRandom(options.seed ?? 1);
  const keep = options.refine ?? 64;
  const worst: { q: Quaternion; angle: number }[] = [];
  let max = 0, sum = 0;
  for (let i = 0; i < probes; i++) {
    const q = randomQuaternion(random);
    const { angle } = index.nearest(q);
    sum += angle;
    if (angle > max) max = angle;
    if (keep > 0 && (worst.length < keep || angle > worst[worst.length - 1]!.angle)) {
      worst.push({ q, angle });
      worst.sort((a, b) => b.angle - a.angle);
      if (worst.length > keep) worst.pop();
    }
  }
  for (const start of worst) {
    let { q, angle } = start;
    let stepRad = (angle / 4) * (M.PI / 180);
    for (let it = 0; it < 60; it++) {
      const axis = randomQuaternion(random);
      const n = M.hypot(axis[1], axis[2], axis[3]);
      const h = stepRad / 2;
      const dq: Quaternion = [M.cos(h), (M.sin(h) * axis[1]) / n, (M.sin(h) * axis[2]) / n, (M.sin(h) * axis[3]) / n];
      const cand = multiplyQuaternions(q, dq);
      const a = index.nearest(cand).angle;
      if (a > angle) { q = cand; angle = a; } else if (it % 10 === 9) stepRad /= 2;
    }
    if (angle > max) max = angle;
  }
  return { coveringAngle: max, meanAngle: sum / probes, probes };
}
