/**
 * Directions on the unit sphere from a subdivided icosahedron (frequency n: 10n² + 2 points), with a PROVEN bound
 * on their covering radius. The icosahedron has a vertex at +z (so direction 0 is +z) and one at −z.
 */
import type { Vec3 } from './matrix';
// Module-local aliases: global lookups are slow inside vm contexts (jest), which matters in hot loops.
const M = Math;

const DEG = 180 / M.PI;

/** The 20 faces of the icosahedron with vertices (0,0,±1) and two rings of 5 at z = ±1/√5. */
function icosahedron(): { vertices: Vec3[]; faces: [number, number, number][] } {
  const z = 1 / M.sqrt(5), r = 2 / M.sqrt(5);
  const vertices: Vec3[] = [[0, 0, 1]];
  for (let k = 0; k < 5; k++) vertices.push([r * M.cos((2 * M.PI * k) / 5), r * M.sin((2 * M.PI * k) / 5), z]);
  for (let k = 0; k < 5; k++) {
    const a = (2 * M.PI * (k + 0.5)) / 5;
    vertices.push([r * M.cos(a), r * M.sin(a), -z]);
  }
  vertices.push([0, 0, -1]);
  const faces: [number, number, number][] = [];
  for (let k = 0; k < 5; k++) {
    const u0 = 1 + k, u1 = 1 + ((k + 1) % 5), l0 = 6 + k, l1 = 6 + ((k + 1) % 5);
    faces.push([0, u0, u1], [u0, l0, u1], [u1, l0, l1], [11, l1, l0]);
  }
  return { vertices, faces };
}

function normalize(v: Vec3): [number, number, number] {
  const n = M.hypot(v[0], v[1], v[2]);
  return [v[0] / n, v[1] / n, v[2] / n];
}

/**
 * Barycentric weights are warped by sin(WARP·w) before the central projection: plain projection makes the small
 * triangles near face centres larger than near the corners. WARP = 1.23 minimises the largest circumradius
 * (measured: covering thickness 1.31 instead of 1.46; the hexagonal optimum is 1.21). On edges the warp depends
 * only on the edge, so neighbouring faces share their edge points.
 */
const WARP = 1.23;

function facePoint(a: Vec3, b: Vec3, c: Vec3, i: number, j: number, n: number): [number, number, number] {
  const u = M.sin((WARP * i) / n), v = M.sin((WARP * j) / n), w = M.sin((WARP * (n - i - j)) / n);
  return normalize([w * a[0] + u * b[0] + v * c[0], w * a[1] + u * b[1] + v * c[1], w * a[2] + u * b[2] + v * c[2]]);
}

/** Angular radius (degrees) of the circle through three unit vectors on the sphere. */
function circumradius(p: Vec3, q: Vec3, r: Vec3): number {
  const e1 = [q[0] - p[0], q[1] - p[1], q[2] - p[2]], e2 = [r[0] - p[0], r[1] - p[1], r[2] - p[2]];
  const c = normalize([e1[1]! * e2[2]! - e1[2]! * e2[1]!, e1[2]! * e2[0]! - e1[0]! * e2[2]!, e1[0]! * e2[1]! - e1[1]! * e2[0]!]);
  const dot = c[0] * p[0] + c[1] * p[1] + c[2] * p[2];
  const cx = c[1] * p[2] - c[2] * p[1], cy = c[2] * p[0] - c[0] * p[2], cz = c[0] * p[1] - c[1] * p[0];
  return M.atan2(M.hypot(cx, cy, cz), M.abs(dot)) * DEG;
}

const radiusCache = new Map<number, number>();

/**
 * An upper bound (degrees) on the covering radius of the frequency-n grid: the largest circumradius of its small
 * triangles. Every point of a (small) spherical triangle lies within its circumradius of one of its corners, and
 * the triangles tile the sphere. All 20 faces are congruent, so one face is enough.
 */
export function icosahedralCoveringBound(n: number): number {
  const cached = radiusCache.get(n);
  if (cached !== undefined) return cached;
  const { vertices, faces } = icosahedron();
  const [ia, ib, ic] = faces[0]!;
  const a = vertices[ia]!, b = vertices[ib]!, c = vertices[ic]!;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; i + j < n; j++) {
      const p = facePoint(a, b, c, i, j, n), q = facePoint(a, b, c, i + 1, j, n), r = facePoint(a, b, c, i, j + 1, n);
      worst = M.max(worst, circumradius(p, q, r));
      if (i + j + 1 < n) worst = M.max(worst, circumradius(q, facePoint(a, b, c, i + 1, j + 1, n), r));
    }
  }
  radiusCache.set(n, worst);
  return worst;
}

/** Number of directions of the frequency-n grid. */
export function icosahedralGridSize(n: number): number {
  return 10 * n * n + 2;
}

