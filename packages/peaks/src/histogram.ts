import type { VolumeData } from '@tme/formats';
import { invalidOption, TmeError } from '@tme/formats';

export interface ScoreHistogramOptions {
  /** Only voxels with mask ≥ 0.5. */
  mask?: VolumeData;
  /** Voxels with a negative index were not scored and are skipped. */
  rotationIndices?: Int32Array | Float32Array;
  /** Number of bins. Default 100. */
  bins?: number;
  /** [lo, hi] of the bins; default [min, max] of the counted scores. */
  range?: readonly [number, number];
  /** A threshold to draw with the histogram (copied into the result). */
  threshold?: number;
}

/** A Gaussian fitted to the central part of the histogram: the noise model of the report. */
export interface GaussianFit {
  mean: number;
  std: number;
  /** Peak of the fitted density, counts per unit score (counts in a bin ≈ peakDensity·e^{−…}·binWidth). */
  peakDensity: number;
  /** 'log-parabola': weighted least squares on log counts within ±1 robust σ of the median; 'quantiles':
   * median and (q84 − q16)/2 (used when the parabola does not open downward). */
  method: 'log-parabola' | 'quantiles';
}

export interface ScoreHistogram {
  /** bins + 1 bin edges. */
  edges: Float64Array;
  counts: Float64Array;
  /** Fitted Gaussian counts per bin. */
  fitted: Float64Array;
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  fit: GaussianFit;
  threshold: number | null;
}

const FINE = 4096;
const BLOCK = 65536;
/** The voxels (in raster order) that scoreHistogramOfBlocks' caller hands over at a time. */
export const HISTOGRAM_BLOCK = BLOCK;

type Mask = VolumeData | undefined;
type Rot = Int32Array | Float32Array | undefined;
/** Visits a map's blocks of HISTOGRAM_BLOCK voxels in order (the last may be shorter): each as arrays and the
 *  block's [start, end) in them. */
export type HistogramBlocks = (visit: (map: Float32Array, start: number, end: number, mask: Mask, rot: Rot) => void) => void;
const { min: mmin, exp, sqrt, log } = Math;

/**
 * Histogram of a score map (inside a mask), its moments, and a robust Gaussian fit of the central part, in two
 * passes over the map and no copy of it. The fit uses a fine internal histogram: median and quantile spread as
 * the start, then a parabola fitted to log counts within ±1 σ of the median, so that the signal tail (and the
 * right skew of a max-over-rotations map) hardly moves it.
 */
export function scoreHistogram(map: Float32Array, options: ScoreHistogramOptions = {}): ScoreHistogram {
  const bins = options.bins ?? 100;
  if (!(Number.isInteger(bins) && bins >= 1 && bins <= 1e6)) throw invalidOption('bins', 'integer in [1, 1000000]', bins);
  const { mask, rotationIndices: rot } = options;
  if (mask && mask.length !== map.length) throw new TmeError('ERR_TME_MISMATCH', `the mask has ${mask.length} values but the map has ${map.length}`);
  // Blocks of 64 Ki voxels through small functions: V8 optimises those far better than one huge loop.
  return scoreHistogramOfBlocks((visit) => {
    for (let start = 0; start < map.length; start += BLOCK) visit(map, start, mmin(map.length, start + BLOCK), mask, rot);
  }, options);
}

/** scoreHistogram of a map handed over block by block (twice: one pass for the moments, one for the bins), so that
 *  a map read a slab at a time gives the same numbers. */
export function scoreHistogramOfBlocks(blocks: HistogramBlocks, options: Omit<ScoreHistogramOptions, 'mask' | 'rotationIndices'> = {}): ScoreHistogram {
  const bins = options.bins ?? 100;
  if (!(Number.isInteger(bins) && bins >= 1 && bins <= 1e6)) throw invalidOption('bins', 'integer in [1, 1000000]', bins);
  const acc = Float64Array.of(0, Infinity, -Infinity, NaN, 0, 0); // count, lo, hi, shift, sum, sumSq
  blocks((map, start, end, mask, rot) => momentsBlock(map, start, end, mask, rot, acc));
  const count = acc[0]!, lo = acc[1]!, hi = acc[2]!, shift = acc[3]!, sum = acc[4]!, sumSq = acc[5]!;
  const [a, b] = options.range ?? [lo, hi];
  if (count > 0 && !(b >= a)) throw invalidOption('range', '[lo, hi] with lo ≤ hi', `[${a}, ${b}]`);
  const edges = new Float64Array(bins + 1);
  const width = count > 0 ? (b - a) / bins : 0;
  for (let k = 0; k <= bins; k++) edges[k] = a + k * width;
  // integer counters in the hot loop (cheaper increments); the result is Float64Array
  const binCounts = new Uint32Array(bins);
  const fine = new Uint32Array(FINE);
  const fineWidth = hi > lo ? (hi - lo) / FINE : 1;
  const scale = width > 0 ? 1 / width : 0;
  const fineScale = 1 / fineWidth;
  blocks((map, start, end, mask, rot) => binBlock(map, start, end, mask, rot, binCounts, a, b, scale, fine, lo, fineScale));
  const counts = Float64Array.from(binCounts);
  const mean = count > 0 ? shift + sum / count : NaN;
  const std = count > 0 ? sqrt(Math.max(0, sumSq / count - (sum / count) ** 2)) : NaN;
  const fit = fitGaussian(fine, lo, fineWidth, count);
  const fitted = new Float64Array(bins);
  for (let k = 0; k < bins; k++) {
    const x = a + (k + 0.5) * width;
    fitted[k] = fit.peakDensity * exp(-((x - fit.mean) ** 2) / (2 * fit.std * fit.std)) * width;
  }
  return { edges, counts, fitted, count, mean, std, min: count ? lo : NaN, max: count ? hi : NaN, fit, threshold: options.threshold ?? null };
}

