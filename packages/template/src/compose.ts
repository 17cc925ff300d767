import type { Zyx } from '@tme/formats';
import type { FilterRows } from './rows';
import { bandPassFilter, type BandPassOptions } from './bandpass';
import { ctfFilter } from './ctf-filter';
import type { CtfFilterOptions } from './ctf';
import { continuousWedgeFilter, tiltWeightingFilter, type ContinuousWedgeOptions, type TiltWeightingOptions } from './wedge';
import { radialFilter, type RadialProfile } from './whitening';

/** A Fourier filter on demand: real float32 in the half-spectrum layout (nz, ny, nx/2+1) of `shape`. */
export type FilterFunction = (shape: Zyx, voxelSize: Zyx) => Float32Array;

/** Everything a search can multiply into the template's spectrum. Every part is optional; they multiply. */
export interface FilterOptions {
  /** Continuous missing wedge from a tilt range (binary, or cosine-weighted). Ignored when `tiltWeighting` is given. */
  wedge?: ContinuousWedgeOptions;
  /** Per-tilt slabs with cosine, exposure and per-tilt CTF weights (a weighted, stepped wedge). */
  tiltWeighting?: TiltWeightingOptions;
  /** One CTF for the whole series (3D CTF at one defocus). Use per-tilt `ctf` in `tiltWeighting` instead for per-tilt defocus. */
  ctf?: CtfFilterOptions;
  /** Low/high-pass in Å. */
  bandPass?: BandPassOptions;
  /** Whitening profile from the target (see `whiteningProfile`); applied to both target and template. */
  whitening?: RadialProfile;
}

export interface TargetFilterOptions extends FilterOptions {
  /** Also multiply the target by the binary continuous wedge (`wedge`, or the range of `tiltWeighting`'s tilts). Default false. */
  applyWedgeToTarget?: boolean;
}

function multiplyInto(acc: Float32Array | null, f: Float32Array): Float32Array {
  if (acc === null) return f;
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) * (f[i] as number);
  return acc;
}

function ones(shape: Zyx): Float32Array {
  return new Float32Array(shape[0] * shape[1] * (Math.floor(shape[2] / 2) + 1)).fill(1);
}

/** Caches one filter per (shape, voxel size): the engine asks again for every tile of the same shape. */
function cached(build: FilterFunction): FilterFunction {
  const cache = new Map<string, Float32Array>();
  return (shape, voxelSize) => {
    const key = `${shape.join('x')}@${voxelSize.join(',')}`;
    let f = cache.get(key);
    if (!f) {
      f = build(shape, voxelSize);
      cache.set(key, f);
    }
    return f;
  };
}

/** True when the options ask for no filtering at all (the engine may then skip the multiply). */
export function isIdentityFilter(options: FilterOptions): boolean {
  return !options.wedge && !options.tiltWeighting && !options.ctf && !options.bandPass && !options.whitening;
}

/**
 * The template filter: wedge (or per-tilt weighting) × CTF × band-pass × whitening, as ONE real filter in the
 * half-spectrum layout, multiplied into the rotated template's spectrum (tomogram frame).
 */
export function buildTemplateFilter(options: FilterOptions): FilterFunction {
  return cached((shape, voxelSize) => {
    let acc: Float32Array | null = null;
    if (options.tiltWeighting) acc = multiplyInto(acc, tiltWeightingFilter(shape, voxelSize, options.tiltWeighting));
    else if (options.wedge) acc = multiplyInto(acc, continuousWedgeFilter(shape, voxelSize, options.wedge));
    if (options.ctf) acc = multiplyInto(acc, ctfFilter(shape, voxelSize, options.ctf));
    if (options.bandPass) acc = multiplyInto(acc, bandPassFilter(shape, voxelSize, options.bandPass));
    if (options.whitening) acc = multiplyInto(acc, radialFilter(options.whitening, shape, voxelSize));
    return acc ?? ones(shape);
  });
}

/** A filter that also gives a block of ky rows of its grid (FilterRows) without the whole half spectrum: what a target
 *  larger than memory is filtered with, block by block (@tme/engine's out-of-core target filter). */
export type RowFilterFunction = FilterFunction & { rows: (shape: Zyx, voxelSize: Zyx, rows: FilterRows) => Float32Array };

/**
 * The target filter: band-pass × whitening (the target already carries its own wedge and CTF), optionally × the
 * binary wedge (as pyTME does). Applied once to the target's spectrum: whole (the function), or a block of ky rows at
 * a time (`rows`); the whole filter is the block of every row, so both paths multiply the same values.
 */
export function buildTargetFilter(options: TargetFilterOptions): RowFilterFunction {
  let wedge: ContinuousWedgeOptions | undefined;
  if (options.applyWedgeToTarget) {
    const tilts = options.tiltWeighting?.tilts;
    // The target's own wedge is binary: cosine weights describe how the template is seen, not a mask.
    wedge = (options.wedge && { ...options.wedge, cosineWeighting: false }) ??
      (tilts && tilts.length > 0
        ? { tiltRange: [Math.min(...tilts.map((t) => t.angle)), Math.max(...tilts.map((t) => t.angle))], tiltAxis: options.tiltWeighting?.tiltAxis }
        : undefined);
  }
  const rows = (shape: Zyx, voxelSize: Zyx, block: FilterRows): Float32Array => {
    let acc: Float32Array | null = null;
    if (wedge) acc = multiplyInto(acc, continuousWedgeFilter(shape, voxelSize, wedge, block));
    if (options.bandPass) acc = multiplyInto(acc, bandPassFilter(shape, voxelSize, options.bandPass, block));
    if (options.whitening) acc = multiplyInto(acc, radialFilter(options.whitening, shape, voxelSize, block));
    return acc ?? new Float32Array(shape[0] * (block[1] - block[0]) * (Math.floor(shape[2] / 2) + 1)).fill(1);
  };
  return Object.assign(cached((shape, voxelSize) => rows(shape, voxelSize, [0, shape[1]])), { rows });
}
