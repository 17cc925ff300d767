import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MrcRegionReader, createVolume, writeMrc, type Volume, type Zyx } from '@tme/formats';
import { buildTargetFilter } from '@tme/template';
import { nativeAddonBuilt } from '../src/native-backend';
import { matchTemplateOutOfCore } from '../src/match';
import { createDiskOrientationScorer, createOrientationScorer, readPaddedBox } from '../src/orientation-scorer';
import { extractRegion, type PadMode } from '../src/padding';
import { blobTemplate, plantedTarget, rotationSet } from './helpers';

// Refinement of a tomogram on disk reads each pick's box by region: it must score exactly as the scorer of the whole
// target does, also where the box crosses faces and corners (each padding mode) and beside a region without data.
const SHAPE: Zyx = [33, 38, 52];
const ROTATIONS = rotationSet([['z', 0], ['x', 30], ['y', 60], ['z', 90], ['x', -45]]);
// Corners, faces, one voxel in, and the interior.
const POSITIONS: Zyx[] = [
  [0, 0, 0], [32, 37, 51], [0, 37, 0], [32, 0, 51], [1, 18, 25], [16, 1, 50], [31, 20, 0], [16, 19, 26], [10, 12, 14], [25, 30, 20], [20, 10, 41],
];

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-disk-scorer-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function onDisk(name: string, data: Float32Array, shape: Zyx): { volume: Volume; file: string } {
  const volume = createVolume(data, shape, 2);
  const file = path.join(dir, name);
  writeMrc(file, volume);
  return { volume, file };
}

describe('readPaddedBox', () => {
  test.each(['mean', 'zero', 'mirror'] as const)('equals extractRegion of the whole volume (%s), boxes larger than the volume too', (mode) => {
    const shape: Zyx = [5, 7, 6];
    const { volume, file } = onDisk(`small-${mode}.mrc`, plantedTarget(shape, [], false), shape);
    const reader = new MrcRegionReader(file);
    try {
      for (const start of [[-6, -6, -6], [-3, 2, -1], [0, 0, 0], [2, -5, 3], [4, 6, 5], [-12, -12, -12]] as Zyx[]) {
        expect(readPaddedBox(reader, start, [12, 12, 12], mode, 0.25)).toEqual(extractRegion(volume.data, shape, start, [12, 12, 12], mode, 0.25));
      }
    } finally {
      reader.close();
    }
  });
});