function momentsBlock(map: Float32Array, start: number, end: number, mask: Mask, rot: Rot, acc: Float64Array): void {
  let count = 0, lo = acc[1]!, hi = acc[2]!, shift = acc[3]!, sum = 0, sumSq = 0;
  for (let i = start; i < end; i++) {
    const s = map[i]!;
    if (!(s === s) || (mask !== undefined && !(mask[i]! >= 0.5)) || (rot !== undefined && !(rot[i]! >= 0))) continue;
    if (shift !== shift) shift = s;
    const d = s - shift;
    sum += d;
    sumSq += d * d;
    count++;
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  acc[0]! += count; acc[1] = lo; acc[2] = hi; acc[3] = shift; acc[4]! += sum; acc[5]! += sumSq;
}

function binBlock(
  map: Float32Array, start: number, end: number, mask: Mask, rot: Rot,
  counts: Uint32Array, a: number, b: number, scale: number, fine: Uint32Array, lo: number, fineScale: number,
): void {
  const bins = counts.length;
  for (let i = start; i < end; i++) {
    const s = map[i]!;
    if (!(s === s) || (mask !== undefined && !(mask[i]! >= 0.5)) || (rot !== undefined && !(rot[i]! >= 0))) continue;
    // (x | 0) truncates a non-negative x: no call in the hot loop
    if (s >= a && s <= b) {
      const k = ((s - a) * scale) | 0;
      counts[k < bins ? k : bins - 1]!++;
    }
    const f = ((s - lo) * fineScale) | 0;
    fine[f < FINE ? f : FINE - 1]!++;
  }
}

function quantile(fine: Uint32Array, lo: number, w: number, total: number, q: number): number {
  const target = q * total;
  let acc = 0;
  for (let k = 0; k < fine.length; k++) {
    const c = fine[k]!;
    if (acc + c >= target && c > 0) return lo + (k + (target - acc) / c) * w;
    acc += c;
  }
  return lo + fine.length * w;
}

function fitGaussian(fine: Uint32Array, lo: number, w: number, total: number): GaussianFit {
  if (total === 0) return { mean: NaN, std: NaN, peakDensity: 0, method: 'quantiles' };
  const median = quantile(fine, lo, w, total, 0.5);
  const sigma0 = (quantile(fine, lo, w, total, 0.8413447) - quantile(fine, lo, w, total, 0.1586553)) / 2;
  const fallback = (): GaussianFit => {
    const s = sigma0 > 0 ? sigma0 : w;
    return { mean: median, std: s, peakDensity: total / (s * sqrt(2 * Math.PI)), method: 'quantiles' };
  };
  if (!(sigma0 > 0)) return fallback();
  // Weighted least squares of ln(count) = p0 + p1·u + p2·u², u = (x − median)/σ0, weights = counts (Poisson).
  const m = new Float64Array(9);
  const r = new Float64Array(3);
  let used = 0;
  for (let k = 0; k < fine.length; k++) {
    const c = fine[k]!;
    if (c < 1) continue;
    const u = (lo + (k + 0.5) * w - median) / sigma0;
    if (u < -1 || u > 1) continue;
    const basis = [1, u, u * u];
    const y = log(c);
    for (let i = 0; i < 3; i++) {
      r[i]! += c * basis[i]! * y;
      for (let j = 0; j < 3; j++) m[i * 3 + j]! += c * basis[i]! * basis[j]!;
    }
    used++;
  }
  if (used < 5) return fallback();
  const p = solve3(m, r);
  if (p === null || !(p[2] < 0)) return fallback();
  const mu = -p[1] / (2 * p[2]);
  const varU = -1 / (2 * p[2]);
  const fitMean = median + mu * sigma0;
  const fitStd = sqrt(varU) * sigma0;
  if (!(Number.isFinite(fitMean) && fitStd > 0) || Math.abs(mu) > 2) return fallback();
  const peakCount = exp(p[0] + p[1] * mu + p[2] * mu * mu);
  return { mean: fitMean, std: fitStd, peakDensity: peakCount / w, method: 'log-parabola' };
}

/** Solves the symmetric 3×3 system m·p = r by Cramer's rule; null when singular. */
function solve3(m: Float64Array, r: Float64Array): [number, number, number] | null {
  const det = (a: ArrayLike<number>): number =>
    a[0]! * (a[4]! * a[8]! - a[5]! * a[7]!) - a[1]! * (a[3]! * a[8]! - a[5]! * a[6]!) + a[2]! * (a[3]! * a[7]! - a[4]! * a[6]!);
  const d = det(m);
  if (!(Math.abs(d) > 0)) return null;
  const out: number[] = [];
  for (let c = 0; c < 3; c++) {
    const a = Float64Array.from(m);
    for (let row = 0; row < 3; row++) a[row * 3 + c] = r[row]!;
    out.push(det(a) / d);
  }
  return [out[0]!, out[1]!, out[2]!];
}
