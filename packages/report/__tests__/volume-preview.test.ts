import { gunzipSync } from 'node:zlib';
import { createVolume, type Zyx } from '@tme/formats';
import { seededRandom } from '@tme/rotations';
import { binVolume, browserLibraries, previewBin, previewVolume, PREVIEW_VOXELS, sampleQuantiles } from '../src';

function randomVolume(shape: Zyx, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => random());
}

describe('previewBin', () => {
  it('is the smallest isotropic bin that fits the budget', () => {
    expect(previewBin([64, 128, 128], 2 ** 21)).toBe(1);
    // 512×512×200 = 52 Mi voxels: 2 gives 256·256·100 = 6.5 Mi, 3 gives 171·171·67 = 1.96 Mi ≤ 2 Mi.
    expect(previewBin([200, 512, 512], 2 ** 21)).toBe(3);
    expect(previewBin([200, 512, 512], 1_900_000)).toBe(4);
    expect(() => previewBin([2, 2, 2], 0)).toThrow(/maxVoxels/);
  });
});

describe('binVolume', () => {
  const shape: Zyx = [5, 7, 8];
  const data = randomVolume(shape, 3);
  const volume = createVolume(data, shape, [1, 1, 1]);
  const at = (z: number, y: number, x: number): number => data[(z * 7 + y) * 8 + x]!;

  it.each(['mean', 'max'] as const)('takes the %s of each bin, partial bins at the far faces included', (reduce) => {
    const b = 3;
    const out = binVolume(volume, b, reduce);
    expect(out.shape).toEqual([2, 3, 3]);
    for (let oz = 0; oz < 2; oz++) for (let oy = 0; oy < 3; oy++) for (let ox = 0; ox < 3; ox++) {
      const values: number[] = [];
      for (let z = oz * b; z < Math.min(5, oz * b + b); z++) for (let y = oy * b; y < Math.min(7, oy * b + b); y++) {
        for (let x = ox * b; x < Math.min(8, ox * b + b); x++) values.push(at(z, y, x));
      }
      const want = reduce === 'max' ? Math.max(...values) : values.reduce((s, v) => s + v, 0) / values.length;
      expect(out.data[(oz * 3 + oy) * 3 + ox]).toBeCloseTo(want, 6);
    }
  });

  it('skips NaN and infinite voxels in a mean (a bin of only those is NaN)', () => {
    const d = Float32Array.of(1, 5, 3, Infinity, NaN, NaN, NaN, NaN, NaN, -Infinity, NaN, NaN);
    const out = binVolume(createVolume(d, [1, 2, 6], [1, 1, 1]), 2, 'mean');
    expect(out.shape).toEqual([1, 1, 3]);
    expect(out.data[0]).toBeCloseTo(3, 6); // (1 + 5) / 2
    expect(out.data[1]).toBeCloseTo(3, 6); // 3 alone: Infinity skipped
    expect(out.data[2]).toBeNaN();
  });
});

describe('previewVolume', () => {
  it('windows to bytes that gunzip to the binned shape, percentiles for a tomogram', () => {
    const shape: Zyx = [10, 20, 30];
    const data = randomVolume(shape, 11);
    const p = previewVolume(createVolume(data, shape, [1, 1, 1]), { reduce: 'mean', window: 'percentiles' });
    expect(p.bin).toBe(1);
    const bytes = gunzipSync(Buffer.from(p.gzipBase64, 'base64'));
    expect(bytes.length).toBe(6000);
    // Uniform [0, 1): the 0.5 % and 99.5 % quantiles.
    expect(p.window[0]).toBeCloseTo(0.005, 2);
    expect(p.window[1]).toBeCloseTo(0.995, 2);
    for (const i of [0, 17, 4321]) {
      const want = Math.max(0, Math.min(255, Math.round(((data[i]! - p.window[0]) / (p.window[1] - p.window[0])) * 255)));
      expect(bytes[i]).toBe(want);
    }
  });

  it('keeps a score peak through a max bin and maps the best score to 255', () => {
    const shape: Zyx = [16, 16, 16];
    const data = new Float32Array(16 ** 3).fill(0.01);
    data[(5 * 16 + 6) * 16 + 7] = 0.8;
    const p = previewVolume(createVolume(data, shape, [1, 1, 1]), { reduce: 'max', window: 'upper', maxVoxels: 512 });
    expect(p.bin).toBe(2);
    expect(p.window).toEqual([Math.fround(0.01), Math.fround(0.8)]);
    const bytes = gunzipSync(Buffer.from(p.gzipBase64, 'base64'));
    expect(bytes[(2 * 8 + 3) * 8 + 3]).toBe(255);
    expect(bytes.reduce((s, b) => s + (b > 0 ? 1 : 0), 0)).toBe(1);
  });

  it('keeps a 512×512×200 job\'s two previews and the libraries under 5 MB of page (noise: the worst case for gzip)', () => {
    const shape: Zyx = [200, 512, 512];
    const random = seededRandom(5);
    // Gaussian-ish noise (sum of three uniforms): binning averages it, as it does a real tomogram's.
    const tomogram = new Float32Array(shape[0] * shape[1] * shape[2]);
    for (let i = 0; i < tomogram.length; i++) tomogram[i] = random() + random() + random();
    const t = previewVolume(createVolume(tomogram, shape, [1, 1, 1]), { reduce: 'mean', window: 'percentiles' });
    const s = previewVolume(createVolume(tomogram, shape, [1, 1, 1]), { reduce: 'max', window: 'upper' });
    const libraries = browserLibraries().reduce((n, l) => n + l.text.length, 0);
    const total = t.gzipBase64.length + s.gzipBase64.length + libraries;
    // eslint-disable-next-line no-console
    console.log(`512×512×200 previews: bin ${t.bin}, tomogram ${(t.gzipBase64.length / 1e6).toFixed(2)} MB, scores ${(s.gzipBase64.length / 1e6).toFixed(2)} MB, libraries ${(libraries / 1e6).toFixed(2)} MB`);
    expect(t.bin).toBe(previewBin(shape, PREVIEW_VOXELS));
    expect(total).toBeLessThan(4.8e6);
  }, 60_000);
});

describe('sampleQuantiles', () => {
  it('ignores NaN and infinities', () => {
    expect(sampleQuantiles(Float32Array.of(NaN, 1, 2, 3, Infinity, -Infinity), [0, 0.5, 1])).toEqual([1, 2, 3]);
    expect(sampleQuantiles(Float32Array.of(NaN), [0.5])[0]).toBeNaN();
  });
});
