import type { Zyx } from '@tme/formats';
import { angleBetween } from '@tme/rotations';

/** A located, oriented particle: position in voxels (z, y, x), rotation active template→tomogram (xyz frame). */
export interface OrientedPosition {
  position: Zyx;
  rotation: Float64Array;
}

export interface PickScore {
  truthCount: number;
  pickCount: number;
  /** Picks that matched a true particle within the distance. */
  matched: number;
  recall: number;
  precision: number;
  /** Median geodesic angle (degrees) between matched picks' rotations and the truth; NaN without matches. */
  medianAngularError: number;
  /** Per matched pick: [pick index, truth index, distance in voxels, angular error in degrees]. */
  pairs: Array<[number, number, number, number]>;
}

function distance(a: Zyx, b: Zyx): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * Scores picks against ground truth. Picks are taken in the order given (best first); each claims the nearest
 * unclaimed true particle within `maxDistance` voxels, so a duplicate pick of one particle counts as a false
 * positive rather than a second hit.
 */
export function scorePicks(
  picks: readonly OrientedPosition[],
  truth: readonly OrientedPosition[],
  maxDistance = 2,
): PickScore {
  const claimed = new Uint8Array(truth.length);
  const pairs: Array<[number, number, number, number]> = [];
  picks.forEach((pick, i) => {
    let best = -1;
    let bestD = Infinity;
    truth.forEach((t, j) => {
      if (claimed[j]) return;
      const d = distance(pick.position, t.position);
      if (d <= maxDistance && d < bestD) { best = j; bestD = d; }
    });
    if (best >= 0) {
      claimed[best] = 1;
      pairs.push([i, best, bestD, angleBetween(pick.rotation, (truth[best] as OrientedPosition).rotation)]);
    }
  });
  const matched = pairs.length;
  return {
    truthCount: truth.length,
    pickCount: picks.length,
    matched,
    recall: truth.length ? matched / truth.length : 0,
    precision: picks.length ? matched / picks.length : 0,
    medianAngularError: median(pairs.map((p) => p[3])),
    pairs,
  };
}
