import { benchFftPair, fftForward, fftInverse, fftPlanes, filterColumns, filterVolume, type DeviceId } from '../index';
import { lavapipeIndex, maxAbs, maxAbsDiff } from './helpers/devices';
import { randomVolume, type Shape } from './helpers/reference';

const vk = lavapipeIndex();
const onVulkan = vk === undefined ? it.skip : it;

/** Direct 3D DFT in float64 of a real volume: the half spectrum (nz, ny, nx/2+1) interleaved (re, im). */
function directDft(data: Float32Array, [nz, ny, nx]: Shape): Float64Array {
  const hx = Math.floor(nx / 2) + 1;
  const out = new Float64Array(2 * nz * ny * hx);
  for (let kz = 0; kz < nz; kz++)
    for (let ky = 0; ky < ny; ky++)
      for (let kx = 0; kx < hx; kx++) {
        let re = 0;
        let im = 0;
        let i = 0;
        for (let z = 0; z < nz; z++)
          for (let y = 0; y < ny; y++)
            for (let x = 0; x < nx; x++, i++) {
              const phase = -2 * Math.PI * ((kz * z) / nz + (ky * y) / ny + (kx * x) / nx);
              re += data[i]! * Math.cos(phase);
              im += data[i]! * Math.sin(phase);
            }
        const o = 2 * ((kz * ny + ky) * hx + kx);
        out[o] = re;
        out[o + 1] = im;
      }
  return out;
}

function roundTripError(device: DeviceId, shape: Shape, seed: number): number {
  const data = randomVolume(shape, seed);
  const back = fftInverse(device, fftForward(device, data, shape), shape);
  return maxAbsDiff(back, data) / maxAbs(data);
}

describe('FFT round trip (forward R2C, inverse C2R / N)', () => {
  it.each<[Shape]>([[[32, 32, 32]], [[48, 64, 40]], [[128, 128, 128]]])('CPU (FFTW3f) %j: max relative error ≤ 1e-5', (shape) => {
    expect(roundTripError('cpu', shape, 11)).toBeLessThan(1e-5);
  });
  it.each<[Shape]>([[[32, 32, 32]], [[48, 64, 40]], [[64, 64, 64]]])('Vulkan (VkFFT on lavapipe) %j: max relative error ≤ 1e-5', (shape) => {
    if (vk === undefined) return;
    expect(roundTripError(vk, shape, 12)).toBeLessThan(1e-5);
  });
});

describe('FFT against a float64 direct DFT', () => {
  const shape: Shape = [6, 8, 10];
  const data = randomVolume(shape, 3);
  const reference = directDft(data, shape);
  it('CPU half spectrum matches (layout (nz, ny, nx/2+1), interleaved, unnormalised)', () => {
    const got = fftForward('cpu', data, shape);
    expect(got.length).toBe(6 * 8 * 6 * 2);
    expect(maxAbsDiff(got, reference) / maxAbs(reference)).toBeLessThan(1e-6);
  });
  onVulkan('Vulkan half spectrum matches', () => {
    const got = fftForward(vk!, data, shape);
    expect(maxAbsDiff(got, reference) / maxAbs(reference)).toBeLessThan(1e-6);
  });
  it('an odd x axis keeps nx/2+1 columns (7 → 4)', () => {
    const odd: Shape = [3, 5, 7];
    const d = randomVolume(odd, 4);
    expect(maxAbsDiff(fftForward('cpu', d, odd), directDft(d, odd))).toBeLessThan(1e-4);
  });
});

describe('CPU and Vulkan agree', () => {
  onVulkan.each<[Shape]>([[[7, 9, 11]], [[13, 13, 26]]])('%j (odd x, radix 11 and 13) to 1e-6 relative', (shape) => {
    const data = randomVolume(shape, 22);
    const a = fftForward('cpu', data, shape);
    const b = fftForward(vk!, data, shape);
    expect(maxAbsDiff(a, b) / maxAbs(a)).toBeLessThan(1e-6);
  });
  onVulkan.each<[Shape]>([[[32, 32, 32]], [[48, 64, 40]]])('%j forward spectra to 1e-6 relative', (shape) => {
    const data = randomVolume(shape, 21);
    const a = fftForward('cpu', data, shape);
    const b = fftForward(vk!, data, shape);
    expect(maxAbsDiff(a, b) / maxAbs(a)).toBeLessThan(1e-6);
  });
});

describe('benchFftPair', () => {
  it('reports positive times, a pair at least as long as its C2R, and no plan time once cached', () => {
    const first = benchFftPair('cpu', [32, 32, 32], 3);
    const again = benchFftPair('cpu', [32, 32, 32], 3);
    for (const t of [first, again]) {
      expect(t.pairMs).toBeGreaterThan(0);
      expect(t.c2rMs).toBeGreaterThan(0);
      expect(t.pairMedianMs).toBeGreaterThanOrEqual(t.pairMs);
    }
    expect(again.planMs).toBe(0);
  });
  onVulkan('runs on Vulkan', () => {
    const t = benchFftPair(vk!, [32, 32, 32], 2);
    expect(t.pairMs).toBeGreaterThan(0);
    expect(t.r2cMs).toBeGreaterThan(0);
  });
});

