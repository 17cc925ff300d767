import { createVolume, invalidOption, type Volume, type Zyx } from '@tme/formats';
import { halfSpectrumShape, irfftn, rfftn, signedIndex, type HalfSpectrum } from './fft';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/**
 * Copies the frequencies both grids hold from `spec` (real shape `from`) into a new half spectrum of real
 * shape `to`. The Nyquist planes of the smaller grid are dropped (their split is ambiguous), DC is kept.
 */
export function resizeSpectrum(spec: HalfSpectrum, to: Zyx): HalfSpectrum {
  const from = spec.realShape;
  const hf = halfSpectrumShape(from);
  const ht = halfSpectrumShape(to);
  const re = new Float64Array(ht[0] * ht[1] * ht[2]);
  const im = new Float64Array(re.length);
  const keep = (s: number, a: 0 | 1 | 2) => 2 * Math.abs(s) < Math.min(from[a], to[a]);
  for (let z = 0; z < ht[0]; z++) {
    const sz = signedIndex(z, to[0]);
    if (!keep(sz, 0)) continue;
    const zf = sz < 0 ? sz + from[0] : sz;
    for (let y = 0; y < ht[1]; y++) {
      const sy = signedIndex(y, to[1]);
      if (!keep(sy, 1)) continue;
      const yf = sy < 0 ? sy + from[1] : sy;
      for (let x = 0; x < ht[2]; x++) {
        if (!keep(x, 2)) continue;
        const i = (z * ht[1] + y) * ht[2] + x;
        const j = (zf * hf[1] + yf) * hf[2] + x;
        re[i] = spec.re[j] as number;
        im[i] = spec.im[j] as number;
      }
    }
  }
  return { re, im, realShape: [to[0], to[1], to[2]] };
}

/** Zero-pads (or crops) a volume to `shape`, keeping voxel (0,0,0) and the origin: the physical frame stays put. */
function padTo(volume: Volume, shape: Zyx): Float64Array {
  const [nz, ny, nx] = volume.shape;
  const out = new Float64Array(shape[0] * shape[1] * shape[2]);
  for (let z = 0; z < Math.min(nz, shape[0]); z++)
    for (let y = 0; y < Math.min(ny, shape[1]); y++)
      for (let x = 0; x < Math.min(nx, shape[2]); x++) out[(z * shape[1] + y) * shape[2] + x] = volume.data[(z * ny + y) * nx + x] as number;
  return out;
}

/** The smallest m ≥ n with m·ratio within 1e-4 (relative) of an integer (searched up to 2n + 16; else the closest). */
function paddedLength(n: number, ratio: number): number {
  let best = n;
  let bestErr = Infinity;
  for (let m = n; m <= 2 * n + 16; m++) {
    const t = m * ratio;
    const err = Math.abs(t - Math.round(t)) / Math.max(1, t);
    if (err < 1e-4) return m;
    if (err < bestErr) (bestErr = err), (best = m);
  }
  return best;
}

/**
 * Resamples to `voxelSize` (Å) by Fourier cropping (coarser) or zero-padding (finer). The input is first
 * zero-padded so that its box maps onto a whole number of new voxels — the new voxel size is then exact to
 * 1e-4 (relative) — and
 * the result is cut to cover the original box. Voxel 0 and the origin stay fixed, so features keep their
 * physical positions; values (hence the mean over the same region) are preserved.
 */
export function resampleVolume(volume: Volume, voxelSize: number | Zyx): Volume {
  const target: Zyx = typeof voxelSize === 'number' ? [voxelSize, voxelSize, voxelSize] : voxelSize;
  if (!target.every((v) => Number.isFinite(v) && v > 0)) throw invalidOption('voxelSize', 'a voxel size > 0 Å', target.join(','));
  const ratios = [0, 1, 2].map((a) => (volume.voxelSize[a] as number) / (target[a] as number));
  if (ratios.every((r) => Math.abs(r - 1) < 1e-9)) return createVolume(Float32Array.from(volume.data), volume.shape, volume.voxelSize, volume.origin);
  const padded: Zyx = [0, 1, 2].map((a) => (ratios[a]! === 1 ? volume.shape[a]! : paddedLength(volume.shape[a]!, ratios[a]!))) as unknown as Zyx;
  const big: Zyx = [0, 1, 2].map((a) => Math.max(1, Math.round(padded[a]! * ratios[a]!))) as unknown as Zyx;
  const exact: Zyx = [0, 1, 2].map((a) => (padded[a]! * volume.voxelSize[a]!) / big[a]!) as unknown as Zyx;
  const spec = rfftn(padTo(volume, padded), padded);
  const resized = resizeSpectrum(spec, big);
  const values = irfftn(resized);
  const scale = (big[0] * big[1] * big[2]) / (padded[0] * padded[1] * padded[2]);
  const out: Zyx = [0, 1, 2].map((a) => Math.min(big[a]!, Math.ceil(volume.shape[a]! * ratios[a]! - 1e-9))) as unknown as Zyx;
  const data = new Float32Array(out[0] * out[1] * out[2]);
  for (let z = 0; z < out[0]; z++)
    for (let y = 0; y < out[1]; y++)
      for (let x = 0; x < out[2]; x++) data[(z * out[1] + y) * out[2] + x] = (values[(z * big[1] + y) * big[2] + x] as number) * scale;
  return createVolume(data, out, exact, volume.origin);
}

/** Shifts a volume by `shift` voxels (z, y, x), periodically, by a Fourier phase ramp (sub-voxel allowed). */
export function fourierShift(volume: Volume, shift: Zyx): Volume {
  const spec = rfftn(volume.data, volume.shape);
  const [nz, ny, nx] = volume.shape;
  const h = halfSpectrumShape(volume.shape);
  let i = 0;
  for (let z = 0; z < h[0]; z++) {
    // Nyquist bins of even axes carry a real cosine: drop their (ill-defined) sub-voxel phase.
    const fz = 2 * z === nz ? 0 : signedIndex(z, nz) / nz;
    for (let y = 0; y < h[1]; y++) {
      const fy = 2 * y === ny ? 0 : signedIndex(y, ny) / ny;
      for (let x = 0; x < h[2]; x++, i++) {
        const fx = 2 * x === nx ? 0 : x / nx;
        const phase = -2 * Math.PI * (fz * shift[0] + fy * shift[1] + fx * shift[2]);
        const c = Math.cos(phase);
        const s = Math.sin(phase);
        const re = spec.re[i] as number;
        const im = spec.im[i] as number;
        spec.re[i] = re * c - im * s;
        spec.im[i] = re * s + im * c;
      }
    }
  }
  return createVolume(Float32Array.from(irfftn(spec)), volume.shape, volume.voxelSize, volume.origin);
}

/** Shifts a volume by whole voxels (z, y, x), periodically: exact, no FFT. */
export function rollVolume(volume: Volume, shift: Zyx): Volume {
  const [nz, ny, nx] = volume.shape;
  const mod = (a: number, n: number) => ((a % n) + n) % n;
  const data = new Float32Array(volume.data.length);
  for (let z = 0; z < nz; z++) {
    const zz = mod(z + shift[0], nz);
    for (let y = 0; y < ny; y++) {
      const yy = mod(y + shift[1], ny);
      for (let x = 0; x < nx; x++) data[(zz * ny + yy) * nx + mod(x + shift[2], nx)] = volume.data[(z * ny + y) * nx + x] as number;
    }
  }
  return createVolume(data, volume.shape, volume.voxelSize, volume.origin);
}
