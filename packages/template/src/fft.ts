import { TmeError, voxelCount, type Zyx } from '@tme/formats';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/**
 * A small, exact host-side FFT: radix-2 for powers of two, Bluestein's chirp-z for every other length, so any
 * size runs in O(n log n). Used once per job (resampling, whitening, previews), never in the rotation loop.
 */
export class ComplexFft {
  readonly n: number;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly bitReversal: Uint32Array | null;
  private readonly bluestein: BluesteinPlan | null;

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1) throw new TmeError('ERR_TME_UNSUPPORTED_SIZE', `Cannot plan an FFT of length ${n}`);
    this.n = n;
    const pow2 = (n & (n - 1)) === 0;
    if (pow2) {
      this.cos = new Float64Array(n / 2);
      this.sin = new Float64Array(n / 2);
      for (let k = 0; k < n / 2; k++) {
        this.cos[k] = Math.cos((2 * Math.PI * k) / n);
        this.sin[k] = -Math.sin((2 * Math.PI * k) / n);
      }
      this.bitReversal = new Uint32Array(n);
      const bits = Math.round(Math.log2(n));
      for (let i = 0; i < n; i++) {
        let r = 0;
        for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
        this.bitReversal[i] = r;
      }
      this.bluestein = null;
    } else {
      this.cos = new Float64Array(0);
      this.sin = new Float64Array(0);
      this.bitReversal = null;
      this.bluestein = new BluesteinPlan(n);
    }
  }

  /** In place: forward X_j = Σ x_k e^(−2πi jk/n); inverse uses e^(+2πi jk/n) and is NOT scaled by 1/n. */
  transform(re: Float64Array, im: Float64Array, inverse = false): void {
    if (this.bluestein) {
      this.bluestein.transform(re, im, inverse);
      return;
    }
    this.radix2(re, im, inverse);
  }

  private radix2(re: Float64Array, im: Float64Array, inverse: boolean): void {
    const n = this.n;
    const rev = this.bitReversal as Uint32Array;
    for (let i = 0; i < n; i++) {
      const j = rev[i] as number;
      if (j > i) {
        const tr = re[i] as number;
        re[i] = re[j] as number;
        re[j] = tr;
        const ti = im[i] as number;
        im[i] = im[j] as number;
        im[j] = ti;
      }
    }
    const sign = inverse ? -1 : 1;
    for (let size = 2; size <= n; size *= 2) {
      const half = size / 2;
      const step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = this.cos[k * step] as number;
          const wi = sign * (this.sin[k * step] as number);
          const a = start + k;
          const b = a + half;
          const br = re[b] as number;
          const bi = im[b] as number;
          const tr = br * wr - bi * wi;
          const ti = br * wi + bi * wr;
          const ar = re[a] as number;
          const ai = im[a] as number;
          re[b] = ar - tr;
          im[b] = ai - ti;
          re[a] = ar + tr;
          im[a] = ai + ti;
        }
      }
    }
  }
}

class BluesteinPlan {
  private readonly n: number;
  private readonly m: number;
  private readonly inner: ComplexFft;
  /** chirp w_k = exp(−iπ k²/n) */
  private readonly wr: Float64Array;
  private readonly wi: Float64Array;
  /** FFT of the conjugate chirp, wrapped for circular convolution of length m */
  private readonly br: Float64Array;
  private readonly bi: Float64Array;
  private readonly ar: Float64Array;
  private readonly ai: Float64Array;

