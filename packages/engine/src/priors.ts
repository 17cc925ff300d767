import { invalidOption, type Zyx } from '@tme/formats';

/** The template axis a prior's vector constrains (the template's own x, y or z, before rotation). */
export type TemplateAxis = 'x' | 'y' | 'z';
export const TEMPLATE_AXES: readonly TemplateAxis[] = ['z', 'y', 'x'];

/**
 * Priors per position: around each prior position the search keeps only rotations that turn the template's `axis`
 * to within `coneAngle` of the prior's direction (a membrane normal, a filament axis). The cone restricts the axis
 * alone: every rotation about it (the in-plane angle) stays allowed. Voxels within `radius` of no prior are not
 * searched at all (score 0, rotation −1, as voxels without data): the prior says where the particles are, and
 * searching the rest unrestricted would cost the whole search again. A voxel near several priors takes its nearest.
 */
export interface PositionPriors {
  /** Prior positions, voxels of the target (z, y, x), three numbers a prior. */
  positions: Float64Array;
  /** Each prior's direction (z, y, x; any length > 0), three numbers a prior. */
  directions: Float64Array;
  /** Half-angle of the cone of allowed directions of the template's axis, degrees (0, 180]. */
  coneAngle: number;
  /** Radius of influence around each prior position, Å (> 0). */
  radius: number;
  /** The template axis the directions constrain. Default 'z'. */
  axis?: TemplateAxis;
}

/** Option names for messages (the CLI's flags). */
export interface PriorNames { priors?: string; coneAngle?: string; radius?: string; axis?: string }

/** Checks priors; returns them with unit directions. */
export function checkPriors(priors: PositionPriors, names: PriorNames = {}): Required<PositionPriors> {
  const n = priors.positions.length / 3;
  if (!(priors.positions instanceof Float64Array) || !Number.isInteger(n) || n < 1 || priors.directions.length !== priors.positions.length) {
    throw invalidOption(names.priors ?? 'priors', 'at least one position and one direction per prior', `${priors.positions.length / 3} positions and ${priors.directions.length / 3} directions`);
  }
  const { coneAngle, radius } = priors;
  if (!(Number.isFinite(coneAngle) && coneAngle > 0 && coneAngle <= 180)) throw invalidOption(names.coneAngle ?? 'coneAngle', 'a half-angle in (0, 180] degrees', coneAngle);
  if (!(Number.isFinite(radius) && radius > 0)) throw invalidOption(names.radius ?? 'radius', 'a radius > 0 Å', radius);
  const axis = priors.axis ?? 'z';
  if (!TEMPLATE_AXES.includes(axis)) throw invalidOption(names.axis ?? 'axis', 'x, y or z', axis);
  const directions = new Float64Array(priors.directions.length);
  for (let i = 0; i < n; i++) {
    const [z, y, x] = [priors.directions[3 * i], priors.directions[3 * i + 1], priors.directions[3 * i + 2]] as [number, number, number];
    const length = Math.hypot(z, y, x);
    const position = [0, 1, 2].map((a) => priors.positions[3 * i + a] as number);
    if (!position.every(Number.isFinite) || !(Number.isFinite(length) && length > 0)) {
      throw invalidOption(names.priors ?? 'priors', 'finite positions and directions of length > 0', `prior ${i + 1}: at (${position.join(', ')}) direction (${z}, ${y}, ${x})`);
    }
    directions.set([z / length, y / length, x / length], 3 * i);
  }
  return { positions: priors.positions, directions, coneAngle, radius, axis };
}

/**
 * Per target voxel, the index of its nearest prior within the radius, or −1: each prior visits only the box around
 * it, so the cost is priors × radius³, not priors × voxels. Distances in Å (voxel sizes may differ per axis).
 */
export function priorField(priors: Required<PositionPriors>, shape: Zyx, voxelSize: Zyx): Int32Array {
  const [nz, ny, nx] = shape;
  const field = new Int32Array(nz * ny * nx).fill(-1);
  const best = new Float32Array(field.length).fill(Infinity);
  const r2 = priors.radius * priors.radius;
  const n = priors.positions.length / 3;
  for (let i = 0; i < n; i++) {
    const c = [0, 1, 2].map((a) => priors.positions[3 * i + a] as number);
    const lo = c.map((v, a) => Math.max(0, Math.ceil(v - priors.radius / (voxelSize[a] as number))));
    const hi = c.map((v, a) => Math.min((shape[a] as number) - 1, Math.floor(v + priors.radius / (voxelSize[a] as number))));
    for (let z = lo[0] as number; z <= (hi[0] as number); z++) {
      const dz = (z - (c[0] as number)) * voxelSize[0];
      for (let y = lo[1] as number; y <= (hi[1] as number); y++) {
        const dy = (y - (c[1] as number)) * voxelSize[1];
        for (let x = lo[2] as number; x <= (hi[2] as number); x++) {
          const dx = (x - (c[2] as number)) * voxelSize[2];
          const d2 = dz * dz + dy * dy + dx * dx;
          const v = (z * ny + y) * nx + x;
          // Ties keep the first prior: the field does not depend on anything but the file's order.
          if (d2 <= r2 && d2 < (best[v] as number)) { best[v] = d2; field[v] = i; }
        }
      }
    }
  }
  return field;
}

