import { TmeError, type Zyx } from '@tme/formats';
import { halfSpectrumShape } from './fft';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/** A 2D float image, row-major (x fastest). */
export interface Slice {
  data: Float32Array;
  width: number;
  height: number;
}

/** An 8-bit grayscale image (row-major), ready for a PGM/PNG writer. */
export interface GrayImage {
  pixels: Uint8Array;
  width: number;
  height: number;
}

/** The three central planes of a filter, DC at the image centre (index n//2): for display and checks. */
export interface FilterPreview {
  /** kz = 0 plane: width nx (kx), height ny (ky). */
  xy: Slice;
  /** ky = 0 plane: width nx (kx), height nz (kz): the missing wedge shows here for a y tilt axis. */
  xz: Slice;
  /** kx = 0 plane: width ny (ky), height nz (kz). */
  yz: Slice;
}

/**
 * Central slices of a half-spectrum filter of real-space `shape`, centred (fftshift). Negative kx are read
 * through F(−k) = F(k), true of every real, centrosymmetric filter tme builds.
 */
export function filterPreview(filter: Float32Array, shape: Zyx): FilterPreview {
  const [nz, ny, nx] = shape;
  const half = halfSpectrumShape(shape);
  if (filter.length !== half[0] * half[1] * half[2]) {
    throw new TmeError('ERR_TME_MISMATCH', `filterPreview: ${filter.length} values do not fit the half spectrum (${half.join(', ')}) of shape (${shape.join(', ')})`);
  }
  const value = (sz: number, sy: number, sx: number): number => {
    if (sx < 0) {
      sz = -sz;
      sy = -sy;
      sx = -sx;
    }
    const z = ((sz % nz) + nz) % nz;
    const y = ((sy % ny) + ny) % ny;
    return filter[(z * ny + y) * half[2] + sx] as number;
  };
  const plane = (w: number, h: number, f: (i: number, j: number) => number): Slice => {
    const data = new Float32Array(w * h);
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) data[j * w + i] = f(i, j);
    return { data, width: w, height: h };
  };
  const c = (n: number) => Math.floor(n / 2);
  return {
    xy: plane(nx, ny, (i, j) => value(0, j - c(ny), i - c(nx))),
    xz: plane(nx, nz, (i, j) => value(j - c(nz), 0, i - c(nx))),
    yz: plane(ny, nz, (i, j) => value(j - c(nz), i - c(ny), 0)),
  };
}

/** Maps a slice linearly to 0..255 between `min` and `max` (default: the slice's own range). */
export function toGrayscale(slice: Slice, range?: { min: number; max: number }): GrayImage {
  let min = range?.min ?? Infinity;
  let max = range?.max ?? -Infinity;
  if (!range) for (const v of slice.data) (min = Math.min(min, v)), (max = Math.max(max, v));
  const scale = max > min ? 255 / (max - min) : 0;
  const pixels = new Uint8Array(slice.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.max(0, Math.min(255, Math.round(((slice.data[i] as number) - min) * scale)));
  return { pixels, width: slice.width, height: slice.height };
}

/** Binary PGM (P5) bytes of a grayscale image; the first row is the top of the image. */
export function encodePgm(image: GrayImage): Uint8Array {
  const header = new TextEncoder().encode(`P5\n${image.width} ${image.height}\n255\n`);
  const out = new Uint8Array(header.length + image.pixels.length);
  out.set(header, 0);
  out.set(image.pixels, header.length);
  return out;
}

/**
 * One image of the three central planes side by side (xy | xz | yz, top-aligned, 2-pixel black gaps), mapped to
 * 0..255 over their joint range (a filter in [0, 1] keeps 0 → black, 1 → white). For `tme` to save as PGM.
 */
export function previewImage(preview: FilterPreview): GrayImage {
  const slices = [preview.xy, preview.xz, preview.yz];
  let min = Infinity;
  let max = -Infinity;
  for (const s of slices) for (const v of s.data) (min = Math.min(min, v)), (max = Math.max(max, v));
  if (min >= 0 && max <= 1) (min = 0), (max = 1);
  const gap = 2;
  const width = slices.reduce((w, s) => w + s.width, 0) + gap * (slices.length - 1);
  const height = Math.max(...slices.map((s) => s.height));
  const pixels = new Uint8Array(width * height);
  let x0 = 0;
  for (const s of slices) {
    const g = toGrayscale(s, { min, max });
    for (let j = 0; j < s.height; j++) pixels.set(g.pixels.subarray(j * s.width, (j + 1) * s.width), j * width + x0);
    x0 += s.width + gap;
  }
  return { pixels, width, height };
}
