import fc from 'fast-check';
import type { Zyx } from '@tme/formats';
import { planTiles, type PlanTilesInput } from '../src/tiling';
import { nextSmoothSize } from '../src/fast-size';

const smooth = (s: Zyx): Zyx => [nextSmoothSize(s[0]), nextSmoothSize(s[1]), nextSmoothSize(s[2])];
const bytes = (s: Zyx): number => 4 * s[0] * s[1] * s[2];

function input(targetShape: Zyx, templateShape: Zyx, budgetBytes: number, tileShape?: Zyx): PlanTilesInput {
  return { targetShape, templateShape, budgetBytes, tileShape, nextFastShape: smooth, bytesFor: bytes };
}

describe('planTiles', () => {
  it('keeps a target that fits as one tile padded by the template half-box', () => {
    const plan = planTiles(input([100, 60, 70], [21, 21, 21], 1e12));
    expect(plan.reason).toBe('single');
    expect(plan.tiles).toEqual([{ index: 0, coreStart: [0, 0, 0], coreShape: [100, 60, 70], readStart: [-10, -10, -10], zone: 0 }]);
    expect(plan.fastShape).toEqual([120, 80, 90]);
  });

  it('refuses user tiles that would be nearly all overlap (16³ tiles of a 16³ support: 262,144 tiles)', () => {
    expect(() => planTiles(input([64, 64, 64], [16, 16, 16], 1e12, [16, 16, 16]))).toThrow(/Expected tiles of at least 32,32,32 or auto \(cores of 1,1,1 voxels make 262144 tiles/);
    expect(() => planTiles(input([64, 64, 64], [16, 16, 16], 1e12, [20, 20, 20]))).toThrow(/transforming \d+× the voxels of one whole tile/);
    // Twice the support is fine: 8 tiles of 32³ cores + overlap.
    expect(planTiles(input([64, 64, 64], [16, 16, 16], 1e12, [47, 47, 47])).tiles).toHaveLength(8);
  });

  it('splits the longest axis first until a tile fits', () => {
    const plan = planTiles(input([200, 100, 100], [11, 11, 11], bytes([128, 112, 112])));
    expect(plan.reason).toBe('memory');
    expect(plan.splits).toEqual([2, 1, 1]);
    expect(plan.fastShape).toEqual([112, 112, 112]);
    expect(plan.bytesPerTile).toBeLessThanOrEqual(bytes([128, 112, 112]));
  });

  it('cores partition the target exactly, every tile reads the same fast shape', () => {
    fc.assert(fc.property(
      fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 })),
      fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 })),
      fc.integer({ min: 2000, max: 400000 }),
      (target, box, budget) => {
        let plan;
        try { plan = planTiles(input(target as Zyx, box as Zyx, budget)); } catch { return true; }
        const hits = new Uint8Array(target[0] * target[1] * target[2]);
        for (const t of plan.tiles) {
          for (let a = 0; a < 3; a++) {
            expect(t.readStart[a]).toBe(t.coreStart[a]! - Math.floor(box[a]! / 2));
            // The fast shape covers the core plus the template box minus one.
            expect(plan.fastShape[a]).toBeGreaterThanOrEqual(t.coreShape[a]! + box[a]! - 1);
          }
          for (let z = 0; z < t.coreShape[0]; z++) for (let y = 0; y < t.coreShape[1]; y++) for (let x = 0; x < t.coreShape[2]; x++) {
            hits[((t.coreStart[0] + z) * target[1] + t.coreStart[1] + y) * target[2] + t.coreStart[2] + x]! += 1;
          }
        }
        expect(hits.every((h) => h === 1)).toBe(true);
        expect(plan.bytesPerTile).toBeLessThanOrEqual(budget);
        return true;
      }), { numRuns: 60 });
  });

  it('a user tile fixes the core as tile − template + 1', () => {
    const plan = planTiles(input([64, 64, 64], [9, 9, 9], 1e12, [40, 72, 24]));
    expect(plan.reason).toBe('user');
    expect(plan.splits).toEqual([2, 1, 4]);
    expect(plan.tiles[1]?.coreStart).toEqual([0, 0, 16]);
  });

  it('CTF zones split the tiles: every tile lies in one zone, whatever splits memory or --tile add', () => {
    const zoneSplits: Zyx = [3, 1, 2];
    for (const plan of [
      planTiles({ ...input([100, 60, 70], [21, 21, 21], 1e12), zoneSplits }),
      planTiles({ ...input([100, 60, 70], [21, 21, 21], bytes([60, 60, 60])), zoneSplits }),
      planTiles({ ...input([100, 60, 70], [21, 21, 21], 1e12, [40, 50, 60]), zoneSplits }),
    ]) {
      expect(plan.splits[0] % 3).toBe(0);
      expect(plan.splits[2] % 2).toBe(0);
      for (const t of plan.tiles) {
        // Zone boundaries: floor(i·100/3) along z, floor(i·70/2) along x.
        const zz = [0, 33, 66, 100].findIndex((b, i, a) => t.coreStart[0] >= b && t.coreStart[0] + t.coreShape[0] <= (a[i + 1] ?? 0));
        const zx = [0, 35, 70].findIndex((b, i, a) => t.coreStart[2] >= b && t.coreStart[2] + t.coreShape[2] <= (a[i + 1] ?? 0));
        expect(zz).toBeGreaterThanOrEqual(0);
        expect(zx).toBeGreaterThanOrEqual(0);
        expect(t.zone).toBe(zz * 2 + zx);
      }
    }
    expect(planTiles({ ...input([100, 60, 70], [21, 21, 21], 1e12), zoneSplits }).tiles).toHaveLength(6);
  });

  it('says why a job cannot fit', () => {
    expect(() => planTiles(input([64, 64, 64], [9, 9, 9], 100))).toThrow(/even a one-voxel tile .* needs .* GiB but the device has/);
    expect(() => planTiles(input([64, 64, 64], [9, 9, 9], 1000, [40, 40, 40]))).toThrow(expect.objectContaining({ code: 'ERR_TME_DEVICE_MEMORY' }));
  });
});

describe('nextSmoothSize', () => {
  it('returns the next 2,3,5,7-smooth size', () => {
    expect([1, 11, 13, 17, 97, 121, 128, 129].map(nextSmoothSize)).toEqual([1, 12, 14, 18, 98, 125, 128, 135]);
  });
});
