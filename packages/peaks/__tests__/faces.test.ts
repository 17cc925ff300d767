import type { Zyx } from '@tme/formats';
import { callPeaks, faceDistances, faceThresholds } from '../src';
import { regionFor } from '../src/region';
import { rng } from './helpers/synthetic';

function gaussian(u: () => number): number {
  let a = 0;
  while (a === 0) a = u();
  return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * u());
}

describe('faceDistances', () => {
  it('is the chessboard distance to the nearest face or unscored voxel, capped', () => {
    const shape: Zyx = [9, 10, 11];
    const n = 9 * 10 * 11;
    const scores = new Float32Array(n).fill(1);
    const rot = new Int32Array(n).fill(0);
    const holes: Zyx[] = [[4, 5, 6], [2, 2, 8]];
    for (const [z, y, x] of holes) rot[(z * 10 + y) * 11 + x] = -1;
    const d = faceDistances(shape, scores, rot, 3);
    for (let z = 0; z < 9; z++) for (let y = 0; y < 10; y++) for (let x = 0; x < 11; x++) {
      let want = Math.min(z, 8 - z, y, 9 - y, x, 10 - x, 3);
      for (const [hz, hy, hx] of holes) want = Math.min(want, Math.max(Math.abs(z - hz), Math.abs(y - hy), Math.abs(x - hx)));
      expect(d[(z * 10 + y) * 11 + x]).toBe(want);
    }
  });
});

describe('face-aware thresholds', () => {
  // A best-score map of noise whose upper tail is 10 % wider within 4 voxels of a face (as partial-mask
  // normalisation makes it near a face): with one threshold the faces get far more noise peaks than the interior.
  const shape: Zyx = [40, 64, 64];
  const n = 40 * 64 * 64;
  const u = rng(11);
  const scores = new Float32Array(n);
  const near = (z: number, y: number, x: number): boolean => Math.min(z, 39 - z, y, 63 - y, x, 63 - x) < 4;
  for (let z = 0, i = 0; z < 40; z++) for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++, i++) {
    scores[i] = 0.05 + 0.01 * (near(z, y, x) ? 1.1 : 1) * gaussian(u);
  }
  const faceVoxels = n - 32 * 56 * 56;
  const count = (picks: Array<{ position: Zyx }>): number => {
    let f = 0;
    for (const p of picks) if (near(...p.position)) f++;
    return (f / faceVoxels) / ((picks.length - f) / (n - faceVoxels));
  };
  const rot = new Int32Array(n);
  const maps = { scores, rotationIndices: rot, shape, rotations: new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]), templateShape: [16, 16, 16] as Zyx };

  it('raises the threshold where the map is wider and keeps it elsewhere', () => {
    const f = faceThresholds(scores, rot, regionFor(shape, [0, 0, 0], undefined), 0.085, 8);
    expect(f.thresholds[8]).toBe(0.085);
    for (let d = 0; d < 4; d++) {
      expect(f.spreadRatio[d]).toBeGreaterThan(1.03);
      // median 0.05 + 1.1 × (0.085 − 0.05)
      expect(f.thresholds[d]).toBeCloseTo(0.0885, 2);
    }
    for (let d = 4; d < 8; d++) expect(f.thresholds[d]).toBeLessThan(0.0865); // farther in: not wider
  });

  it('gives the faces as few noise peaks per voxel as the interior (and says so in the report)', () => {
    // minScore is the user's own cut-off: never moved.
    const fixed = callPeaks(maps, { minScore: 0.075, minDistance: 1, numPeaks: 1e6 });
    expect(fixed.threshold.faces).toBeUndefined();
    expect(count(fixed.picks)).toBeGreaterThan(1.5);
    const zset = callPeaks(maps, { zScore: 2.5, minDistance: 1, numPeaks: 1e6 });
    expect(zset.threshold.faces?.within).toBe(8);
    expect(zset.picks.length).toBeGreaterThan(300);
    expect(count(zset.picks)).toBeLessThan(1.2);
    const plain = callPeaks(maps, { zScore: 2.5, minDistance: 1, numPeaks: 1e6, faceThresholds: false });
    expect(count(plain.picks)).toBeGreaterThan(1.5);
    expect(plain.threshold.faces).toBeUndefined();
  });
});