describe('the out-of-core filter\'s transforms: 2D planes and columns along z', () => {
  it.each<[Shape]>([[[12, 10, 14]], [[9, 11, 7]]])('planes R2C, the columns through a filter, planes C2R: the 3D filter through fftForward/fftInverse (%j, ≤ 1e-5 of the largest value)', (shape) => {
    const [nz, ny, nx] = shape;
    const hx = Math.floor(nx / 2) + 1;
    const data = randomVolume(shape, 7);
    const filter = Float32Array.from({ length: nz * ny * hx }, (_, i) => 0.25 + ((i * 7919) % 17) / 17);
    const spectrum = new Float32Array(2 * nz * ny * hx);
    fftPlanes(false, data, spectrum, shape, 2);
    // Two blocks of ky rows, as the engine goes: rows [0, 4) and [4, ny) of every plane.
    for (const [y0, y1] of [[0, 4], [4, ny]] as const) {
      const rows = y1 - y0;
      const block = new Float32Array(2 * nz * rows * hx);
      const values = new Float32Array(nz * rows * hx);
      for (let z = 0; z < nz; z++) {
        block.set(spectrum.subarray(2 * (z * ny + y0) * hx, 2 * (z * ny + y1) * hx), 2 * z * rows * hx);
        values.set(filter.subarray((z * ny + y0) * hx, (z * ny + y1) * hx), z * rows * hx);
      }
      filterColumns(block, values, nz, 1);
      for (let z = 0; z < nz; z++) spectrum.set(block.subarray(2 * z * rows * hx, 2 * (z + 1) * rows * hx), 2 * (z * ny + y0) * hx);
    }
    const out = new Float32Array(nz * ny * nx);
    fftPlanes(true, out, spectrum, shape, 2);
    const whole = fftForward('cpu', data, shape);
    for (let k = 0; k < filter.length; k++) { whole[2 * k]! *= filter[k]!; whole[2 * k + 1]! *= filter[k]!; }
    const expected = fftInverse('cpu', whole, shape);
    const n = nz * ny * nx;
    for (let i = 0; i < n; i++) out[i]! /= n;
    expect(maxAbsDiff(out, expected)).toBeLessThanOrEqual(1e-5 * maxAbs(expected));
    // Not the unfiltered volume: the filter acted.
    expect(maxAbsDiff(expected, data)).toBeGreaterThan(0.1);
  });

  it('refuses arrays shorter than the shape in one line', () => {
    expect(() => fftPlanes(false, new Float32Array(10), new Float32Array(1000), [2, 4, 4])).toThrow(/^Expected at least 32 values for real but received 10$/);
    expect(() => filterColumns(new Float32Array(4), new Float32Array(6), 3)).toThrow(/^Expected at least 12 values for data but received 4$/);
  });
});

describe('filterVolume: a volume through a half-spectrum filter in one native call', () => {
  it.each<[Shape, number]>([[[12, 10, 14], 1], [[9, 11, 7], 2], [[20, 18, 16], 2]])('the same bits as fftInverse(fftForward × filter) (%j, %i threads)', (shape, threads) => {
    const [nz, ny, nx] = shape;
    const hx = Math.floor(nx / 2) + 1;
    const data = randomVolume(shape, 11);
    const filter = Float32Array.from({ length: nz * ny * hx }, (_, i) => 0.1 + ((i * 7919) % 23) / 23);
    const whole = fftForward('cpu', data, shape, { threads });
    for (let k = 0; k < filter.length; k++) { whole[2 * k]! *= filter[k]!; whole[2 * k + 1]! *= filter[k]!; }
    const expected = fftInverse('cpu', whole, shape, { threads });
    const out = filterVolume(data, shape, filter, { threads });
    expect(Buffer.from(out.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    expect(maxAbsDiff(out, data)).toBeGreaterThan(0.05);  // the filter acted
    // In place: into the caller's array, aligned (transformed where it lies) or not (one byte-offset view: a copy).
    const aligned = Float32Array.from(data);
    const unaligned = new Float32Array(new ArrayBuffer(4 * (data.length + 1)), 4, data.length);
    unaligned.set(data);
    for (const into of [aligned, unaligned]) {
      expect(filterVolume(into, shape, filter, { threads, inPlace: true })).toBe(into);
      expect(Buffer.from(into.buffer, into.byteOffset, into.byteLength).equals(Buffer.from(expected.buffer))).toBe(true);
    }
  });

  it('rejects a filter of the wrong length with ERR_TME_INVALID_OPTION', () => {
    expect(() => filterVolume(new Float32Array(8), [2, 2, 2], new Float32Array(3))).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
  });
});
