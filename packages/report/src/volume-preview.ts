import { gzipSync } from 'node:zlib';
import { invalidOption, type Volume, type Zyx } from '@tme/formats';
import { REPORT_READ_BYTES, eachSectionRun, isSectionSource, sectionsOfVolume, sectionsPerRead, type SectionSource } from './sections';

/** A volume as the page carries it: binned, windowed to 8 bits, gzip-compressed, base64. */
export interface VolumePreview {
  /** Shape of the binned volume (z, y, x). */
  shape: Zyx;
  /** Volume voxels per preview voxel, the same along every axis (so xz and yz views keep their proportions). */
  bin: number;
  /** How a bin's voxels became one: 'mean' (tomogram: averaging is a low-pass) or 'max' (score map: a one-voxel
   * peak survives binning). */
  reduce: 'mean' | 'max';
  /** The values shown as byte 0 and byte 255. */
  window: [number, number];
  /** The bytes (z, y, x), x fastest, gzip-compressed, base64; 0 where the volume had no finite value. */
  gzipBase64: string;
}

export interface PreviewOptions {
  /** Most voxels of the binned volume. The bin is the smallest integer that fits. Default 2²¹ (2 Mi). */
  maxVoxels?: number;
  reduce: 'mean' | 'max';
  /** 'percentiles': 0.5 % to 99.5 % of the binned values (a tomogram: gold and edges do not wash it out);
   * 'upper': median to maximum (a score map: noise dark, peaks bright). */
  window: 'percentiles' | 'upper';
  /** A volume on disk: most bytes read at once (default REPORT_READ_BYTES). */
  maxReadBytes?: number;
}

/** The default voxel budget of one preview: a 512×512×200 job's two previews stay under 5 MB of page. */
export const PREVIEW_VOXELS = 2 ** 21;

/** The smallest isotropic bin that brings `shape` to at most `maxVoxels`. */
export function previewBin(shape: Zyx, maxVoxels: number): number {
  if (!(Number.isInteger(maxVoxels) && maxVoxels >= 1)) throw invalidOption('maxVoxels', 'integer ≥ 1', maxVoxels);
  let b = 1;
  while (Math.ceil(shape[0] / b) * Math.ceil(shape[1] / b) * Math.ceil(shape[2] / b) > maxVoxels) b++;
  return b;
}

/** Bins `volume` (mean or max over b³ voxels; partial bins at the far faces), the result as float32 (z, y, x). */
export function binVolume(volume: Volume | SectionSource, bin: number, reduce: 'mean' | 'max', maxReadBytes = REPORT_READ_BYTES): { data: Float32Array; shape: Zyx } {
  const source = isSectionSource(volume) ? volume : sectionsOfVolume(volume);
  const [nz, ny, nx] = source.shape;
  const shape: Zyx = [Math.ceil(nz / bin), Math.ceil(ny / bin), Math.ceil(nx / bin)];
  const [, oy, ox] = shape;
  const out = new Float32Array(shape[0] * oy * ox).fill(reduce === 'max' ? -Infinity : 0);
  const counts = reduce === 'mean' ? new Uint32Array(out.length) : undefined;
  const xOut = new Int32Array(nx);
  for (let x = 0; x < nx; x++) xOut[x] = Math.floor(x / bin);
  // Section by section in z order: every bin adds its voxels in the order a whole volume's raster gives them.
  eachSectionRun(source, sectionsPerRead(source.shape, maxReadBytes), (src, z0, count) => {
    for (let dz = 0; dz < count; dz++) {
      const z = z0 + dz;
      for (let y = 0; y < ny; y++) {
        const row = (Math.floor(z / bin) * oy + Math.floor(y / bin)) * ox;
        const at = (dz * ny + y) * nx;
        if (counts) meanRow(src, at, nx, xOut, out, counts, row);
        else maxRow(src, at, nx, xOut, out, row);
      }
    }
  });
  if (counts) for (let i = 0; i < out.length; i++) out[i] = counts[i]! > 0 ? out[i]! / counts[i]! : NaN;
  return { data: out, shape };
}

// Small row functions: V8 optimises these far better than one deep loop nest.
function meanRow(src: Float32Array, at: number, nx: number, xOut: Int32Array, out: Float32Array, counts: Uint32Array, row: number): void {
  for (let x = 0; x < nx; x++) {
    const v = src[at + x]!;
    if (v - v !== 0) continue; // NaN or ±Infinity
    const o = row + xOut[x]!;
    out[o]! += v;
    counts[o]!++;
  }
}

function maxRow(src: Float32Array, at: number, nx: number, xOut: Int32Array, out: Float32Array, row: number): void {
  for (let x = 0; x < nx; x++) {
    const v = src[at + x]!;
    const o = row + xOut[x]!;
    if (v > out[o]!) out[o] = v;
  }
}

/** Quantiles of the finite values, from a strided sample of at most 2²⁰ of them. */
export function sampleQuantiles(data: Float32Array, qs: readonly number[]): number[] {
  const stride = Math.max(1, Math.floor(data.length / 2 ** 20));
  const sample: number[] = [];
  for (let i = 0; i < data.length; i += stride) {
    const v = data[i]!;
    if (Number.isFinite(v)) sample.push(v);
  }
  if (sample.length === 0) return qs.map(() => NaN);
  const sorted = Float64Array.from(sample).sort();
  return qs.map((q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!);
}

/** The page's copy of a volume: binned to the budget, windowed, one byte a voxel, gzip. */
export function previewVolume(volume: Volume | SectionSource, options: PreviewOptions): VolumePreview {
  const bin = previewBin(volume.shape, options.maxVoxels ?? PREVIEW_VOXELS);
  const binned = binVolume(volume, bin, options.reduce, options.maxReadBytes);
  let [lo, hi] = options.window === 'percentiles'
    ? sampleQuantiles(binned.data, [0.005, 0.995]) as [number, number]
    : [sampleQuantiles(binned.data, [0.5])[0]!, maxFinite(binned.data)];
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) [lo, hi] = [0, 1];
  if (!(hi > lo)) hi = lo + 1; // a constant volume: mid-grey would need a guess, black is honest
  const bytes = new Uint8Array(binned.data.length);
  const scale = 255 / (hi - lo);
  for (let i = 0; i < bytes.length; i++) {
    const v = binned.data[i]!;
    // Uint8Array stores a clamped, rounded value only via Uint8ClampedArray semantics; clamp by hand.
    bytes[i] = Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round((v - lo) * scale))) : 0;
  }
  return {
    shape: binned.shape, bin, reduce: options.reduce, window: [lo, hi],
    gzipBase64: gzipSync(bytes, { level: 9 }).toString('base64'),
  };
}

function maxFinite(data: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v > m && v !== Infinity) m = v;
  }
  return m;
}
