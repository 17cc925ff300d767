import * as os from 'node:os';
import { TmeError, invalidOption, type Zyx } from '@tme/formats';
import type {
  BackendMatchJob, BackendMatchResult, BackendRunOptions, DeviceId, DeviceInfo, DeviceSpec, MatchBackend, MemoryQuery,
} from './backend';
import { applyHalfSpectrumFilter } from './dft';
import { defaultMemoryEstimate } from './memory-model';
import { boxCentre, rotateBox } from './rotate';
import { nextSmoothSize } from './fast-size';

/**
 * The reference backend: the same job → result contract as the native addon, computed by direct summation in
 * float64 (and a plain DFT where a Fourier filter is given). Slow (O(tile · template) per rotation and term) and
 * therefore for small volumes only; every native score is checked against it.
 *
 * The definitions it implements are the contract the native kernels must meet (README "Scores"):
 *  - placement: score(x) = Σ_p f((x + p − c) mod N) · K(p), c = floor(box/2), circular on the tile N;
 *  - with a filter H the rotated template is filtered on its own grid G (filterShape ≥ box): t_R' =
 *    crop(IDFT_G(DFT_G(place_G(t_R)) · H)), the box placed with its centre at index 0 and read back from there; every
 *    score below uses t_R' for t_R, so the kernel has the box's support whatever the tile;
 *  - flc-sphere: K = m·(t_R − μ)/σ (μ, σ weighted by the UNROTATED mask m), score = c(x) / (n · σ_f(x));
 *  - flc: the same with the rotated mask m_R;
 *  - mcc: Padfield's masked NCC with the target mask tm: template kernels t_R·m_R and t_R²·m_R, target f·tm,
 *    overlap Σ tm·m_R;
 *  - normalised scores are clipped to [−1, 1]; flat regions (local variance of the target ≤ 1e−4 × the target's
 *    variance, `targetVariance` or the tile's own) and mcc overlaps < 0.3 · Σ m_R score 0.
 */

export interface ReferenceBackendOptions {
  /** Memory the single reference "device" pretends to have, in bytes; default half the host memory. */
  memoryBytes?: number;
  /** Whether nextFastShape rounds up to 2,3,5,7-smooth sizes like an FFT library; default true. */
  smoothSizes?: boolean;
}

/** Relative to the target's variance: the native kFlatVariance. */
const FLAT = 1e-4;
const MCC_OVERLAP = 0.3;

/** out(x) = Σ_p K(p) · f((x + p − c) mod N) over the template box. */
function correlateBox(f: Float64Array, n: Zyx, k: Float64Array, box: Zyx): Float64Array {
  const [nz, ny, nx] = n;
  const [bz, by, bx] = box;
  const [cz, cy, cx] = boxCentre(box);
  const out = new Float64Array(f.length);
  // Iterate over the non-zero kernel taps; each tap adds a shifted copy of f.
  for (let pz = 0; pz < bz; pz++) {
    for (let py = 0; py < by; py++) {
      for (let px = 0; px < bx; px++) {
        const w = k[(pz * by + py) * bx + px] as number;
        if (w === 0) continue;
        const oz = (((pz - cz) % nz) + nz) % nz;
        const oy = (((py - cy) % ny) + ny) % ny;
        const ox = (((px - cx) % nx) + nx) % nx;
        for (let z = 0; z < nz; z++) {
          const sz = (z + oz) % nz;
          for (let y = 0; y < ny; y++) {
            const sy = (y + oy) % ny;
            const row = (z * ny + y) * nx;
            const srow = (sz * ny + sy) * nx;
            for (let x = 0; x < nx; x++) out[row + x] = (out[row + x] as number) + w * (f[srow + ((x + ox) % nx)] as number);
          }
        }
      }
    }
  }
  return out;
}

/** The box kernel placed on the tile grid at offsets (p − c) mod N. */
function placeOnGrid(k: Float64Array, box: Zyx, n: Zyx): Float64Array {
  const [nz, ny, nx] = n;
  const [bz, by, bx] = box;
  const [cz, cy, cx] = boxCentre(box);
  const grid = new Float64Array(nz * ny * nx);
  for (let pz = 0; pz < bz; pz++) {
    for (let py = 0; py < by; py++) {
      for (let px = 0; px < bx; px++) {
        const qz = (((pz - cz) % nz) + nz) % nz;
        const qy = (((py - cy) % ny) + ny) % ny;
        const qx = (((px - cx) % nx) + nx) % nx;
        const i = (qz * ny + qy) * nx + qx;
        grid[i] = (grid[i] as number) + (k[(pz * by + py) * bx + px] as number);
      }
    }
  }
  return grid;
}

