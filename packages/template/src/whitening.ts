import { invalidOption, type Volume, type VolumeRegionSource, type Zyx } from '@tme/formats';
import { axisFrequencies, halfSpectrumAxes, halfSpectrumShape, rfftn } from './fft';
import { checkRows, type FilterRows } from './rows';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/** A radial profile: values at evenly spaced spatial frequencies (1/Å), bin i centred on i·step. */
export interface RadialProfile {
  /** Bin spacing (1/Å). */
  step: number;
  values: Float64Array;
}

export interface WhiteningOptions {
  /** Edge (voxels) of the cubic sub-boxes whose periodograms are averaged (Welch). Default 64, capped by the target. */
  boxSize?: number;
  /** Most sub-boxes to average, spread evenly over the target. Default 27. */
  maxBoxes?: number;
}

/**
 * Rotationally averaged power spectrum of `target`, estimated as the mean periodogram of evenly spread
 * sub-boxes (each mean-subtracted and tapered), so it costs a few small FFTs whatever the tomogram size. A target on
 * disk (a VolumeRegionSource: matched out of core) has only those sub-boxes read, and gives the same profile.
 */
export function radialPowerSpectrum(target: Volume | VolumeRegionSource, options: WhiteningOptions = {}): RadialProfile {
  const want = options.boxSize ?? 64;
  if (!(Number.isInteger(want) && want >= 4)) throw invalidOption('boxSize', 'integer ≥ 4', want);
  const maxBoxes = options.maxBoxes ?? 27;
  if (!(Number.isInteger(maxBoxes) && maxBoxes >= 1)) throw invalidOption('maxBoxes', 'integer ≥ 1', maxBoxes);
  const [nz, ny, nx] = target.shape;
  const box: Zyx = [Math.min(want, nz), Math.min(want, ny), Math.min(want, nx)];
  const vs = target.voxelSize;
  const step = 1 / Math.max(box[0] * vs[0], box[1] * vs[1], box[2] * vs[2]);
  const fz = axisFrequencies(box[0], vs[0]);
  const fy = axisFrequencies(box[1], vs[1]);
  const fx = axisFrequencies(box[2], vs[2], true);
  const kmax = Math.hypot(fz.reduce((a, b) => Math.max(a, Math.abs(b)), 0), fy.reduce((a, b) => Math.max(a, Math.abs(b)), 0), fx[fx.length - 1] as number);
  const nbins = Math.ceil(kmax / step) + 2;
  const sums = new Float64Array(nbins);
  const counts = new Float64Array(nbins);
  const perAxis = Math.max(1, Math.floor(Math.cbrt(maxBoxes)));
  const starts = (n: number, b: number) => {
    const k = Math.min(perAxis, Math.max(1, Math.floor(n / b)));
    return Array.from({ length: k }, (_, i) => (k === 1 ? Math.floor((n - b) / 2) : Math.round((i * (n - b)) / (k - 1))));
  };
  const taper = box.map((n) => Float64Array.from({ length: n }, (_, i) => (n < 8 ? 1 : Math.sin((Math.PI * (i + 0.5)) / n) ** 2)));
  const [tz, ty, tx] = taper as [Float64Array, Float64Array, Float64Array];
  const sub = new Float64Array(box[0] * box[1] * box[2]);
  const half = halfSpectrumShape(box);
  for (const z0 of starts(nz, box[0]))
    for (const y0 of starts(ny, box[1]))
      for (const x0 of starts(nx, box[2])) {
        let mean = 0;
        let i = 0;
        // On disk the sub-box is read alone, then indexed as its own volume.
        const read = 'readRegion' in target ? target.readRegion([z0, y0, x0], box) : undefined;
        const data = read ?? (target as Volume).data;
        const [oz, oy, ox, sy, sx] = read ? [0, 0, 0, box[1], box[2]] : [z0, y0, x0, ny, nx];
        for (let z = 0; z < box[0]; z++)
          for (let y = 0; y < box[1]; y++)
            for (let x = 0; x < box[2]; x++, i++) {
              const v = data[((oz + z) * sy + (oy + y)) * sx + (ox + x)] as number;
              sub[i] = v;
              mean += v;
            }
        mean /= sub.length;
        i = 0;
        for (let z = 0; z < box[0]; z++)
          for (let y = 0; y < box[1]; y++)
            for (let x = 0; x < box[2]; x++, i++) sub[i] = ((sub[i] as number) - mean) * (tz[z] as number) * (ty[y] as number) * (tx[x] as number);
        const spec = rfftn(sub, box);
        let j = 0;
        for (let z = 0; z < half[0]; z++)
          for (let y = 0; y < half[1]; y++)
            for (let x = 0; x < half[2]; x++, j++) {
              const k = Math.hypot(fz[z] as number, fy[y] as number, fx[x] as number);
              const b = Math.round(k / step);
              // Half-spectrum columns other than x = 0 and the Nyquist column stand for two full-spectrum points.
              const w = x === 0 || 2 * x === box[2] ? 1 : 2;
              sums[b] = (sums[b] as number) + w * ((spec.re[j] as number) ** 2 + (spec.im[j] as number) ** 2);
              counts[b] = (counts[b] as number) + w;
            }
      }
  const values = new Float64Array(nbins);
  for (let b = 0; b < nbins; b++) values[b] = (counts[b] as number) > 0 ? (sums[b] as number) / (counts[b] as number) : NaN;
  // Fill empty bins (fine steps on coarse axes) from their neighbours so interpolation never meets a hole.
  for (let b = 0; b < nbins; b++) if (Number.isNaN(values[b])) values[b] = b > 0 ? (values[b - 1] as number) : 0;
  return { step, values };
}