  constructor(n: number) {
    this.n = n;
    let m = 1;
    while (m < 2 * n - 1) m *= 2;
    this.m = m;
    this.inner = new ComplexFft(m);
    this.wr = new Float64Array(n);
    this.wi = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      // k² mod 2n keeps the angle small and exact for large k.
      const angle = (Math.PI * ((k * k) % (2 * n))) / n;
      this.wr[k] = Math.cos(angle);
      this.wi[k] = -Math.sin(angle);
    }
    this.br = new Float64Array(m);
    this.bi = new Float64Array(m);
    for (let k = 0; k < n; k++) {
      this.br[k] = this.wr[k] as number;
      this.bi[k] = -(this.wi[k] as number);
      if (k > 0) {
        this.br[m - k] = this.wr[k] as number;
        this.bi[m - k] = -(this.wi[k] as number);
      }
    }
    this.inner.transform(this.br, this.bi, false);
    this.ar = new Float64Array(m);
    this.ai = new Float64Array(m);
  }

  transform(re: Float64Array, im: Float64Array, inverse: boolean): void {
    const { n, m, ar, ai } = this;
    const s = inverse ? -1 : 1; // inverse = conj(forward(conj(x)))
    ar.fill(0);
    ai.fill(0);
    for (let k = 0; k < n; k++) {
      const xr = re[k] as number;
      const xi = s * (im[k] as number);
      const wr = this.wr[k] as number;
      const wi = this.wi[k] as number;
      ar[k] = xr * wr - xi * wi;
      ai[k] = xr * wi + xi * wr;
    }
    this.inner.transform(ar, ai, false);
    for (let k = 0; k < m; k++) {
      const xr = ar[k] as number;
      const xi = ai[k] as number;
      const yr = this.br[k] as number;
      const yi = this.bi[k] as number;
      ar[k] = xr * yr - xi * yi;
      ai[k] = xr * yi + xi * yr;
    }
    this.inner.transform(ar, ai, true);
    for (let k = 0; k < n; k++) {
      const cr = (ar[k] as number) / m;
      const ci = (ai[k] as number) / m;
      const wr = this.wr[k] as number;
      const wi = this.wi[k] as number;
      re[k] = cr * wr - ci * wi;
      im[k] = s * (cr * wi + ci * wr);
    }
  }
}

const plans = new Map<number, ComplexFft>();

/** A cached plan per length (plans hold only twiddles; they are safe to share). */
export function fftPlan(n: number): ComplexFft {
  let plan = plans.get(n);
  if (!plan) {
    plan = new ComplexFft(n);
    plans.set(n, plan);
  }
  return plan;
}

/** A complex half spectrum of a real (nz, ny, nx) volume: shape (nz, ny, nx/2+1), x fastest, unshifted. */
export interface HalfSpectrum {
  re: Float64Array;
  im: Float64Array;
  /** Real-space shape the spectrum belongs to. */
  realShape: Zyx;
}

/** (nz, ny, nx) → (nz, ny, floor(nx/2)+1): the layout of every Fourier filter in tme. */
export function halfSpectrumShape(shape: Zyx): Zyx {
  return [shape[0], shape[1], Math.floor(shape[2] / 2) + 1];
}

/** Transforms every line along `axis` (0 = z, 1 = y, 2 = x) of a complex (nz, ny, nx) array in place. */
function transformAxis(re: Float64Array, im: Float64Array, shape: Zyx, axis: 0 | 1 | 2, inverse: boolean): void {
  const [nz, ny, nx] = shape;
  const n = shape[axis];
  if (n === 1) return;
  const plan = fftPlan(n);
  const lr = new Float64Array(n);
  const li = new Float64Array(n);
  const stride = axis === 2 ? 1 : axis === 1 ? nx : nx * ny;
  const outerA = axis === 0 ? ny : nz;
  const outerB = axis === 2 ? ny : nx;
  for (let a = 0; a < outerA; a++) {
    for (let b = 0; b < outerB; b++) {
      const base = axis === 0 ? a * nx + b : axis === 1 ? a * nx * ny + b : (a * ny + b) * nx;
      for (let k = 0; k < n; k++) {
        lr[k] = re[base + k * stride] as number;
        li[k] = im[base + k * stride] as number;
      }
      plan.transform(lr, li, inverse);
      for (let k = 0; k < n; k++) {
        re[base + k * stride] = lr[k] as number;
        im[base + k * stride] = li[k] as number;
      }
    }
  }
}