/** The inverse of placeOnGrid for a grid at least as large as the box: the box's values read back. */
function cropFromGrid(grid: Float64Array, box: Zyx, n: Zyx): Float64Array {
  const [, ny, nx] = n;
  const [bz, by, bx] = box;
  const [cz, cy, cx] = boxCentre(box);
  const out = new Float64Array(bz * by * bx);
  for (let pz = 0; pz < bz; pz++) {
    for (let py = 0; py < by; py++) {
      for (let px = 0; px < bx; px++) {
        const qz = (pz - cz + n[0]) % n[0];
        const qy = (py - cy + ny) % ny;
        const qx = (px - cx + nx) % nx;
        out[(pz * by + py) * bx + px] = grid[(qz * ny + qy) * nx + qx] as number;
      }
    }
  }
  return out;
}

/** A rotated template filtered on its own grid (the contract above); unchanged without a filter. */
export function filterTemplateBox(t: Float64Array, box: Zyx, filter: Float32Array | undefined, filterShape: Zyx | undefined): Float64Array {
  if (!filter) return t;
  const grid = filterShape ?? box;
  return cropFromGrid(applyHalfSpectrumFilter(placeOnGrid(t, box, grid), grid, filter), box, grid);
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] as number;
  return s;
}

/** m·(t − μ)/σ with μ, σ weighted by m; zero if the template is flat under the mask. */
function normaliseUnderMask(t: Float64Array, m: ArrayLike<number>): Float64Array {
  const n = sum(m);
  let mean = 0;
  for (let i = 0; i < t.length; i++) mean += (m[i] as number) * (t[i] as number);
  mean /= n;
  let v = 0;
  for (let i = 0; i < t.length; i++) v += (m[i] as number) * ((t[i] as number) - mean) ** 2;
  const sd = Math.sqrt(v / n);
  const out = new Float64Array(t.length);
  if (!(sd > 0)) return out;
  for (let i = 0; i < t.length; i++) out[i] = ((m[i] as number) * ((t[i] as number) - mean)) / sd;
  return out;
}

export class ReferenceBackend implements MatchBackend {
  readonly name = 'reference';
  private readonly memoryBytes: number;
  private readonly smoothSizes: boolean;

  constructor(options: ReferenceBackendOptions = {}) {
    this.memoryBytes = options.memoryBytes ?? Math.floor(os.totalmem() / 2);
    this.smoothSizes = options.smoothSizes ?? true;
  }

  listDevices(): DeviceInfo[] {
    return [{ index: 'cpu', name: 'reference (direct summation, TypeScript)', kind: 'cpu', memoryBytes: this.memoryBytes }];
  }

  pickDevice(spec: DeviceSpec): DeviceId {
    if (spec === 'auto' || spec === 'cpu') return 'cpu';
    throw new TmeError('ERR_TME_NO_DEVICE', `no device matches ${JSON.stringify(spec)}; the reference backend has only the CPU`);
  }

  nextFastShape(shape: Zyx): Zyx {
    if (!this.smoothSizes) return [shape[0], shape[1], shape[2]];
    return [nextSmoothSize(shape[0]), nextSmoothSize(shape[1]), nextSmoothSize(shape[2])];
  }

  estimateMemory(query: MemoryQuery): number {
    return defaultMemoryEstimate(query);
  }

