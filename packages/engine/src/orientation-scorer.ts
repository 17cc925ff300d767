import { TmeError, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import { extractRegion } from './padding';
import { prepareJob, type MatchJob, type PreparedJob } from './prepare';
import { boxCentre, rotateBox } from './rotate';

/** Scores of each rotation (9 values each, xyz frame) with the template centred at one target voxel (z, y, x). */
export type OrientationScorer = (position: Zyx, rotations: Float64Array) => Float32Array;

/** Relative to the target's variance, as the search judges flat regions (native kFlatVariance). */
const FLAT = 1e-4;

/** A rotated template filtered on the job's filter grid, as the search does it (box centre at index 0). */
function filterRotated(p: PreparedJob, t: Float64Array): Float64Array {
  const h = p.templateFilter;
  if (!h) return t;
  const g = p.filterShape;
  const box = p.templateShape;
  const c = boxCentre(box);
  const grid = new Float32Array(g[0] * g[1] * g[2]);
  const at = (z: number, y: number, x: number): number =>
    ((((z - c[0]) + g[0]) % g[0]) * g[1] + (((y - c[1]) + g[1]) % g[1])) * g[2] + (((x - c[2]) + g[2]) % g[2]);
  let i = 0;
  for (let z = 0; z < box[0]; z++) for (let y = 0; y < box[1]; y++) for (let x = 0; x < box[2]; x++, i++) grid[at(z, y, x)] = t[i] as number;
  const spectrum = native.fftForward('cpu', grid, g);
  for (let k = 0; k < h.length; k++) {
    spectrum[2 * k] = (spectrum[2 * k] as number) * (h[k] as number);
    spectrum[2 * k + 1] = (spectrum[2 * k + 1] as number) * (h[k] as number);
  }
  const back = native.fftInverse('cpu', spectrum, g);
  const out = new Float64Array(t.length);
  i = 0;
  for (let z = 0; z < box[0]; z++) for (let y = 0; y < box[1]; y++) for (let x = 0; x < box[2]; x++, i++) out[i] = back[at(z, y, x)] as number;
  return out;
}

/**
 * Re-scores rotations at single positions with the job's own score, filter and preprocessing — what a local
 * orientation search around a pick needs, at O(template box) per rotation instead of a whole FFT. Each rotated
 * template is filtered on its own grid and normalised under its mask exactly as the search does, then summed
 * directly against the target over the box.
 * Scores: cc (and lcc), flc-sphere (and corr, cam), flc. mcc is not offered (it needs whole-tile overlaps).
 */
export function createOrientationScorer(job: MatchJob): OrientationScorer {
  const p = prepareJob(job);
  const score = p.plan.backendScore;
  if (score === 'mcc') throw new TmeError('ERR_TME_UNSUPPORTED', 'orientation refinement does not support mcc; use flc or flc-sphere');
  const box = p.templateShape;
  const c = boxCentre(box);
  // The untiled search's geometry: the target continued by the padding mode on every side.
  const start: Zyx = [-c[0], -c[1], -c[2]];
  const grid: Zyx = [p.targetShape[0] + box[0] - 1, p.targetShape[1] + box[1] - 1, p.targetShape[2] + box[2] - 1];
  const raw = extractRegion(p.target, p.targetShape, start, grid, p.padTarget, p.fillValue);
  const flat = p.targetVariance > 0 ? FLAT * p.targetVariance : Infinity;
  const [, gy, gx] = grid;
  const [bz, by, bx] = box;

  /** Σ_p w(p)·a(x + p − c) over the box, on the padded grid (x given in target voxels). */
  const boxSum = (a: Float32Array, w: ArrayLike<number>, x: Zyx, square = false, offset = 0): number => {
    let s = 0;
    for (let z = 0; z < bz; z++) {
      for (let y = 0; y < by; y++) {
        const row = ((x[0] + z) * gy + (x[1] + y)) * gx + x[2];
        const wrow = (z * by + y) * bx;
        for (let q = 0; q < bx; q++) {
          const v = (a[row + q] as number) - offset;
          s += (w[wrow + q] as number) * (square ? v * v : v);
        }
      }
    }
    return s;
  };
  const normalise = (t: Float64Array, m: ArrayLike<number>): Float64Array => {
    let n = 0; let mean = 0;
    for (let i = 0; i < t.length; i++) { n += m[i] as number; mean += (m[i] as number) * (t[i] as number); }
    mean /= n;
    let v = 0;
    for (let i = 0; i < t.length; i++) v += (m[i] as number) * ((t[i] as number) - mean) ** 2;
    const sd = Math.sqrt(v / n);
    const out = new Float64Array(t.length);
    if (sd > 0) for (let i = 0; i < t.length; i++) out[i] = ((m[i] as number) * ((t[i] as number) - mean)) / sd;
    return out;
  };
  const localSigmaTimesN = (m: ArrayLike<number>, x: Zyx): number => {
    let n = 0;
    for (let i = 0; i < m.length; i++) n += m[i] as number;
    // Centred on the target's mean, as the search correlates it (less cancellation in E f² − (E f)²).
    const s1 = boxSum(raw, m, x, false, p.targetMean) / n;
    const s2 = boxSum(raw, m, x, true, p.targetMean) / n;
    const variance = s2 - s1 * s1;
    return variance > flat ? n * Math.sqrt(variance) : 0;
  };

  return (position, rotations) => {
    if (!position.every((v, a) => Number.isInteger(v) && v >= 0 && v < (p.targetShape[a] as number))) {
      throw new TmeError('ERR_TME_INVALID_OPTION', `Expected a voxel inside the target for position but received (${position.join(', ')})`);
    }
    const count = rotations.length / 9;
    const out = new Float32Array(count);
    const fixedNorm = score === 'flc-sphere' ? localSigmaTimesN(p.mask, position) : 1;
    for (let r = 0; r < count; r++) {
      const R = rotations.subarray(9 * r, 9 * r + 9);
      const t = filterRotated(p, rotateBox(p.template, box, R, p.interpolation));
      const clip = (v: number): number => Math.max(-1, Math.min(1, v));
      if (score === 'cc') {
        out[r] = boxSum(raw, t, position);
      } else if (score === 'flc-sphere') {
        out[r] = fixedNorm > 0 ? clip(boxSum(raw, normalise(t, p.mask), position) / fixedNorm) : 0;
      } else {
        const m = rotateBox(p.mask, box, R, p.interpolation);
        const norm = localSigmaTimesN(m, position);
        out[r] = norm > 0 ? clip(boxSum(raw, normalise(t, m), position) / norm) : 0;
      }
    }
    return out;
  };
}
