import { TmeError, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import { filterFor } from './match';
import { extractRegion } from './padding';
import { prepareJob, type MatchJob } from './prepare';
import { boxCentre, rotateBox } from './rotate';

/** Scores of each rotation (9 values each, xyz frame) with the template centred at one target voxel (z, y, x). */
export type OrientationScorer = (position: Zyx, rotations: Float64Array) => Float32Array;

const FLAT = 1e-6;

/**
 * Re-scores rotations at single positions with the job's own score, filter and preprocessing — what a local
 * orientation search around a pick needs, at O(template box) per rotation instead of a whole FFT.
 *
 * It rests on the filter being real and even in k (wedge, CTF, band-pass and whitening all are): correlating the
 * target with the filtered template equals correlating the filtered target with the template, so the target is
 * filtered once (on the same padded grid an untiled search uses) and each rotation is a direct sum over its box.
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
  const shape = native.nextFastShape([p.targetShape[0] + box[0] - 1, p.targetShape[1] + box[1] - 1, p.targetShape[2] + box[2] - 1]);
  const grid: Zyx = [shape[0], shape[1], shape[2]];
  const raw = extractRegion(p.target, p.targetShape, start, grid, p.padTarget, p.fillValue);
  let filtered = raw;
  const h = filterFor(p, grid);
  if (h) {
    const spectrum = native.fftForward('cpu', raw, grid);
    for (let i = 0; i < h.length; i++) {
      spectrum[2 * i] = (spectrum[2 * i] as number) * (h[i] as number);
      spectrum[2 * i + 1] = (spectrum[2 * i + 1] as number) * (h[i] as number);
    }
    filtered = native.fftInverse('cpu', spectrum, grid);
  }
  const [gz, gy, gx] = grid;
  const [bz, by, bx] = box;

  /** Σ_p w(p)·a(x + p − c) over the box, on the padded grid (x given in target voxels). */
  const boxSum = (a: Float32Array, w: ArrayLike<number>, x: Zyx, square = false): number => {
    let s = 0;
    for (let z = 0; z < bz; z++) {
      for (let y = 0; y < by; y++) {
        const row = ((x[0] + z) * gy + (x[1] + y)) * gx + x[2];
        const wrow = (z * by + y) * bx;
        for (let q = 0; q < bx; q++) {
          const v = a[row + q] as number;
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
    const s1 = boxSum(raw, m, x) / n;
    const s2 = boxSum(raw, m, x, true) / n;
    const variance = s2 - s1 * s1;
    return variance > FLAT * s2 ? n * Math.sqrt(variance) : 0;
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
      const t = rotateBox(p.template, box, R, p.interpolation);
      if (score === 'cc') {
        out[r] = boxSum(filtered, t, position);
      } else if (score === 'flc-sphere') {
        out[r] = fixedNorm > 0 ? boxSum(filtered, normalise(t, p.mask), position) / fixedNorm : 0;
      } else {
        const m = rotateBox(p.mask, box, R, p.interpolation);
        const norm = localSigmaTimesN(m, position);
        out[r] = norm > 0 ? boxSum(filtered, normalise(t, m), position) / norm : 0;
      }
    }
    return out;
  };
}
