/**
 * Exact covering radius of a point set on the unit sphere: the convex hull of points on a sphere is their
 * spherical Delaunay triangulation, and each hull face's plane cuts the sphere in an empty circle whose centre (the
 * face normal) is a Voronoi vertex. The covering radius is the largest of those circles' angular radii.
 */
const M = Math; // module-local alias (see matrix.ts)

/** Largest angular radius (degrees) of the empty circles of the hull: the exact covering radius of the points. */
export function sphereCoveringRadius(points: Float64Array): number {
  const faces = hull(points);
  let worst = 0;
  for (let f = 0; f < faces.length; f += 3) {
    const a = faces[f]!, b = faces[f + 1]!, c = faces[f + 2]!;
    const n = normal(points, a, b, c);
    const len = M.hypot(n[0], n[1], n[2]);
    const h = (n[0] * points[3 * a]! + n[1] * points[3 * a + 1]! + n[2] * points[3 * a + 2]!) / len;
    worst = M.max(worst, M.acos(M.min(1, M.max(-1, h))));
  }
  return (worst * 180) / M.PI;
}

function normal(p: Float64Array, a: number, b: number, c: number): [number, number, number] {
  const ux = p[3 * b]! - p[3 * a]!, uy = p[3 * b + 1]! - p[3 * a + 1]!, uz = p[3 * b + 2]! - p[3 * a + 2]!;
  const vx = p[3 * c]! - p[3 * a]!, vy = p[3 * c + 1]! - p[3 * a + 1]!, vz = p[3 * c + 2]! - p[3 * a + 2]!;
  return [uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx];
}

/**
 * Incremental convex hull of points that all lie on the unit sphere (so every point is a vertex). Returns the
 * faces (3 indices each, counter-clockwise seen from outside). O(N·F): meant for up to a few thousand points.
 */
export function hull(p: Float64Array): Int32Array {
  const n = p.length / 3;
  if (n < 4) throw new Error('hull needs at least 4 points');
  // A first tetrahedron: point 0, the farthest from it, the farthest from their line, the farthest from the plane.
  const dist2 = (i: number, j: number): number => (p[3 * i]! - p[3 * j]!) ** 2 + (p[3 * i + 1]! - p[3 * j + 1]!) ** 2 + (p[3 * i + 2]! - p[3 * j + 2]!) ** 2;
  let i1 = 1;
  for (let i = 1; i < n; i++) if (dist2(0, i) > dist2(0, i1)) i1 = i;
  let i2 = -1, best = -1;
  for (let i = 0; i < n; i++) {
    const c = normal(p, 0, i1, i), a = M.hypot(c[0], c[1], c[2]);
    if (a > best) { best = a; i2 = i; }
  }
  const plane = normal(p, 0, i1, i2);
  let i3 = -1;
  best = -1;
  for (let i = 0; i < n; i++) {
    const d = M.abs(plane[0] * (p[3 * i]! - p[0]!) + plane[1] * (p[3 * i + 1]! - p[1]!) + plane[2] * (p[3 * i + 2]! - p[2]!));
    if (d > best) { best = d; i3 = i; }
  }
  const inside = [0, 1, 2].map((k) => (p[k]! + p[3 * i1 + k]! + p[3 * i2 + k]! + p[3 * i3 + k]!) / 4);
  const faces: number[] = [];
  const alive: boolean[] = [];
  const normals: number[] = [];
  const edgeFace = new Map<number, number>();
  const addFace = (a: number, b: number, c: number): void => {
    let nv = normal(p, a, b, c);
    if (nv[0] * (inside[0]! - p[3 * a]!) + nv[1] * (inside[1]! - p[3 * a + 1]!) + nv[2] * (inside[2]! - p[3 * a + 2]!) > 0) {
      [b, c] = [c, b];
      nv = [-nv[0], -nv[1], -nv[2]];
    }
    const f = alive.length;
    faces.push(a, b, c);
    normals.push(nv[0], nv[1], nv[2]);
    alive.push(true);
    edgeFace.set(a * n + b, f);
    edgeFace.set(b * n + c, f);
    edgeFace.set(c * n + a, f);
  };
  addFace(0, i1, i2); addFace(0, i1, i3); addFace(0, i2, i3); addFace(i1, i2, i3);
  const used = new Set([0, i1, i2, i3]);
  for (let q = 0; q < n; q++) {
    if (used.has(q)) continue;
    const visible: number[] = [];
    for (let f = 0; f < alive.length; f++) {
      if (!alive[f]) continue;
      const a = faces[3 * f]!;
      const d = normals[3 * f]! * (p[3 * q]! - p[3 * a]!) + normals[3 * f + 1]! * (p[3 * q + 1]! - p[3 * a + 1]!) + normals[3 * f + 2]! * (p[3 * q + 2]! - p[3 * a + 2]!);
      if (d > 1e-14) visible.push(f);
    }
    if (visible.length === 0) continue; // a duplicate point
    const isVisible = new Set(visible);
    const horizon: [number, number][] = [];
    for (const f of visible) {
      const v = [faces[3 * f]!, faces[3 * f + 1]!, faces[3 * f + 2]!];
      for (let k = 0; k < 3; k++) {
        const a = v[k]!, b = v[(k + 1) % 3]!;
        const other = edgeFace.get(b * n + a);
        if (other === undefined || !isVisible.has(other)) horizon.push([a, b]);
      }
      alive[f] = false;
    }
    for (const [a, b] of horizon) {
      const f = alive.length;
      faces.push(a, b, q);
      const nv = normal(p, a, b, q);
      normals.push(nv[0], nv[1], nv[2]);
      alive.push(true);
      edgeFace.set(a * n + b, f);
      edgeFace.set(b * n + q, f);
      edgeFace.set(q * n + a, f);
    }
  }
  const out: number[] = [];
  for (let f = 0; f < alive.length; f++) if (alive[f]) out.push(faces[3 * f]!, faces[3 * f + 1]!, faces[3 * f + 2]!);
  return Int32Array.from(out);
}