(nativeAddonBuilt() ? describe : describe.skip)('createDiskOrientationScorer', () => {
  describe.each([
    ['mean', false], ['mean', true], ['zero', true], ['mirror', false], ['mirror', true],
  ] as const)('padding %s, no-data slab %s', (padTarget, withNoData) => {
    test.each(['flc-sphere', 'flc'])('%s: the in-memory scorer\'s scores bit for bit, at corners, faces and inside', async (score) => {
      const { volume, file } = onDisk(`t-${padTarget}-${withNoData}-${score}.mrc`, plantedTarget(SHAPE, [[10, 12, 14], [25, 30, 20]], withNoData), SHAPE);
      const job = { template: blobTemplate(12), rotations: ROTATIONS, score, padTarget: padTarget as PadMode, device: 'cpu' as const, threads: 1 };
      const queries = POSITIONS.map((position) => ({ position, rotations: ROTATIONS }));
      const expected = await createOrientationScorer({ ...job, target: volume })(queries);
      const reader = new MrcRegionReader(file);
      try {
        const disk = await createDiskOrientationScorer({ ...job, target: reader }, { dir });
        const got = await disk.scorer(queries);
        disk.release();
        expect(got).toEqual(expected);
        // Not a vacuous equality: a planted particle scores ~6σ of noise at its centre.
        expect(Math.max(...(got[8] as Float32Array))).toBeGreaterThan(0.15);
      } finally {
        reader.close();
      }
    });
  });

  test('with a target filter: the whole volume re-filtered by the search\'s passes; scores within 1e-6 of the in-memory target\'s, its temporary file removed', async () => {
    const { volume, file } = onDisk('filtered.mrc', plantedTarget(SHAPE, [[10, 12, 14], [25, 30, 20]], true), SHAPE);
    const targetFilter = buildTargetFilter({ wedge: { tiltRange: [-60, 60] }, bandPass: { lowpassAngstrom: 8, highpassAngstrom: 60 }, applyWedgeToTarget: true });
    const job = { template: blobTemplate(12), rotations: ROTATIONS, targetFilter, padTarget: 'mirror' as const, device: 'cpu' as const, threads: 1 };
    const queries = POSITIONS.map((position) => ({ position, rotations: ROTATIONS }));
    const expected = await createOrientationScorer({ ...job, target: volume })(queries);
    const work = fs.mkdtempSync(path.join(dir, 'work-'));
    const reader = new MrcRegionReader(file);
    try {
      const disk = await createDiskOrientationScorer({ ...job, target: reader }, { dir: work });
      expect(fs.readdirSync(work).length).toBe(1); // the filtered volume, while the scorer lives
      const got = await disk.scorer(queries);
      disk.release();
      expect(fs.readdirSync(work)).toEqual([]);
      let worst = 0;
      got.forEach((g, i) => g.forEach((v, k) => { worst = Math.max(worst, Math.abs(v - ((expected[i] as Float32Array)[k] as number))); }));
      expect(worst).toBeLessThanOrEqual(1e-6);
      expect(Math.max(...(got[8] as Float32Array))).toBeGreaterThan(0.3);
      expect(disk.reusedFilter).toBe(false);
    } finally {
      reader.close();
    }
  });

  test('given the search\'s filtered tomogram (matchTemplateOutOfCore keepFilteredTarget) it reads that, not a new one: the same scores; another filter is made anew', async () => {
    const { file } = onDisk('kept.mrc', plantedTarget(SHAPE, [[10, 12, 14], [25, 30, 20]], true), SHAPE);
    const targetFilter = buildTargetFilter({ wedge: { tiltRange: [-60, 60] }, bandPass: { lowpassAngstrom: 8, highpassAngstrom: 60 }, applyWedgeToTarget: true });
    const job = { template: blobTemplate(12), rotations: ROTATIONS, targetFilter, padTarget: 'mirror' as const, device: 'cpu' as const, threads: 1 };
    const queries = POSITIONS.map((position) => ({ position, rotations: ROTATIONS }));
    const work = fs.mkdtempSync(path.join(dir, 'kept-'));
    const reader = new MrcRegionReader(file);
    try {
      const search = await matchTemplateOutOfCore({ ...job, target: reader, rotations: ROTATIONS.subarray(0, 9) },
        { scores: path.join(work, 'scores.mrc'), rotations: path.join(work, 'rotations.mrc') }, { keepFilteredTarget: true });
      const kept = search.filteredTarget;
      expect(kept).toBeDefined();
      const temporary = fs.readdirSync(work).filter((n) => n.endsWith('.tmp'));
      expect(temporary).toHaveLength(1); // the filtered tomogram, handed over
      // Its own filter: the same scores, bit for bit, and no second file.
      const own = await createDiskOrientationScorer({ ...job, target: reader }, { dir: work });
      const expected = await own.scorer(queries);
      own.release();
      const reused = await createDiskOrientationScorer({ ...job, target: reader }, { dir: work, filtered: kept });
      expect(reused.reusedFilter).toBe(true);
      expect(fs.readdirSync(work).filter((n) => n.endsWith('.tmp'))).toEqual(temporary);
      expect(await reused.scorer(queries)).toEqual(expected);
      reused.release(); // not its file: still there
      expect(fs.readdirSync(work).filter((n) => n.endsWith('.tmp'))).toEqual(temporary);
      // Another filter (its own object, even with the same settings) is not taken for it.
      const other = buildTargetFilter({ wedge: { tiltRange: [-60, 60] }, bandPass: { lowpassAngstrom: 8, highpassAngstrom: 60 }, applyWedgeToTarget: true });
      const fresh = await createDiskOrientationScorer({ ...job, targetFilter: other, target: reader }, { dir: work, filtered: kept });
      expect(fresh.reusedFilter).toBe(false);
      fresh.release();
      kept?.release();
      expect(fs.readdirSync(work).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    } finally {
      reader.close();
    }
  });
});
