import { ComplexFft, rfftn, irfftn, halfSpectrumShape, axisFrequencies } from '../src/fft';
import type { Zyx } from '@tme/formats';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** Naive O(N²) 3D DFT of a real array, evaluated only at the half-spectrum indices: the independent reference. */
function naiveHalfDft(data: Float64Array, shape: Zyx): { re: Float64Array; im: Float64Array } {
  const [nz, ny, nx] = shape;
  const hx = Math.floor(nx / 2) + 1;
  const re = new Float64Array(nz * ny * hx);
  const im = new Float64Array(nz * ny * hx);
  for (let kz = 0; kz < nz; kz++)
    for (let ky = 0; ky < ny; ky++)
      for (let kx = 0; kx < hx; kx++) {
        let sr = 0;
        let si = 0;
        for (let z = 0; z < nz; z++)
          for (let y = 0; y < ny; y++)
            for (let x = 0; x < nx; x++) {
              const phase = -2 * Math.PI * ((kz * z) / nz + (ky * y) / ny + (kx * x) / nx);
              const v = data[(z * ny + y) * nx + x] as number;
              sr += v * Math.cos(phase);
              si += v * Math.sin(phase);
            }
        re[(kz * ny + ky) * hx + kx] = sr;
        im[(kz * ny + ky) * hx + kx] = si;
      }
  return { re, im };
}

describe('ComplexFft', () => {
  it.each([1, 2, 8, 64, 3, 5, 7, 12, 30, 97, 210])('matches the naive DFT for n = %i (forward and inverse)', (n) => {
    const rand = lcg(n);
    const xr = Float64Array.from({ length: n }, rand);
    const xi = Float64Array.from({ length: n }, rand);
    const re = Float64Array.from(xr);
    const im = Float64Array.from(xi);
    new ComplexFft(n).transform(re, im, false);
    for (let j = 0; j < n; j++) {
      let sr = 0;
      let si = 0;
      for (let k = 0; k < n; k++) {
        const a = (-2 * Math.PI * j * k) / n;
        sr += (xr[k] as number) * Math.cos(a) - (xi[k] as number) * Math.sin(a);
        si += (xr[k] as number) * Math.sin(a) + (xi[k] as number) * Math.cos(a);
      }
      expect(re[j]).toBeCloseTo(sr, 9);
      expect(im[j]).toBeCloseTo(si, 9);
    }
    new ComplexFft(n).transform(re, im, true);
    for (let k = 0; k < n; k++) {
      expect((re[k] as number) / n).toBeCloseTo(xr[k] as number, 10);
      expect((im[k] as number) / n).toBeCloseTo(xi[k] as number, 10);
    }
  });
});

describe('rfftn / irfftn', () => {
  it.each<[Zyx]>([[[5, 6, 7]], [[4, 3, 8]], [[1, 1, 9]], [[2, 5, 1]]])('agree with a naive 3D DFT and round-trip for %p', (shape) => {
    const rand = lcg(shape[0] * 100 + shape[1] * 10 + shape[2]);
    const data = Float64Array.from({ length: shape[0] * shape[1] * shape[2] }, rand);
    const spec = rfftn(data, shape);
    const ref = naiveHalfDft(data, shape);
    expect(spec.re.length).toBe(halfSpectrumShape(shape).reduce((a, b) => a * b, 1));
    for (let i = 0; i < ref.re.length; i++) {
      expect(spec.re[i]).toBeCloseTo(ref.re[i] as number, 9);
      expect(spec.im[i]).toBeCloseTo(ref.im[i] as number, 9);
    }
    const back = irfftn(spec);
    for (let i = 0; i < data.length; i++) expect(back[i]).toBeCloseTo(data[i] as number, 10);
  });

  it('runs a 64×60×50 volume in well under a second', () => {
    const shape: Zyx = [64, 60, 50];
    const rand = lcg(1);
    const data = Float64Array.from({ length: 64 * 60 * 50 }, rand);
    const t0 = Date.now();
    const back = irfftn(rfftn(data, shape));
    expect(Date.now() - t0).toBeLessThan(3000);
    let err = 0;
    for (let i = 0; i < data.length; i++) err = Math.max(err, Math.abs((back[i] as number) - (data[i] as number)));
    expect(err).toBeLessThan(1e-12);
  });
});

describe('axisFrequencies', () => {
  it('maps index k to k/n (k ≤ n/2) else (k − n)/n cycles per voxel, divided by the voxel size', () => {
    expect(Array.from(axisFrequencies(4, 2))).toEqual([0, 0.125, 0.25, -0.125]);
    expect(Array.from(axisFrequencies(5, 1))).toEqual([0, 0.2, 0.4, -0.4, -0.2]);
    expect(Array.from(axisFrequencies(6, 1, true))).toEqual([0, 1 / 6, 2 / 6, 0.5]);
  });
});
