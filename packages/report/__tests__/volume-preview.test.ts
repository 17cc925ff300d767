import { gunzipSync } from 'node:zlib';
import { createVolume, type Zyx } from '@tme/formats';
import { seededRandom } from '@tme/rotations';
import { scoreHistogram } from '@tme/peaks';
import { binVolume, browserLibraries, previewBin, previewVolume, PREVIEW_VOXELS, sampleQuantiles, scoreHistogramOfSections, sectionsOfVolume } from '../src';

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

describe('volumes read a run of sections at a time (a job whose maps do not fit memory)', () => {
  // 12×100×100 = 120,000 voxels: one whole 64 Ki-voxel histogram block and a partial one, across section boundaries.
  const shape: Zyx = [12, 100, 100];
  const data = randomVolume(shape, 11);
  data[5] = NaN;
  data[30_000] = Infinity;
  const volume = createVolume(data, shape, [1, 1, 1]);
  const rot = Float32Array.from({ length: data.length }, (_, i) => (i % 97 === 0 ? -1 : i % 5));
  const rotVolume = createVolume(rot, shape, [1, 1, 1]);
  const section = 4 * 100 * 100;

  it.each([[1, 'mean'], [2, 'max'], [3, 'mean'], [5, 'max']] as const)('bin %i (%s): the same preview bytes whatever the sections per read', (bin, reduce) => {
    const whole = binVolume(volume, bin, reduce);
    for (const sections of [1, 2, 5, 12]) {
      const read = binVolume(sectionsOfVolume(volume), bin, reduce, sections * section);
      expect(read.shape).toEqual(whole.shape);
      expect(Buffer.from(read.data.buffer).equals(Buffer.from(whole.data.buffer))).toBe(true);
    }
    const opts = { reduce, window: reduce === 'mean' ? 'percentiles' : 'upper', maxVoxels: 30_000 } as const;
    expect(previewVolume(sectionsOfVolume(volume), { ...opts, maxReadBytes: section })).toEqual(previewVolume(volume, opts));
  });

  it('histograms the map with its rotation indices as scoreHistogram does on the maps held whole, bit for bit', () => {
    const scores = Float32Array.from(data, (v) => (v === Infinity ? 0.5 : v)); // finite edges (NaN stays: not counted)
    const want = scoreHistogram(scores, { rotationIndices: rot, bins: 100 });
    expect(want.count).toBe(scores.length - Math.ceil(scores.length / 97) - 1); // unscored voxels and the NaN left out
    expect(want.edges.every(Number.isFinite)).toBe(true);
    // 1 and 3 sections a read carry every block across reads; 7 and all read the first block in place.
    for (const sections of [1, 3, 7, 12]) {
      const got = scoreHistogramOfSections(sectionsOfVolume(createVolume(scores, shape, [1, 1, 1])), sectionsOfVolume(rotVolume), { bins: 100, maxReadBytes: 2 * sections * section });
      expect(got).toEqual(want);
    }
  });

  it('refuses rotation indices of another shape', () => {
    const other = createVolume(new Float32Array(10 * 100 * 100), [10, 100, 100], [1, 1, 1]);
    expect(() => scoreHistogramOfSections(sectionsOfVolume(volume), sectionsOfVolume(other))).toThrow(/rotationIndices/);
  });
});
