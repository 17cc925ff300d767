import fc from 'fast-check';
import type { Zyx } from '@tme/formats';
import { matrixToPytmeEuler } from '@tme/rotations';
import type { ScoreMaps } from '../src';
import { callPeaks, falseAlarmThreshold } from '../src';
import { identityTable, noiseSearch, plantBlob, rng } from './helpers/synthetic';

function dist(a: Zyx, b: Zyx): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/** O(n²) reference: every voxel in the region above `lower` (optionally local maxima), sorted, greedy. */
function bruteForce(maps: ScoreMaps, lower: number, minDistance: number, numPeaks: number, edge: number, localMaxima: boolean): Zyx[] {
  const [nz, ny, nx] = maps.shape;
  const at = (z: number, y: number, x: number): number => maps.scores[(z * ny + y) * nx + x]!;
  const cands: Array<{ p: Zyx; s: number; i: number }> = [];
  for (let z = edge; z < nz - edge; z++) for (let y = edge; y < ny - edge; y++) for (let x = edge; x < nx - edge; x++) {
    const s = at(z, y, x);
    if (!(s >= lower)) continue;
    let isMax = true;
    if (localMaxima) {
      for (let dz = -1; dz <= 1; dz++) for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const zz = z + dz, yy = y + dy, xx = x + dx;
        if (zz < 0 || yy < 0 || xx < 0 || zz >= nz || yy >= ny || xx >= nx) continue;
        if (at(zz, yy, xx) > s) isMax = false;
      }
    }
    if (isMax) cands.push({ p: [z, y, x], s, i: (z * ny + y) * nx + x });
  }
  cands.sort((a, b) => b.s - a.s || a.i - b.i);
  const out: Zyx[] = [];
  for (const c of cands) {
    if (out.length >= numPeaks) break;
    if (out.every((q) => dist(q, c.p) >= minDistance)) out.push(c.p);
  }
  return out;
}

function randomMaps(shape: Zyx, seed: number, levels = 0): ScoreMaps {
  const r = rng(seed);
  const n = shape[0] * shape[1] * shape[2];
  // levels > 0 quantises scores so that ties (plateaus) occur and the tie rule is exercised.
  const scores = Float32Array.from({ length: n }, () => (levels > 0 ? Math.floor(r() * levels) / levels : r()));
  return { scores, rotationIndices: new Int32Array(n), shape, rotations: identityTable(1) };
}

