import { TmeError, invalidOption, type Zyx } from '@tme/formats';
import type { TileCostModel } from './backend';
import { boxCentre } from './rotate';

/**
 * One tile: the target voxels it scores (its core) and the box of the (edge-padded) target it reads. Every
 * tile reads the same fast shape, starting `c` = floor(support/2) voxels before its core, so each translation
 * of the core sees the whole template support (support.ts: where the correlated kernel can be non-zero, at most
 * the box) without wrapping around the circular correlation into other target voxels.
 *
 * Along an axis split into tiles the core has target data on both sides: the tile reads core + support − 1.
 * Along an axis one tile spans (with a constant fill, `halfPad`), the reads past either face only need to land on
 * fill, and both faces can share one band of it: output p of a core of N reads buffer (p + j) mod M, j < b, with
 * the target at [c, c + N); the reads that wrap land in the leading fill [0, c) when M ≥ N + b − 1 − c, and the
 * core fits when M ≥ N + c. So M = N + c (c ≥ b − 1 − c; about N + b/2) scores every voxel exactly as N + b − 1
 * does (and M ≥ b, so the support does not wrap onto itself).
 */
export interface Tile {
  index: number;
  coreStart: Zyx;
  coreShape: Zyx;
  /** First voxel read, in target coordinates (negative: before the target's edge). */
  readStart: Zyx;
  /** The CTF zone the core lies in (z-major index; 0 with one zone). */
  zone: number;
}

export interface TilePlan {
  /** Tiles per axis (z, y, x). */
  splits: Zyx;
  /** The FFT shape every tile is matched on. */
  fastShape: Zyx;
  tiles: Tile[];
  /** Device bytes to match one tile. */
  bytesPerTile: number;
  /** Why this plan: 'single' (fits whole; one tile per CTF zone), 'memory' (split to fit the device), 'user' (--tile). */
  reason: 'single' | 'memory' | 'user';
  /** Per axis: padded by half the support (one tile spans it, constant fill) instead of support − 1. Absent in the
   *  job.json of versions before it. */
  halfPadded?: readonly [boolean, boolean, boolean];
  /** With a cost model: the shape not chosen (padded by support − 1, or by half the support) and the chosen shape's
   *  predicted cost relative to it (≤ 1). */
  model?: { alternative: Zyx; relativeCost: number };
}

export interface PlanTilesInput {
  targetShape: Zyx;
  /** The template's support (the box when no smaller one is known): what tiles pad and overlap by. */
  templateShape: Zyx;
  /** A user tile: what a tile would read with the core it asks for, core + support − 1 per axis (an axis it then
   *  spans whole reads less with halfPad). */
  tileShape?: Zyx;
  /** Device bytes available for one tile. */
  budgetBytes: number;
  nextFastShape: (shape: Zyx) => Zyx;
  bytesFor: (fastShape: Zyx) => number;
  /** CTF zones per axis: the splits are multiples of these, so no tile straddles a zone boundary. Default [1, 1, 1]. */
  zoneSplits?: Zyx;
  /** Per axis (z, y, x): the tile continues beyond both faces as one constant (pad 'mean' or 'zero', and every
   *  other per-voxel input the backend correlates likewise), so the axis, where one tile spans it, pads by half the
   *  support (see Tile). Default: no axis. */
  halfPad?: readonly [boolean, boolean, boolean];
  /** The predicted cost of a tile's transforms (backend.ts): the planner then pads by half the support only where
   *  that shape is predicted cheaper than padding by support − 1. */
  costModel?: TileCostModel;
}

function splitAxis(length: number, parts: number): Array<[start: number, size: number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < parts; i++) {
    const a = Math.floor((i * length) / parts);
    const b = Math.floor(((i + 1) * length) / parts);
    out.push([a, b - a]);
  }
  return out;
}

interface Size {
  fastShape: Zyx;
  bytesPerTile: number;
  halfPadded: readonly [boolean, boolean, boolean];
  model?: TilePlan['model'];
}

/**
 * The FFT shape every tile of a split reads and the bytes one tile needs: the next fast shape of core + half the
 * support on the axes that allow it (one tile spans them), else of core + support − 1. With a cost model, the
 * cheaper of the two: FFTW's time per element differs more between neighbouring fast sizes than their voxels do, so
 * fewer voxels are not always faster (fft-cost.ts).
 */
function sizeOf(input: PlanTilesInput, splits: Zyx): Size {
  const { targetShape: s, templateShape: b } = input;
  const core: Zyx = [Math.ceil(s[0] / splits[0]), Math.ceil(s[1] / splits[1]), Math.ceil(s[2] / splits[2])];
  const half = [0, 1, 2].map((a) => input.halfPad?.[a] === true && splits[a] === 1);
  const full = input.nextFastShape([core[0] + b[0] - 1, core[1] + b[1] - 1, core[2] + b[2] - 1]);
  const halved = input.nextFastShape([0, 1, 2].map((a) => (half[a]
    ? Math.max((core[a] as number) + Math.floor((b[a] as number) / 2), b[a] as number)
    : (core[a] as number) + (b[a] as number) - 1)) as unknown as Zyx);
  const asFull: Size = { fastShape: full, bytesPerTile: input.bytesFor(full), halfPadded: [false, false, false] };
  if (halved.every((n, a) => n === full[a])) return asFull;
  const asHalf: Size = { fastShape: halved, bytesPerTile: input.bytesFor(halved), halfPadded: [half[0] as boolean, half[1] as boolean, half[2] as boolean] };
  const costHalf = input.costModel?.cost(halved, core);
  const costFull = input.costModel?.cost(full, core);
  if (costHalf === undefined || costFull === undefined || !(costHalf > 0 && costFull > 0)) return asHalf;
  if (costFull < costHalf && asFull.bytesPerTile <= input.budgetBytes) return { ...asFull, model: { alternative: halved, relativeCost: costFull / costHalf } };
  return { ...asHalf, model: { alternative: full, relativeCost: costHalf / costFull } };
}

