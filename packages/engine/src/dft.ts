import type { Zyx } from '@tme/formats';

/**
 * A plain separable discrete Fourier transform in float64 (O(n) per output sample per axis), for the reference
 * backend only: it shares no code or algorithm with an FFT library, which is the point of a reference.
 */
function transformAxis(re: Float64Array, im: Float64Array, shape: Zyx, axis: 0 | 1 | 2, inverse: boolean): void {
  const [nz, ny, nx] = shape;
  const n = shape[axis];
  const stride = axis === 2 ? 1 : axis === 1 ? nx : nx * ny;
  const cos = new Float64Array(n * n);
  const sin = new Float64Array(n * n);
  const sign = inverse ? 1 : -1;
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      const phase = (2 * Math.PI * ((k * j) % n)) / n;
      cos[k * n + j] = Math.cos(phase);
      sin[k * n + j] = sign * Math.sin(phase);
    }
  }
  const lineRe = new Float64Array(n);
  const lineIm = new Float64Array(n);
  const lines = (nz * ny * nx) / n;
  for (let l = 0; l < lines; l++) {
    // The first element of line l: iterate the two other axes in memory order.
    let start: number;
    if (axis === 2) start = l * nx;
    else if (axis === 1) start = Math.floor(l / nx) * nx * ny + (l % nx);
    else start = l;
    for (let j = 0; j < n; j++) {
      lineRe[j] = re[start + j * stride] as number;
      lineIm[j] = im[start + j * stride] as number;
    }
    for (let k = 0; k < n; k++) {
      let sr = 0;
      let si = 0;
      for (let j = 0; j < n; j++) {
        const c = cos[k * n + j] as number;
        const s = sin[k * n + j] as number;
        const a = lineRe[j] as number;
        const b = lineIm[j] as number;
        sr += a * c - b * s;
        si += a * s + b * c;
      }
      re[start + k * stride] = inverse ? sr / n : sr;
      im[start + k * stride] = inverse ? si / n : si;
    }
  }
}

export function dft3(re: Float64Array, im: Float64Array, shape: Zyx, inverse: boolean): void {
  transformAxis(re, im, shape, 2, inverse);
  transformAxis(re, im, shape, 1, inverse);
  transformAxis(re, im, shape, 0, inverse);
}

/** The full-spectrum value at (kz, ky, kx) of a real half-spectrum filter (nz, ny, nx/2+1), by Hermitian symmetry. */
export function fullSpectrumValue(filter: Float32Array, shape: Zyx, kz: number, ky: number, kx: number): number {
  const [nz, ny, nx] = shape;
  const hx = Math.floor(nx / 2) + 1;
  if (kx < hx) return filter[(kz * ny + ky) * hx + kx] as number;
  return filter[(((nz - kz) % nz) * ny + ((ny - ky) % ny)) * hx + (nx - kx)] as number;
}

/** IDFT(DFT(grid) · H): a real grid filtered by a real half-spectrum filter (real part kept). */
export function applyHalfSpectrumFilter(grid: Float64Array, shape: Zyx, filter: Float32Array): Float64Array {
  const [nz, ny, nx] = shape;
  const re = Float64Array.from(grid);
  const im = new Float64Array(grid.length);
  dft3(re, im, shape, false);
  for (let kz = 0; kz < nz; kz++) {
    for (let ky = 0; ky < ny; ky++) {
      for (let kx = 0; kx < nx; kx++) {
        const i = (kz * ny + ky) * nx + kx;
        const h = fullSpectrumValue(filter, shape, kz, ky, kx);
        re[i] = (re[i] as number) * h;
        im[i] = (im[i] as number) * h;
      }
    }
  }
  dft3(re, im, shape, true);
  return re;
}