  async runMatch(job: BackendMatchJob, options: BackendRunOptions = {}): Promise<BackendMatchResult> {
    if (job.spectrumPrecision === 'half') throw invalidOption('spectrumPrecision', 'single (the reference backend is float64 on the CPU)', 'half');
    const started = Date.now();
    const n = job.targetShape;
    const box = job.templateShape;
    const voxels = n[0] * n[1] * n[2];
    const count = job.rotationEnd - job.rotationStart;
    const f = Float64Array.from(job.target);
    const mask = job.mask;
    const nMask = sum(mask);
    const scores = job.initialScores ? Float32Array.from(job.initialScores) : new Float32Array(voxels).fill(-Infinity);
    const indices = job.initialIndices ? Int32Array.from(job.initialIndices) : new Int32Array(voxels).fill(-1);
    const perRotationMax = new Float32Array(count).fill(-Infinity);
    const perRotationSum = new Float64Array(count);
    const perRotationSumSq = new Float64Array(count);
    let counted = 0;
    const statsMask = job.statsMask;
    for (let i = 0; i < voxels; i++) if (!statsMask || statsMask[i]) counted++;

    const correlateTemplate = (source: Float64Array, kernel: Float64Array): Float64Array => correlateBox(source, n, kernel, box);
    const fSq = f.map((v) => v * v);
    let targetVariance = job.targetVariance;
    if (targetVariance === undefined) {
      const m = sum(f) / voxels;
      targetVariance = f.reduce((a, v) => a + (v - m) ** 2, 0) / voxels;
    }
    // A constant target is flat everywhere.
    const flat = targetVariance > 0 ? FLAT * targetVariance : Infinity;

    // Rotation-invariant local statistics of the target under the unrotated mask (flc-sphere).
    let s1: Float64Array | undefined;
    let s2: Float64Array | undefined;
    const maskF64 = Float64Array.from(mask);
    if (job.score === 'flc-sphere') {
      s1 = correlateBox(f, n, maskF64, box);
      s2 = correlateBox(fSq, n, maskF64, box);
    }
    let tm: Float64Array | undefined;
    let fMasked: Float64Array | undefined;
    if (job.score === 'mcc') {
      if (!job.targetMask) throw new TmeError('ERR_TME_INVALID_OPTION', 'the mcc score needs a target mask');
      tm = Float64Array.from(job.targetMask);
      fMasked = f.map((v, i) => v * (tm as Float64Array)[i]!);
    }

    const localFlc = (c: Float64Array, a: Float64Array, b: Float64Array, nm: number): Float64Array => {
      const out = new Float64Array(voxels);
      for (let i = 0; i < voxels; i++) {
        const mean = (a[i] as number) / nm;
        const meanSq = (b[i] as number) / nm;
        const v = meanSq - mean * mean;
        out[i] = !(v > flat) ? 0 : Math.max(-1, Math.min(1, (c[i] as number) / (nm * Math.sqrt(v))));
      }
      return out;
    };

    for (let k = 0; k < count; k++) {
      if (options.signal?.aborted) throw new TmeError('ERR_TME_CANCELLED', 'matching was cancelled');
      const r = job.rotationStart + k;
      const rotation = job.rotations.subarray(9 * r, 9 * r + 9);
      const tR = filterTemplateBox(rotateBox(job.template, box, rotation, job.interpolation), box, job.filter, job.filterShape);
      let map: Float64Array;
      if (job.score === 'cc') {
        map = correlateTemplate(f, tR);
      } else if (job.score === 'flc-sphere') {
        map = localFlc(correlateTemplate(f, normaliseUnderMask(tR, mask)), s1 as Float64Array, s2 as Float64Array, nMask);
      } else if (job.score === 'flc') {
        const mR = rotateBox(mask, box, rotation, job.interpolation);
        const nR = sum(mR);
        const a = correlateBox(f, n, mR, box);
        const b = correlateBox(fSq, n, mR, box);
        map = localFlc(correlateTemplate(f, normaliseUnderMask(tR, mR)), a, b, nR);
      } else {
        const mR = rotateBox(mask, box, rotation, job.interpolation);
        const nR = sum(mR);
        const tmask = tm as Float64Array;
        const fm = fMasked as Float64Array;
        const g = tR.map((v, i) => v * mR[i]!);
        const numA = correlateTemplate(fm, g);
        const fOverlap = correlateBox(fm, n, mR, box);
        const tOverlap = correlateTemplate(tmask, g);
        const overlap = correlateBox(tmask, n, mR, box);
        const fEnergy = correlateBox(fm.map((v) => v * v), n, mR, box);
        const tEnergy = correlateTemplate(tmask, tR.map((v, i) => v * v * mR[i]!));
        map = new Float64Array(voxels);
        for (let i = 0; i < voxels; i++) {
          const o = overlap[i] as number;
          if (!(o >= MCC_OVERLAP * nR) || !(o > 0)) continue;
          const fo = fOverlap[i] as number;
          const to = tOverlap[i] as number;
          const fe = fEnergy[i] as number;
          const te = tEnergy[i] as number;
          const fVar = fe - (fo * fo) / o;
          const tVar = te - (to * to) / o;
          if (!(fVar > flat * o) || tVar <= 1e-5 * te || !(tVar > 0)) continue;
          const v = ((numA[i] as number) - (fo * to) / o) / Math.sqrt(fVar * tVar);
          map[i] = Math.max(-1, Math.min(1, v));
        }
      }
      let max = -Infinity;
      let s = 0;
      let ss = 0;
      for (let i = 0; i < voxels; i++) {
        const v = Math.fround(map[i] as number);
        if (!statsMask || statsMask[i]) {
          if (v > max) max = v;
          s += v;
          ss += v * v;
        }
        if (v > (scores[i] as number)) {
          scores[i] = v;
          indices[i] = r;
        }
      }
      perRotationMax[k] = max;
      perRotationSum[k] = s;
      perRotationSumSq[k] = ss;
      options.onProgress?.({ done: k + 1, total: count });
      // Let timers and abort listeners run between rotations, as the native worker does.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    let total = 0;
    let totalSq = 0;
    for (let k = 0; k < count; k++) {
      total += perRotationSum[k] as number;
      totalSq += perRotationSumSq[k] as number;
    }
    return {
      scores,
      indices,
      stats: { sum: total, sumSq: totalSq, count: counted * count, perRotationMax, perRotationSum, perRotationSumSq },
      timings: { totalMs: Date.now() - started },
      device: this.listDevices()[0]!.name,
    };
  }
}
