import { invalidOption, type Zyx } from '@tme/formats';
import { halfSpectrumAxes } from './fft';
import { checkRows, type FilterRows } from './rows';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/** How a band-pass edge falls off. */
export type PassEdge = 'gaussian' | 'cosine' | 'hard';

export interface BandPassOptions {
  /** Low-pass resolution (Å): frequencies finer than 1/lowpass are removed. Default: none. */
  lowpassAngstrom?: number;
  /** High-pass resolution (Å): frequencies coarser than 1/highpass are removed. Default: none. */
  highpassAngstrom?: number;
  /**
   * Edge shape. 'gaussian' (default): exp(−k²/2σ²) with σ = k_c/√(2 ln 2), gain exactly 0.5 at the cutoff
   * k_c = 1/resolution; the high-pass is 1 − the same Gaussian (gain 0.5 at its cutoff). 'cosine': a raised-cosine
   * edge of width `edgeWidth`, centred on the cutoff (gain 0.5 there). 'hard': a binary band, cutoff included.
   */
  edge?: PassEdge;
  /** Raised-cosine edge width (1/Å). Default: 2 Fourier voxels of the grid the filter is built on. */
  edgeWidth?: number;
}

const LN2 = Math.log(2);

function check(options: BandPassOptions): void {
  for (const name of ['lowpassAngstrom', 'highpassAngstrom'] as const) {
    const v = options[name];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw invalidOption(name, 'a resolution > 0 Å', v);
  }
  if (options.edge !== undefined && !['gaussian', 'cosine', 'hard'].includes(options.edge)) {
    throw invalidOption('edge', "one of 'gaussian', 'cosine', 'hard'", options.edge);
  }
  if (options.edgeWidth !== undefined && !(options.edgeWidth > 0)) throw invalidOption('edgeWidth', 'a width > 0 (1/Å)', options.edgeWidth);
}

/** The 1D gain of a low-pass at frequency k (1/Å) with cutoff kc (1/Å). */
export function lowpassGain(k: number, kc: number, edge: PassEdge = 'gaussian', width = 0): number {
  if (edge === 'hard') return k <= kc ? 1 : 0;
  if (edge === 'cosine') {
    if (k <= kc - width / 2) return 1;
    if (k >= kc + width / 2) return 0;
    return 0.5 * (1 + Math.cos((Math.PI * (k - (kc - width / 2))) / width));
  }
  const sigma2 = (kc * kc) / (2 * LN2);
  return Math.exp(-(k * k) / (2 * sigma2));
}

/** The radial gain of the band-pass at |k| (1/Å); `defaultWidth` is the cosine width when none is set. */
export function bandPassGain(k: number, options: BandPassOptions, defaultWidth = 0): number {
  const edge = options.edge ?? 'gaussian';
  const width = options.edgeWidth ?? defaultWidth;
  let g = 1;
  if (options.lowpassAngstrom !== undefined) g *= lowpassGain(k, 1 / options.lowpassAngstrom, edge, width);
  if (options.highpassAngstrom !== undefined) {
    const kc = 1 / options.highpassAngstrom;
    g *= edge === 'hard' ? (k >= kc ? 1 : 0) : 1 - lowpassGain(k, kc, edge, width);
  }
  return g;
}

/** A band-pass filter in the half-spectrum layout of `shape` (see BandPassOptions for the edges); `rows`: only the ky
 *  rows [y0, y1) of every kz plane (FilterRows). */
export function bandPassFilter(shape: Zyx, voxelSize: Zyx, options: BandPassOptions, rows: FilterRows = [0, shape[1]]): Float32Array {
  check(options);
  const { half, fz, fy, fx } = halfSpectrumAxes(shape, voxelSize);
  const [y0, y1] = checkRows(rows, shape);
  // Two Fourier voxels of the coarsest axis: wide enough to be smooth, narrow enough to stay local.
  const defaultWidth = 2 * Math.max(...shape.map((n, a) => 1 / (n * (voxelSize[a] as number))));
  const out = new Float32Array(half[0] * (y1 - y0) * half[2]);
  let i = 0;
  for (let z = 0; z < half[0]; z++) {
    const kz2 = (fz[z] as number) ** 2;
    for (let y = y0; y < y1; y++) {
      const kzy2 = kz2 + (fy[y] as number) ** 2;
      for (let x = 0; x < half[2]; x++) out[i++] = bandPassGain(Math.sqrt(kzy2 + (fx[x] as number) ** 2), options, defaultWidth);
    }
  }
  return out;
}