/** Linear interpolation of a radial profile at |k| (1/Å); beyond the last bin, the last value. */
export function sampleProfile(profile: RadialProfile, k: number): number {
  const t = k / profile.step;
  const i = Math.floor(t);
  const v = profile.values;
  if (i >= v.length - 1) return v[v.length - 1] as number;
  const f = t - i;
  return (v[i] as number) * (1 - f) + (v[i + 1] as number) * f;
}

/**
 * The whitening profile of a target: 1/√P(k) of its radial power spectrum, normalised to a maximum of 1 over
 * k > 0 (the DC bin, dominated by the mean, is set to 0). Apply the same filter to target and template.
 */
export function whiteningProfile(target: Volume | VolumeRegionSource, options: WhiteningOptions = {}): RadialProfile {
  const power = radialPowerSpectrum(target, options);
  const values = new Float64Array(power.values.length);
  let max = 0;
  for (let b = 1; b < values.length; b++) {
    const p = power.values[b] as number;
    values[b] = p > 0 ? 1 / Math.sqrt(p) : 0;
    max = Math.max(max, values[b] as number);
  }
  if (max > 0) for (let b = 1; b < values.length; b++) values[b] = (values[b] as number) / max;
  return { step: power.step, values };
}

/** A radial profile laid out as a filter in the half-spectrum layout of `shape`; `rows`: only the ky rows [y0, y1) of
 *  every kz plane (FilterRows). */
export function radialFilter(profile: RadialProfile, shape: Zyx, voxelSize: Zyx, rows: FilterRows = [0, shape[1]]): Float32Array {
  const { half, fz, fy, fx } = halfSpectrumAxes(shape, voxelSize);
  const [y0, y1] = checkRows(rows, shape);
  const out = new Float32Array(half[0] * (y1 - y0) * half[2]);
  let i = 0;
  for (let z = 0; z < half[0]; z++)
    for (let y = y0; y < y1; y++)
      for (let x = 0; x < half[2]; x++, i++) out[i] = sampleProfile(profile, Math.hypot(fz[z] as number, fy[y] as number, fx[x] as number));
  return out;
}

/** Whitening filter from the target's power spectrum, for an FFT grid of `shape` (voxel size: the target's). */
export function whiteningFilter(target: Volume, shape: Zyx, voxelSize: Zyx = target.voxelSize, options: WhiteningOptions = {}): Float32Array {
  return radialFilter(whiteningProfile(target, options), shape, voxelSize);
}