describe('callPeaks: exact suppression', () => {
  it('never accepts two picks closer than minDistance and equals the O(n²) greedy reference', () => {
    fc.assert(
      fc.property(
        fc.record({
          nz: fc.integer({ min: 1, max: 9 }), ny: fc.integer({ min: 1, max: 9 }), nx: fc.integer({ min: 1, max: 12 }),
          seed: fc.integer(), levels: fc.constantFrom(0, 3, 7),
          minDistance: fc.double({ min: 0, max: 6, noNaN: true }),
          numPeaks: fc.integer({ min: 1, max: 40 }), edge: fc.integer({ min: 0, max: 2 }),
          localMaxima: fc.boolean(), lower: fc.constantFrom(0, 0.3, 0.8),
        }),
        (c) => {
          const maps = randomMaps([c.nz, c.ny, c.nx], c.seed, c.levels);
          const set = callPeaks(maps, { minDistance: c.minDistance, numPeaks: c.numPeaks, edge: c.edge, localMaxima: c.localMaxima, minScore: c.lower });
          const got = set.picks.map((p) => p.position);
          for (let a = 0; a < got.length; a++) for (let b = a + 1; b < got.length; b++) {
            expect(dist(got[a]!, got[b]!)).toBeGreaterThanOrEqual(c.minDistance);
          }
          expect(got).toEqual(bruteForce(maps, c.lower, c.minDistance, c.numPeaks, c.edge, c.localMaxima));
          for (let k = 1; k < set.picks.length; k++) expect(set.picks[k]!.score).toBeLessThanOrEqual(set.picks[k - 1]!.score);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('equals the reference also when the candidates are consumed in several sorted slices', () => {
    // 27 000 candidates, 300 picks at distance 4: the first slice (4096 candidates) yields ~100, so more follow
    for (const levels of [0, 50]) {
      const maps = randomMaps([30, 30, 30], 77 + levels, levels);
      const set = callPeaks(maps, { minDistance: 4, numPeaks: 300, edge: 0, localMaxima: false, minScore: -1 });
      expect(set.candidates).toBe(27000);
      expect(set.picks.map((p) => p.position)).toEqual(bruteForce(maps, -1, 4, 300, 0, false));
    }
  });

  it('keeps exactly minDistance apart (distance < d is forbidden, = d allowed)', () => {
    const maps = randomMaps([1, 1, 20], 1);
    maps.scores.fill(0);
    maps.scores[5] = 3;
    maps.scores[9] = 2; // 4 voxels from the first
    maps.scores[12] = 1; // 3 from the second, 7 from the first
    const at4 = callPeaks(maps, { minDistance: 4, minScore: 0.5 }).picks.map((p) => p.position[2]);
    expect(at4).toEqual([5, 9]);
    const at41 = callPeaks(maps, { minDistance: 4.1, minScore: 0.5 }).picks.map((p) => p.position[2]);
    expect(at41).toEqual([5, 12]);
  });
});

describe('callPeaks: planted peaks and false alarms', () => {
  it('recovers every planted peak above the 1-false-alarm threshold, with its rotation', () => {
    const maps = noiseSearch([24, 28, 32], 40, 7);
    const centres: Zyx[] = [[5, 6, 7], [12, 14, 20], [18, 8, 25], [6, 22, 26], [19, 21, 10]];
    centres.forEach((c, k) => plantBlob(maps, c, 7, 1.2, 11 + k));
    const set = callPeaks(maps, { minDistance: 4, edge: 0 });
    expect(set.threshold.kind).toBe('false-alarm');
    expect(set.threshold.expectedFalsePositives).toBe(1);
    expect(set.threshold.value).toBeCloseTo(falseAlarmThreshold(maps.statistics!, 1, 24 * 28 * 32), 12);
    const top = set.picks.slice(0, centres.length);
    expect(top.map((p) => p.position).sort()).toEqual([...centres].sort());
    for (const p of top) {
      const k = centres.findIndex((c) => dist(c, p.position) === 0);
      expect(p.rotationIndex).toBe(11 + k);
      expect(p.pytmeEuler).toEqual(matrixToPytmeEuler(p.rotation));
      expect(p.searchSigmas).toBeCloseTo((p.score - maps.statistics!.mean) / maps.statistics!.std, 12);
      expect(p.localSnr).toBeGreaterThan(5);
    }
    expect(set.picks.length).toBeLessThanOrEqual(centres.length + 4); // a few false alarms at most
  });

  it('at noise only, the mean number of false positives matches the requested rate (150 seeds)', () => {
    // Each seed: max over R = 30 N(0,1) scores per voxel on a 16×16×16 map (122 880 trials). Picks above the
    // threshold are false positives; Poisson with mean nFP = 2, so over 150 seeds the mean has SE √(2/150) ≈ 0.115.
    const shape: Zyx = [16, 16, 16];
    const mask = new Uint8Array(16 * 16 * 16);
    for (let i = 0; i < mask.length; i += 2) mask[i] = 1; // half the voxels, interleaved
    let total = 0;
    let totalMasked = 0;
    const seeds = 150;
    for (let seed = 1; seed <= seeds; seed++) {
      const maps = noiseSearch(shape, 30, 1000 + seed);
      total += callPeaks(maps, { falseAlarms: 2, minDistance: 1.5, edge: 0 }).picks.length;
      const masked = callPeaks({ ...maps, mask }, { falseAlarms: 2, minDistance: 1.5, edge: 0, localMaxima: false });
      expect(masked.threshold.regionVoxels).toBe(2048);
      totalMasked += masked.picks.length;
    }
    expect(Math.abs(total / seeds - 2)).toBeLessThan(0.4);
    // With the mask the search space is the masked voxels (pytom #332), so the rate is the same, not half.
    expect(Math.abs(totalMasked / seeds - 2)).toBeLessThan(0.4);
  });
});

describe('callPeaks: region and thresholds', () => {
  it('calls up to the faces by default; an edge margin excludes its voxels and counts the candidates it dropped', () => {
    const maps = noiseSearch([20, 20, 20], 5, 3);
    plantBlob(maps, [2, 10, 10], 9, 1); // inside a 4-voxel margin
    plantBlob(maps, [10, 10, 10], 9, 1);
    plantBlob(maps, [10, 17, 10], 9, 1); // 17 ≥ 20 − 4
    plantBlob(maps, [10, 3, 19], 9, 1); // on the x face
    const everywhere = callPeaks({ ...maps, templateShape: [8, 9, 8] }, { minScore: 5, minDistance: 3 });
    expect(everywhere.edge).toEqual([0, 0, 0]);
    expect(everywhere.edgeDropped).toBe(0);
    expect(everywhere.picks.map((p) => p.position).sort()).toEqual([[2, 10, 10], [10, 10, 10], [10, 17, 10], [10, 3, 19]].sort());
    const set = callPeaks({ ...maps, templateShape: [8, 9, 8] }, { minScore: 5, minDistance: 3, edge: 4 });
    expect(set.edge).toEqual([4, 4, 4]);
    expect(set.picks.map((p) => p.position)).toEqual([[10, 10, 10]]);
    expect(set.edgeDropped).toBe(3);
    // Per axis: a z margin of 3 drops only the blob at z = 2.
    const zOnly = callPeaks(maps, { minScore: 5, minDistance: 3, edge: [3, 0, 0] });
    expect(zOnly.edgeDropped).toBe(1);
    expect(zOnly.picks).toHaveLength(3);
    fc.assert(fc.property(fc.integer({ min: 0, max: 11 }), (e) => {
      const s = callPeaks(maps, { edge: e, minDistance: 2, numPeaks: 50, minScore: -10 });
      for (const p of s.picks) {
        for (const v of p.position) { expect(v).toBeGreaterThanOrEqual(e); expect(v).toBeLessThan(20 - e); }
      }
      // The margin and the region together hold every candidate of the whole map, once.
      const whole = callPeaks(maps, { edge: 0, minDistance: 2, numPeaks: 50, minScore: -10 });
      expect(s.candidates + s.edgeDropped).toBe(whole.candidates);
    }), { numRuns: 12 });
  });

  it('applies maxScore and the mask before the top-N cut (pyTME applies them after)', () => {
    const maps = noiseSearch([16, 16, 40], 5, 4);
    const beads: Zyx[] = [[8, 8, 4], [8, 8, 12], [8, 8, 20]];
    for (const b of beads) plantBlob(maps, b, 50, 1);
    const particles: Zyx[] = [[5, 5, 30], [10, 10, 34], [8, 3, 26]];
    for (const p of particles) plantBlob(maps, p, 10, 1);
    const set = callPeaks(maps, { numPeaks: 3, maxScore: 20, minScore: 6, minDistance: 3, edge: 0 });
    expect(set.picks.map((p) => p.position).sort()).toEqual([...particles].sort());
    // the bead shoulders (below maxScore) are not local maxima, so they do not take the places either
    const mask = new Uint8Array(16 * 16 * 40);
    for (let i = 0; i < mask.length; i++) mask[i] = i % 40 >= 24 ? 1 : 0;
    const masked = callPeaks({ ...maps, mask }, { numPeaks: 3, minScore: 6, minDistance: 3, edge: 0 });
    expect(masked.picks.map((p) => p.position).sort()).toEqual([...particles].sort());
  });

  it('z-score threshold is mean + z·std of the best-score map in the region; reports why', () => {
    const maps = noiseSearch([12, 12, 12], 10, 5);
    const set = callPeaks(maps, { zScore: 3, edge: 1 });
    let n = 0, s = 0, q = 0;
    for (let z = 1; z < 11; z++) for (let y = 1; y < 11; y++) for (let x = 1; x < 11; x++) {
      const v = maps.scores[(z * 12 + y) * 12 + x]!; n++; s += v; q += v * v;
    }
    const mean = s / n;
    const std = Math.sqrt(q / n - mean * mean);
    expect(set.threshold.kind).toBe('z-score');
    expect(set.threshold.value).toBeCloseTo(mean + 3 * std, 9);
    expect(set.threshold.reason).toMatch(/z-score 3/);
    expect(set.threshold.expectedFalsePositives).toBeGreaterThan(0);
    for (const p of set.picks) {
      expect(p.score).toBeGreaterThanOrEqual(set.threshold.value);
      expect(p.zScore).toBeCloseTo((p.score - mean) / std, 9);
    }
  });

  it('without statistics and threshold takes the top N; refuses two thresholds', () => {
    const maps = randomMaps([6, 6, 6], 9);
    const set = callPeaks(maps, { numPeaks: 4, minDistance: 2 });
    expect(set.threshold.kind).toBe('none');
    expect(set.picks).toHaveLength(4);
    expect(() => callPeaks(maps, { minScore: 1, zScore: 2 })).toThrow('Expected at most one of minScore, falseAlarms, zScore for threshold');
    expect(() => callPeaks(maps, { falseAlarms: 1 })).toThrow(/statistics/);
    expect(() => callPeaks(maps, { numPeaks: 0 })).toThrow('Expected integer ≥ 1 for numPeaks but received 0 of type number');
  });

  it('converts a minimum distance in Å with the voxel size and skips unscored voxels', () => {
    const maps = randomMaps([1, 1, 30], 2);
    maps.scores.fill(0);
    maps.scores[3] = 5; maps.scores[10] = 4; maps.scores[20] = 3; maps.scores[25] = 9;
    (maps.rotationIndices as Int32Array)[25] = -1;
    const set = callPeaks({ ...maps, voxelSize: [10, 10, 10], origin: [0, 0, 100] }, { minDistanceAngstrom: 75, minScore: 1 });
    expect(set.minDistance).toBeCloseTo(7.5, 12);
    expect(set.picks.map((p) => p.position[2])).toEqual([3, 20]);
    expect(set.picks[0]!.positionAngstrom).toEqual([0, 0, 130]);
  });
});

describe('sub-voxel refinement', () => {
  it('recovers a known fractional shift to 0.1 voxel', () => {
    for (const [shift, sigma] of [[[0.3, -0.2, 0.45], 1.5], [[-0.4, 0.1, -0.25], 2], [[0.1, 0.35, -0.45], 1.2]] as Array<[Zyx, number]>) {
      const n = 21;
      const maps: ScoreMaps = { scores: new Float32Array(n ** 3), rotationIndices: new Int32Array(n ** 3), shape: [n, n, n], rotations: identityTable(1) };
      const centre: Zyx = [10 + shift[0], 10 + shift[1], 10 + shift[2]];
      plantBlob(maps, centre, 1, sigma);
      const [pick] = callPeaks(maps, { subvoxel: true, numPeaks: 1, minScore: 0.5 }).picks;
      expect(pick!.position).toEqual([10, 10, 10]);
      for (let a = 0; a < 3; a++) expect(Math.abs(pick!.shift[a]! - shift[a]!)).toBeLessThan(0.1);
      expect(Math.abs(pick!.positionAngstrom[2] - centre[2])).toBeLessThan(0.1);
    }
  });
});