export interface SphereGrid {
  /** Unit directions, xyz, 3 per direction: ordered by polar angle from +z (rings of equal z within 1e-9), then by
   * azimuth atan2(y, x) in [0, 360). Direction 0 is +z. */
  directions: Float64Array;
  /** Per direction: the largest circumradius (degrees) of the grid triangles touching it. Every point of the sphere
   * is within radii[i] of some direction i whose triangle contains it. */
  radii: Float64Array;
}

const gridCache = new Map<number, SphereGrid>();

/** The frequency-n icosahedral grid (10n² + 2 directions) with each direction's local covering radius. */
export function icosahedralGrid(n: number): SphereGrid {
  const cached = gridCache.get(n);
  if (cached) return cached;
  const { vertices, faces } = icosahedron();
  const index = new Map<string, number>();
  const points: [number, number, number][] = [];
  const idOf = (p: [number, number, number]): number => {
    const k = p.map((x) => M.round(x * 1e9) + 0).join(',');
    let id = index.get(k);
    if (id === undefined) { id = points.length; index.set(k, id); points.push(p); }
    return id;
  };
  const local: number[] = [];
  const touch = (ids: number[]): void => {
    const rad = circumradius(points[ids[0]!]!, points[ids[1]!]!, points[ids[2]!]!);
    for (const id of ids) local[id] = M.max(local[id] ?? 0, rad);
  };
  for (const [ia, ib, ic] of faces) {
    const a = vertices[ia]!, b = vertices[ib]!, c = vertices[ic]!;
    const id = (i: number, j: number): number => idOf(facePoint(a, b, c, i, j, n));
    for (let i = 0; i < n; i++) {
      for (let j = 0; i + j < n; j++) {
        touch([id(i, j), id(i + 1, j), id(i, j + 1)]);
        if (i + j + 1 < n) touch([id(i + 1, j), id(i + 1, j + 1), id(i, j + 1)]);
      }
    }
  }
  const order = canonicalOrder(points);
  const directions = new Float64Array(points.length * 3);
  const radii = new Float64Array(points.length);
  order.forEach((i, k) => { directions.set(points[i]!, k * 3); radii[k] = local[i]!; });
  const grid = { directions, radii };
  gridCache.set(n, grid);
  return grid;
}

/** Indices of `points` by polar angle from +z (rings of equal z within 1e-9), then azimuth in [0, 360). */
function canonicalOrder(points: readonly Vec3[]): number[] {
  const keys = points.map((p, i) => ({ i, ring: M.round(p[2] * 1e9), az: ((M.atan2(p[1], p[0]) * DEG) + 360) % 360 }));
  keys.sort((u, v) => (v.ring - u.ring) || (u.az - v.az));
  return keys.map((k) => k.i);
}

/**
 * A geodesic grid of class (a, b), 0 ≤ b ≤ a: every icosahedron face tiled by the triangular lattice whose step
 * vector from one corner to the next is a·e1 + b·e2 (T = a² + ab + b², 10T + 2 directions; b = 0 is the
 * frequency-a grid, 0 < b < a is chiral). `warped` applies the sin(1.23·w) barycentric warp. Canonical order.
 */
export function geodesicGrid(a: number, b: number, warped: boolean): Float64Array {
  const { vertices, faces } = icosahedron();
  const s3 = M.sqrt(3) / 2;
  const p1x = a + b / 2, p1y = b * s3;
  const p2x = p1x * 0.5 - p1y * s3, p2y = p1x * s3 + p1y * 0.5; // p1 turned by 60°
  const det = p1x * p2y - p1y * p2x;
  const seen = new Map<string, [number, number, number]>();
  const span = a + b;
  for (const [ia, ib, ic] of faces) {
    const A = vertices[ia]!, B = vertices[ib]!, C = vertices[ic]!;
    for (let i = -span; i <= 2 * span; i++) {
      for (let j = -span; j <= 2 * span; j++) {
        const x = i + j / 2, y = j * s3;
        const l1 = (x * p2y - y * p2x) / det, l2 = (p1x * y - p1y * x) / det, l0 = 1 - l1 - l2;
        if (l0 < -1e-9 || l1 < -1e-9 || l2 < -1e-9) continue;
        const w = [l0, l1, l2].map((v) => (warped ? M.sin(WARP * M.max(0, v)) : M.max(0, v)));
        const p = normalize([
          w[0]! * A[0] + w[1]! * B[0] + w[2]! * C[0], w[0]! * A[1] + w[1]! * B[1] + w[2]! * C[1], w[0]! * A[2] + w[1]! * B[2] + w[2]! * C[2],
        ]);
        const k = p.map((v) => M.round(v * 1e9) + 0).join(',');
        if (!seen.has(k)) seen.set(k, p);
      }
    }
  }
  const points = [...seen.values()];
  const out = new Float64Array(points.length * 3);
  canonicalOrder(points).forEach((i, k) => out.set(points[i]!, k * 3));
  return out;
}
