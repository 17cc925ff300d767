import { createVolume, type Zyx } from '@tme/formats';
import { matchTemplate } from '../src/match';
import { findNoData } from '../src/no-data';
import { ReferenceBackend } from '../src/reference-backend';
import { blobTemplate, gaussianNoise, rotationSet } from './helpers';

describe('findNoData', () => {
  const shape: Zyx = [6, 7, 8];
  const n = 6 * 7 * 8;

  it('flags an exactly constant band with its rim, and nothing in noise', () => {
    const data = gaussianNoise(n, 3);
    for (let i = 0; i < n; i++) if (i % 8 >= 5) data[i] = 0; // x = 5, 6, 7 zero-filled
    const mask = findNoData(data, shape)!;
    for (let i = 0; i < n; i++) expect(mask[i]).toBe(i % 8 >= 5 ? 1 : 0);
    expect(findNoData(gaussianNoise(n, 4), shape)).toBeUndefined();
  });

  it('does not flag 8-bit noise, where equal neighbours are common but never 26 of them', () => {
    const data = gaussianNoise(n, 5).map((v) => Math.round(v * 3));
    expect(findNoData(data, shape)).toBeUndefined();
  });
});

describe('matchTemplate on a target with a zero-filled band', () => {
  it('scores nothing there (0, no rotation), keeps the band out of the statistics, and scores the rest as before', async () => {
    const shape: Zyx = [12, 13, 14];
    const noise = gaussianNoise(12 * 13 * 14, 8);
    const band = Float32Array.from(noise, (v, i) => (i % 14 >= 10 ? 0 : v));
    const template = blobTemplate(5);
    const rotations = rotationSet([['z', 0], ['x', 90], ['y', 30]]);
    const reference = new ReferenceBackend();
    const run = (data: Float32Array) => matchTemplate({ target: createVolume(data, shape, template.voxelSize), template, rotations, maskRadius: 4 }, { backend: reference });
    const banded = await run(band);
    for (let i = 0; i < band.length; i++) {
      if (i % 14 >= 10) {
        expect(banded.scores.data[i]).toBe(0);
        expect(banded.indices[i]).toBe(-1);
      } else {
        expect(banded.indices[i]).toBeGreaterThanOrEqual(0);
      }
    }
    expect(banded.stats.voxelCount).toBe(12 * 13 * 10);
    expect(banded.stats.count).toBe(12 * 13 * 10 * 3);
    // The band took the mean of the data: its edge is a face with mean padding. Cut to the data (x < 10), the same
    // search gives the same scores wherever the template does not reach past the edge into the other face's wrap.
    const cut = new Float32Array(12 * 13 * 10);
    for (let z = 0; z < 12; z++) for (let y = 0; y < 13; y++) for (let x = 0; x < 10; x++) cut[(z * 13 + y) * 10 + x] = noise[(z * 13 + y) * 14 + x]!;
    const alone = await matchTemplate({ target: createVolume(cut, [12, 13, 10], template.voxelSize), template, rotations, maskRadius: 4 }, { backend: reference });
    let diff = 0;
    for (let z = 0; z < 12; z++) for (let y = 0; y < 13; y++) for (let x = 0; x < 10; x++) {
      diff = Math.max(diff, Math.abs(banded.scores.data[(z * 13 + y) * 14 + x]! - alone.scores.data[(z * 13 + y) * 10 + x]!));
    }
    expect(diff).toBeLessThan(1e-5);
  });
});
