import { benchFftPair, fftForward, fftInverse, type DeviceId } from '../index';
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