/** The column of a rotation (9 values, row-major, xyz frame) that the template's `axis` turns into, as (z, y, x). */
export function rotatedAxis(rotations: ArrayLike<number>, r: number, axis: TemplateAxis): Zyx {
  const col = axis === 'x' ? 0 : axis === 'y' ? 1 : 2;
  const o = 9 * r;
  return [rotations[o + 6 + col] as number, rotations[o + 3 + col] as number, rotations[o + col] as number];
}

/** Whether rotation `r` turns the template's axis to within the cone about prior `i`'s direction. */
export function withinCone(priors: Required<PositionPriors>, i: number, rotations: ArrayLike<number>, r: number): boolean {
  const [z, y, x] = rotatedAxis(rotations, r, priors.axis);
  const d = priors.directions;
  const dot = z * (d[3 * i] as number) + y * (d[3 * i + 1] as number) + x * (d[3 * i + 2] as number);
  // A small tolerance: a rotation on the rim (the cone angle a multiple of the sampling) stays in.
  return dot >= Math.cos((priors.coneAngle * Math.PI) / 180) - 1e-9;
}

/**
 * One pass of a tile's search under priors: the rotations (global indices, increasing) that exactly the priors in
 * `member` allow among those present in the tile. Each rotation of the tile lies in one group, so it is matched once;
 * a voxel takes a group's scores only when its own prior is a member, so its best is over its cone's rotations alone.
 */
export interface RotationGroup {
  rotations: Int32Array;
  /** 1 at each prior (index into the priors) that allows the group's rotations. */
  member: Uint8Array;
}

/**
 * The groups of a tile: the priors whose voxels lie in its core (`present`, from the field), and for each rotation in
 * [start, end) the set of them that allow it; rotations that none allows are skipped.
 */
export function rotationGroups(
  priors: Required<PositionPriors>, present: readonly number[], rotations: Float64Array, start: number, end: number,
): RotationGroup[] {
  const groups = new Map<string, { rotations: number[]; priors: number[] }>();
  const allowed: number[] = [];
  for (let r = start; r < end; r++) {
    allowed.length = 0;
    for (const i of present) if (withinCone(priors, i, rotations, r)) allowed.push(i);
    if (allowed.length === 0) continue;
    const key = allowed.join(',');
    let g = groups.get(key);
    if (!g) { g = { rotations: [], priors: [...allowed] }; groups.set(key, g); }
    g.rotations.push(r);
  }
  const n = priors.positions.length / 3;
  return [...groups.values()].map((g) => {
    const member = new Uint8Array(n);
    for (const i of g.priors) member[i] = 1;
    return { rotations: Int32Array.from(g.rotations), member };
  });
}

/** The priors that own voxels of a tile's core (sorted). */
export function presentPriors(field: Int32Array, visitCore: (visit: (full: number, n: number) => void) => void): number[] {
  const seen = new Set<number>();
  visitCore((full, n) => {
    for (let x = 0; x < n; x++) {
      const i = field[full + x] as number;
      if (i >= 0) seen.add(i);
    }
  });
  return [...seen].sort((a, b) => a - b);
}

/** The nearest prior's cone at a position (voxels, z, y, x), or undefined outside every radius: what refinement keeps to. */
export function priorConeAt(priors: Required<PositionPriors>, position: Zyx, voxelSize: Zyx): { index: number; direction: Zyx } | undefined {
  let best = -1;
  let bestD = priors.radius * priors.radius;
  const n = priors.positions.length / 3;
  for (let i = 0; i < n; i++) {
    let d2 = 0;
    for (let a = 0; a < 3; a++) d2 += (((position[a] as number) - (priors.positions[3 * i + a] as number)) * (voxelSize[a] as number)) ** 2;
    if (d2 <= bestD && (best < 0 || d2 < bestD)) { best = i; bestD = d2; }
  }
  if (best < 0) return undefined;
  const d = priors.directions;
  return { index: best, direction: [d[3 * best] as number, d[3 * best + 1] as number, d[3 * best + 2] as number] };
}