/** Forward 3D real FFT (unnormalised, numpy.fft.rfftn convention) into the half-spectrum layout. */
export function rfftn(data: ArrayLike<number>, shape: Zyx): HalfSpectrum {
  const [nz, ny, nx] = shape;
  if (data.length !== voxelCount(shape)) {
    throw new TmeError('ERR_TME_MISMATCH', `rfftn: ${data.length} values do not fill shape (${shape.join(', ')})`);
  }
  const hx = Math.floor(nx / 2) + 1;
  const half: Zyx = [nz, ny, hx];
  const re = new Float64Array(nz * ny * hx);
  const im = new Float64Array(nz * ny * hx);
  const plan = fftPlan(nx);
  const lr = new Float64Array(nx);
  const li = new Float64Array(nx);
  for (let row = 0; row < nz * ny; row++) {
    for (let x = 0; x < nx; x++) lr[x] = data[row * nx + x] as number;
    li.fill(0);
    plan.transform(lr, li, false);
    for (let x = 0; x < hx; x++) {
      re[row * hx + x] = lr[x] as number;
      im[row * hx + x] = li[x] as number;
    }
  }
  transformAxis(re, im, half, 1, false);
  transformAxis(re, im, half, 0, false);
  return { re, im, realShape: [nz, ny, nx] };
}

/** Inverse of rfftn (scaled by 1/N, numpy.fft.irfftn convention). Does not modify `spectrum`. */
export function irfftn(spectrum: HalfSpectrum): Float64Array {
  const [nz, ny, nx] = spectrum.realShape;
  const hx = Math.floor(nx / 2) + 1;
  const half: Zyx = [nz, ny, hx];
  const re = Float64Array.from(spectrum.re);
  const im = Float64Array.from(spectrum.im);
  transformAxis(re, im, half, 0, true);
  transformAxis(re, im, half, 1, true);
  const out = new Float64Array(nz * ny * nx);
  const plan = fftPlan(nx);
  const lr = new Float64Array(nx);
  const li = new Float64Array(nx);
  const scale = 1 / (nz * ny * nx);
  for (let row = 0; row < nz * ny; row++) {
    // Each x line is now the 1D spectrum of a real line: rebuild the negative half by Hermitian symmetry.
    for (let x = 0; x < hx; x++) {
      lr[x] = re[row * hx + x] as number;
      li[x] = im[row * hx + x] as number;
    }
    for (let x = hx; x < nx; x++) {
      lr[x] = re[row * hx + (nx - x)] as number;
      li[x] = -(im[row * hx + (nx - x)] as number);
    }
    plan.transform(lr, li, true);
    for (let x = 0; x < nx; x++) out[row * nx + x] = (lr[x] as number) * scale;
  }
  return out;
}

/** Signed frequency index of array index k on an axis of length n: k for k ≤ n/2, else k − n. */
export function signedIndex(k: number, n: number): number {
  return k <= n / 2 ? k : k - n;
}

/**
 * Spatial frequencies (1/Å) of the indices along one axis. `half` gives the x axis of the half spectrum
 * (0..n/2 only). Index k ↔ k/n cycles/voxel for k ≤ n/2, else (k − n)/n; divided by the voxel size.
 */
export function axisFrequencies(n: number, voxelSize: number, half = false): Float64Array {
  const count = half ? Math.floor(n / 2) + 1 : n;
  const out = new Float64Array(count);
  for (let k = 0; k < count; k++) out[k] = signedIndex(k, n) / (n * voxelSize);
  return out;
}

/** The half spectrum's shape of `shape` and the spatial frequencies (1/Å) of its z, y and x indices: what every
 *  filter in the half-spectrum layout loops over. */
export function halfSpectrumAxes(shape: Zyx, voxelSize: Zyx): { half: Zyx; fz: Float64Array; fy: Float64Array; fx: Float64Array } {
  return {
    half: halfSpectrumShape(shape),
    fz: axisFrequencies(shape[0], voxelSize[0]),
    fy: axisFrequencies(shape[1], voxelSize[1]),
    fx: axisFrequencies(shape[2], voxelSize[2], true),
  };
}

