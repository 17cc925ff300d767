import { createVolume } from '@tme/formats';
import { boxCentreOf, extractSubtomogram, normaliseInPlace } from '../src/subtomogram';

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

  it('pads outside voxels with the tomogram mean at the edges, or skips by option', () => {
    let mean = 0;
    for (const v of tomo.data) mean += v;
    mean /= tomo.data.length;
    const r = extractSubtomogram(tomo, [1, 1, 1], { box: 8, normalise: false });
    expect(r.status).toBe('padded');
    if (r.status === 'skipped') throw new Error('unexpected');
    expect(r.data[0]).toBeCloseTo(mean, 1); // voxel (−3, −3, −3)
    expect(r.data[(4 * 8 + 4) * 8 + 4]).toBe(10101);
    expect(extractSubtomogram(tomo, [1, 1, 1], { box: 8, edge: 'skip' })).toMatchObject({ status: 'skipped', reason: 'edge' });
    expect(extractSubtomogram(tomo, [-1, 5, 5], { box: 8 })).toMatchObject({ status: 'skipped', reason: 'outside' });
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
  it('normaliseInPlace leaves a constant box at zero', () => {
    const d = new Float32Array([3, 3, 3]);
    normaliseInPlace(d);
    expect(Array.from(d)).toEqual([0, 0, 0]);
  });
});
