import type { Zyx } from '@tme/formats';
import type { CallPeaksOptions, ScoreMaps, ScoreSlabSource } from '../src';
import { callPeaks, callPeaksBySlabs, scoreHistogram, slabHalo } from '../src';
import { noiseSearch, plantBlob } from './helpers/synthetic';

const SHAPE: Zyx = [40, 48, 52];
const TEMPLATE: Zyx = [12, 12, 12];

/** A noise search with particles on and across every slab boundary tested, and a region without data (rotation −1). */
function maps(): ScoreMaps {
  const m = noiseSearch(SHAPE, 30, 7);
  const centres: Zyx[] = [[0.5, 20, 20], [4.5, 10, 12], [5, 30, 40], [9.5, 24, 26], [13, 8, 44], [17.5, 40, 9], [21, 20, 30], [26.5, 33, 17], [33, 12, 12], [39, 45, 50]];
  centres.forEach((c, k) => plantBlob(m, c, 9 + 0.2 * k, 1.6, (3 * k) % 30));
  // Two particles nearer than the minimum distance, across a boundary: one suppresses the other.
  plantBlob(m, [14.5, 30, 30], 8.5, 1.2, 4);
  plantBlob(m, [16.5, 31, 32], 8, 1.2, 5);
  const [, ny, nx] = SHAPE;
  for (let z = 20; z < 31; z++) for (let y = 0; y < ny; y++) for (let x = 44; x < nx; x++) { m.scores[(z * ny + y) * nx + x] = 0; m.rotationIndices[(z * ny + y) * nx + x] = -1; }
  return { ...m, templateShape: TEMPLATE, voxelSize: [10, 10, 10], origin: [5, -3, 2] };
}

function source(m: ScoreMaps, mask: Float32Array | undefined): ScoreSlabSource & { reads: number[] } {
  const plane = SHAPE[1] * SHAPE[2];
  const reads: number[] = [];
  return {
    shape: SHAPE, reads,
    read: (z0, n) => {
      reads.push(n);
      const part = <T extends Float32Array | Int32Array>(a: T): T => a.slice(z0 * plane, (z0 + n) * plane) as T;
      return { scores: part(m.scores), rot: Float32Array.from(part(m.rotationIndices as Int32Array)), ...(mask ? { mask: part(mask) } : {}) };
    },
  };
}

const mask = ((): Float32Array => {
  const [nz, ny, nx] = SHAPE;
  const out = new Float32Array(nz * ny * nx);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) out[(z * ny + y) * nx + x] = (z - 20) ** 2 + (y - 24) ** 2 + (x - 26) ** 2 < 22 ** 2 ? 1 : 0;
  return out;
})();

describe('callPeaksBySlabs gives callPeaks\' picks, threshold and report to the last bit', () => {
  const m = maps();
  const cases: Array<[string, CallPeaksOptions, Float32Array | undefined]> = [
    ['false alarms (faces raised)', { subvoxel: true }, undefined],
    ['z-score, edge, max score', { zScore: 4, edge: [2, 3, 1], maxScore: 10.5, numPeaks: 5 }, undefined],
    ['min score, mask, subvoxel, min distance 9', { minScore: 5, minDistance: 9, subvoxel: true }, mask],
    ['one template of two', { falseAlarms: 3, templateStarts: [0, 15], onlyTemplate: 1 }, mask],
  ];
  test.each(cases)('%s', (_name, options, withMask) => {
    const whole = callPeaks({ ...m, ...(withMask ? { mask: withMask } : {}) }, options);
    expect(whole.picks.length).toBeGreaterThanOrEqual(options.numPeaks === 5 ? 5 : 2);
    const histogram = scoreHistogram(m.scores, {
      rotationIndices: m.rotationIndices, ...(withMask ? { mask: withMask } : {}), bins: 100,
      ...(Number.isFinite(whole.threshold.value) ? { threshold: whole.threshold.value } : {}),
    });
    // Slabs thinner than the minimum distance (6) and the halo, and thicker; the whole map in one. The report's
    // histogram once (its blocks of 64 Ki voxels need a halo of 27 sections of this small map).
    for (const sections of [2, 5, 13, 40]) {
      const src = source(m, withMask);
      const withHistogram = sections === 13;
      const { histogram: h, ...set } = callPeaksBySlabs(src, { rotations: m.rotations, statistics: m.statistics, templateShape: TEMPLATE, voxelSize: m.voxelSize, origin: m.origin }, options, sections, withHistogram ? { bins: 100 } : undefined);
      expect(set).toEqual(whole);
      if (withHistogram) expect(h).toEqual(histogram);
      expect(Math.max(...src.reads)).toBeLessThanOrEqual(sections + 2 * slabHalo(SHAPE, { ...options, templateShape: TEMPLATE, voxelSize: m.voxelSize }, withHistogram));
    }
  });

  test('the faces\' thresholds are raised and a particle on a slab boundary is picked', () => {
    const whole = callPeaks(m, {});
    expect(whole.threshold.faces).toBeDefined();
    expect(whole.picks.map((p) => p.position)).toEqual(expect.arrayContaining([[5, 30, 40], [13, 8, 44]]));
  });
});
