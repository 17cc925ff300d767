import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MrcRegionReader, createVolume, writeMrc } from '@tme/formats';
import { boxCentreOf, extractSubtomogram } from '../src/subtomogram';

/** value = 10000·z + 100·y + x, so every voxel says where it came from. */
function ramp(shape: [number, number, number]) {
  const [nz, ny, nx] = shape;
  const data = new Float32Array(nz * ny * nx);
  for (let z = 0; z < nz; z += 1) for (let y = 0; y < ny; y += 1) for (let x = 0; x < nx; x += 1) data[(z * ny + y) * nx + x] = 10000 * z + 100 * y + x;
  return createVolume(data, shape, 10);
}

describe('extractSubtomogram', () => {
  const tomo = ramp([30, 40, 50]);

  it('puts the pick’s integer voxel at box//2 (x fastest)', () => {
    const r = extractSubtomogram(tomo, [12.4, 20.6, 25], { box: 8, normalise: false });
    expect(r.status).toBe('inside');
    if (r.status === 'skipped') throw new Error('unexpected');
    expect(r.centre).toEqual([12, 21, 25]);
    expect(r.data[(4 * 8 + 4) * 8 + 4]).toBe(10000 * 12 + 100 * 21 + 25);
    expect(r.data[(0 * 8 + 0) * 8 + 0]).toBe(10000 * 8 + 100 * 17 + 21);
    expect(r.data[(7 * 8 + 7) * 8 + 7]).toBe(10000 * 15 + 100 * 24 + 28);
  });

  it('fills the outside of a box crossing a face with the mean of its inside voxels, or skips by option', () => {
    // Box 8 at voxel (1, 1, 1) spans −3..4: voxels 0..4 of each axis are inside, 125 of 512.
    const r = extractSubtomogram(tomo, [1, 1, 1], { box: 8, normalise: false });
    expect(r.status).toBe('padded');
    if (r.status === 'skipped') throw new Error('unexpected');
    expect(r.outsideFraction).toBeCloseTo(1 - 125 / 512, 12);
    expect(r.data[0]).toBe(20202); // voxel (−3, −3, −3): mean of the inside ramp, 10000·2 + 100·2 + 2
    expect(r.data[(4 * 8 + 4) * 8 + 4]).toBe(10101);
    expect(r.data[(7 * 8 + 7) * 8 + 7]).toBe(40404);
    const inverted = extractSubtomogram(tomo, [1, 1, 1], { box: 8, normalise: false, invert: true });
    if (inverted.status === 'skipped') throw new Error('unexpected');
    expect(inverted.data[0]).toBe(-20202);
    expect(extractSubtomogram(tomo, [15, 20, 25], { box: 8 })).toMatchObject({ status: 'inside', outsideFraction: 0 });
    expect(extractSubtomogram(tomo, [1, 1, 1], { box: 8, edge: 'skip' })).toMatchObject({ status: 'skipped', reason: 'edge' });
    expect(extractSubtomogram(tomo, [-1, 5, 5], { box: 8 })).toMatchObject({ status: 'skipped', reason: 'outside' });
  });

  it('normalises a filled box over its inside voxels: inside mean 0, std 1, outside exactly 0', () => {
    const r = extractSubtomogram(tomo, [28, 2, 47], { box: 10, invert: true });
    if (r.status === 'skipped') throw new Error('unexpected');
    // z 23..32 → 23..29 inside (7), y −3..6 → 0..6 (7), x 42..51 → 42..49 (8)
    expect(r.outsideFraction).toBeCloseTo(1 - (7 * 7 * 8) / 1000, 12);
    let n = 0; let s = 0; let s2 = 0;
    for (let k = 0; k < 10; k += 1) for (let j = 0; j < 10; j += 1) for (let i = 0; i < 10; i += 1) {
      const v = r.data[(k * 10 + j) * 10 + i]!;
      if (k < 7 && j >= 3 && i < 8) { n += 1; s += v; s2 += v * v; } else expect(v).toBe(0);
    }
    expect(n).toBe(392);
    expect(s / n).toBeCloseTo(0, 5);
    expect(Math.sqrt(s2 / n)).toBeCloseTo(1, 5);
    // inverted: the highest ramp voxel inside (z 29, y 6, x 49) is the lowest value
    expect(r.data[(6 * 10 + 9) * 10 + 7]).toBe(Math.min(...r.data));
  });

  it('inverts and normalises to mean 0, std 1', () => {
    const r = extractSubtomogram(tomo, [15, 20, 25], { box: 10, invert: true, normalise: true });
    if (r.status === 'skipped') throw new Error('unexpected');
    let s = 0;
    let s2 = 0;
    for (const v of r.data) { s += v; s2 += v * v; }
    expect(s / r.data.length).toBeCloseTo(0, 5);
    expect(Math.sqrt(s2 / r.data.length)).toBeCloseTo(1, 5);
    // inverted: the voxel with the largest ramp value is now the smallest
    expect(r.data[r.data.length - 1]).toBe(Math.min(...r.data));
  });

  it('refuses odd boxes', () => {
    expect(() => extractSubtomogram(tomo, [15, 20, 25], { box: 9 })).toThrow(/EVEN/);
  });
});

describe('helpers', () => {
  it('boxCentreOf rounds each axis', () => {
    expect(boxCentreOf([1.49, 1.5, 2.51])).toEqual([1, 2, 3]);
  });
  it('a constant box only loses its mean', () => {
    const flat = createVolume(new Float32Array(16 * 16 * 16).fill(3), [16, 16, 16], 10);
    const r = extractSubtomogram(flat, [2, 8, 8], { box: 8 });
    if (r.status === 'skipped') throw new Error('unexpected');
    expect(r.data.every((v) => v === 0)).toBe(true);
  });
});

describe('extractSubtomogram from a tomogram on disk (read by region)', () => {
  // Noise with an offset: the normalisation's sums see real values, not a ramp's exact ones.
  const shape: [number, number, number] = [21, 26, 30];
  let seed = 7;
  const data = Float32Array.from({ length: 21 * 26 * 30 }, () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return 100 + seed / 2 ** 31; });
  const tomo = createVolume(data, shape, 10);
  let dir: string;
  beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-subtomo-')); writeMrc(path.join(dir, 't.mrc'), tomo); });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    [[10, 13, 15]], [[0, 0, 0]], [[20, 25, 29]], [[2, 24, 1]], [[19.6, 0.4, 14]], [[10, 13, 29.2]],
  ] as Array<[[number, number, number]]>)('at %j: the in-memory box bit for bit (inside, across faces and corners; inverted and not normalised too)', (position) => {
    const reader = new MrcRegionReader(path.join(dir, 't.mrc'));
    try {
      for (const options of [{ box: 12 }, { box: 8, invert: true }, { box: 16, normalise: false }]) {
        const disk = extractSubtomogram(reader, position, options);
        expect(disk).toEqual(extractSubtomogram(tomo, position, options));
        expect(disk.status).not.toBe('skipped');
      }
    } finally {
      reader.close();
    }
  });
});