function build(input: PlanTilesInput, splits: Zyx, reason: TilePlan['reason']): TilePlan {
  const { targetShape: s, templateShape: b } = input;
  const c = boxCentre(b);
  const { fastShape, bytesPerTile, halfPadded, model } = sizeOf(input, splits);
  const tiles: Tile[] = [];
  const az = splitAxis(s[0], splits[0]);
  const ay = splitAxis(s[1], splits[1]);
  const ax = splitAxis(s[2], splits[2]);
  const zs = input.zoneSplits ?? [1, 1, 1];
  // Splits are multiples of the zones, and splitAxis rounds alike: tile i of n lies in zone floor(i·zones/n).
  const zoneOf = (i: number, a: number): number => Math.floor((i * (zs[a] as number)) / (splits[a] as number));
  az.forEach(([z0, zn], iz) => {
    ay.forEach(([y0, yn], iy) => {
      ax.forEach(([x0, xn], ix) => {
        tiles.push({
          index: tiles.length,
          coreStart: [z0, y0, x0],
          coreShape: [zn, yn, xn],
          readStart: [z0 - c[0], y0 - c[1], x0 - c[2]],
          zone: (zoneOf(iz, 0) * zs[1] + zoneOf(iy, 1)) * zs[2] + zoneOf(ix, 2),
        });
      });
    });
  });
  return { splits, fastShape, tiles, bytesPerTile, reason, halfPadded, ...(model ? { model } : {}) };
}

function gib(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'more than one device buffer holds';
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/**
 * Splits the target into tiles: one tile when it fits, else the axis with the longest core is split further
 * (round by round) until one tile fits `budgetBytes`. A user tile shape fixes the core size instead.
 */
export function planTiles(input: PlanTilesInput): TilePlan {
  const { targetShape: s, templateShape: b } = input;
  if (input.tileShape) {
    const t = input.tileShape;
    const core = [0, 1, 2].map((a) => (t[a] as number) - (b[a] as number) + 1);
    core.forEach((n, a) => {
      if (!(n >= 1)) {
        throw invalidOption('tile', `a tile larger than the template's support (${b.join(',')}) on every axis`, t.join(','));
      }
    });
    const zs = input.zoneSplits ?? [1, 1, 1];
    const splits: Zyx = [0, 1, 2].map((a) => {
      const z = zs[a] as number;
      return Math.ceil(Math.ceil((s[a] as number) / (core[a] as number)) / z) * z;
    }) as unknown as Zyx;
    const size = sizeOf(input, splits);
    // Tiles barely larger than the support spend nearly all their work on overlap (16³ tiles of a 16³ template:
    // 262,144 tiles, 18 hours): refuse a plan with more than 8× the transform volume of one whole tile.
    const tiles = splits[0] * splits[1] * splits[2];
    const whole = input.nextFastShape([0, 1, 2].map((a) => (s[a] as number) + (b[a] as number) - 1) as unknown as Zyx);
    const waste = (tiles * size.fastShape[0] * size.fastShape[1] * size.fastShape[2]) / (whole[0] * whole[1] * whole[2]);
    if (tiles > 1 && waste > 8) {
      throw invalidOption('--tile', `tiles of at least ${b.map((n) => 2 * n).join(',')} or auto (cores of ${core.join(',')} voxels `
        + `make ${tiles} tiles transforming ${waste.toFixed(0)}× the voxels of one whole tile)`, t.join(','));
    }
    if (!(size.bytesPerTile <= input.budgetBytes)) {
      throw new TmeError('ERR_TME_DEVICE_MEMORY',
        `a tile of ${t.join(',')} (FFT shape ${size.fastShape.join(',')}) needs ${gib(size.bytesPerTile)} but the device has ${gib(input.budgetBytes)}; use a smaller --tile or --tile auto`);
    }
    return build(input, splits, splits.every((n, a) => n === zs[a]) ? 'single' : 'user');
  }
  const zs = input.zoneSplits ?? [1, 1, 1];
  const splits: [number, number, number] = [zs[0], zs[1], zs[2]];
  for (;;) {
    const size = sizeOf(input, splits);
    if (size.bytesPerTile <= input.budgetBytes) return build(input, splits, splits.every((n, a) => n === zs[a]) ? 'single' : 'memory');
    const cores = [0, 1, 2].map((a) => Math.ceil((s[a] as number) / (splits[a] as number)));
    let axis = -1;
    for (let a = 0; a < 3; a++) if ((cores[a] as number) > 1 && (axis < 0 || (cores[a] as number) > (cores[axis] as number))) axis = a;
    if (axis < 0) {
      throw new TmeError('ERR_TME_DEVICE_MEMORY',
        `even a one-voxel tile (FFT shape ${size.fastShape.join(',')}) needs ${gib(size.bytesPerTile)} but the device has ${gib(input.budgetBytes)}`);
    }
    // Grow the split until the core actually shrinks.
    const before = cores[axis] as number;
    while (Math.ceil((s[axis] as number) / (splits[axis] as number)) === before) splits[axis] = (splits[axis] as number) + (zs[axis] as number);
  }
}
