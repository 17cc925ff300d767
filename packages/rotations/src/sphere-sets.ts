import { geodesicGrid, icosahedralCoveringBound, icosahedralGrid, icosahedralGridSize } from './sphere-grid';

/** A candidate set of directions for the Hopf grid, with its covering radius (degrees). */
export interface SphereSet {
  label: string;
  size: number;
  /** Covering radius in degrees: exact (convex hull) or a proven upper bound. */
  radius: number;
  directions(): Float64Array;
}

/** Frequency-n class-I grid, warped; radius = the proven triangle bound (cheap for any n). */
export function classOneSet(n: number): SphereSet {
  return {
    label: `icosahedral (${n}, 0)`,
    size: icosahedralGridSize(n),
    radius: icosahedralCoveringBound(n),
    directions: () => icosahedralGrid(n).directions,
  };
}

/**
 * Exact covering radii (degrees) of the warped geodesic grids of class (a, b) with T = a² + ab + b² ≤ 100, from
 * `sphereCoveringRadius(geodesicGrid(a, b, true))` (the convex hull). Tabulated so that planning costs nothing;
 * __tests__/sphere-sets.test.ts recomputes every entry.
 */
export const GEODESIC_COVERING_RADII: readonly (readonly [a: number, b: number, radius: number])[] = [
  [1, 0, 37.377368140650],
  [1, 1, 22.690480375624],
  [2, 0, 20.905157447889],
  [2, 1, 15.408899441164],
  [3, 0, 13.755162182466],
  [2, 2, 11.698080876785],
  [3, 1, 11.570921829893],
  [4, 0, 10.297872067600],
  [3, 2, 9.387807556861],
  [4, 1, 9.037259260292],
  [5, 0, 8.369905417217],
  [3, 3, 7.925165937211],
  [4, 2, 7.847513442755],
  [5, 1, 7.436791994197],
  [6, 0, 6.930122989836],
  [4, 3, 6.759281984924],
  [5, 2, 6.626781277062],
  [6, 1, 6.360728151084],
  [4, 4, 6.000369461437],
  [5, 3, 5.918880035359],
  [7, 0, 5.931351772033],
  [6, 2, 5.742686708666],
  [7, 1, 5.502703562397],
  [5, 4, 5.290717178878],
  [6, 3, 5.210449477534],
  [8, 0, 5.210603589565],
  [7, 2, 5.081128715720],
  [8, 1, 4.858472062194],
  [5, 5, 4.829690757564],
  [6, 4, 4.747068345729],
  [7, 3, 4.656515210322],
  [9, 0, 4.617218413846],
  [8, 2, 4.526869712486],
  [6, 5, 4.356992174978],
  [9, 1, 4.362606690750],
  [7, 4, 4.286575822858],
  [8, 3, 4.214690497803],
  [10, 0, 4.152106856651],
];

/** Rounding of the tabulated radii is covered by this margin (degrees), so the bound stays an upper bound. */
const TABLE_MARGIN = 1e-9;

let small: SphereSet[] | undefined;

/** The class (a, b) grids of the table, sorted by size: they fill the gaps between the class-I sizes. */
export function smallGeodesicSets(): SphereSet[] {
  small ??= GEODESIC_COVERING_RADII.map(([a, b, radius]) => {
    let dirs: Float64Array | undefined;
    return {
      label: `icosahedral (${a}, ${b})`,
      size: 10 * (a * a + a * b + b * b) + 2,
      radius: radius + TABLE_MARGIN,
      directions: () => (dirs ??= geodesicGrid(a, b, true)),
    };
  }).sort((u, v) => u.size - v.size || u.label.localeCompare(v.label));
  return small;
}
