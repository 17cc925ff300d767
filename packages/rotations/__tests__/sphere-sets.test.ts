import { geodesicGrid, icosahedralCoveringBound, icosahedralGrid } from '../src/sphere-grid';
import { hull, sphereCoveringRadius } from '../src/sphere-hull';
import { GEODESIC_COVERING_RADII, smallGeodesicSets } from '../src/sphere-sets';

describe('sphere sets for the Hopf grid', () => {
  it('the tabulated covering radii are what the convex hull gives now', () => {
    for (const [a, b, radius] of GEODESIC_COVERING_RADII) {
      expect(Math.abs(sphereCoveringRadius(geodesicGrid(a, b, true)) - radius)).toBeLessThan(1e-9);
    }
    expect(smallGeodesicSets().map((s) => s.size)).toEqual([...smallGeodesicSets().map((s) => s.size)].sort((x, y) => x - y));
  });

  it('the hull is a closed triangulation (F = 2N − 4) and its exact radius equals the class-I triangle bound', () => {
    for (const n of [1, 2, 3, 6]) {
      const { directions } = icosahedralGrid(n);
      expect(hull(directions).length / 3).toBe(2 * (directions.length / 3) - 4);
      expect(sphereCoveringRadius(directions)).toBeCloseTo(icosahedralCoveringBound(n), 9);
    }
  });

  it('class (a, b) grids have 10T + 2 directions with +z first', () => {
    for (const [a, b] of [[1, 1], [2, 1], [3, 2], [4, 4]] as const) {
      const d = geodesicGrid(a, b, true);
      expect(d.length / 3).toBe(10 * (a * a + a * b + b * b) + 2);
      expect(Array.from(d.subarray(0, 3))).toEqual([0, 0, 1]);
    }
  });

  it('a hand-checkable radius: the 12 icosahedron vertices leave holes at the face centres, 37.38° away', () => {
    // angle between a vertex and the centre of a face: acos(√((5 + 2√5)/15))
    expect(sphereCoveringRadius(icosahedralGrid(1).directions)).toBeCloseTo(Math.acos(Math.sqrt((5 + 2 * Math.sqrt(5)) / 15)) * 180 / Math.PI, 10);
  });
});
