// scoreOrientations: the search's score at one voxel for any rotation, by direct sums over the box.
import { runMatch, scoreOrientations, type NativeScore } from '../index';
import { randomVolume, sphereMask, voxels, type Shape } from './helpers/reference';
import { randomRotations, wedgeLowPass } from './helpers/volumes';

const tile: Shape = [20, 22, 24];
const box: Shape = [8, 8, 8];
const target = randomVolume(tile, 31);
const template = randomVolume(box, 32);
const mask = sphereMask(box, 3.2);
const rotations = Float64Array.from(randomRotations(5, 33).flat());
const filterShape: Shape = [10, 10, 10];
const filter = wedgeLowPass(filterShape, 0.3);

/** The target's box at voxel x, circular on the tile (the search correlates circularly on its tile). */
function patch(x: Shape): Float32Array {
  const out = new Float32Array(voxels(box));
  let i = 0;
  for (let z = 0; z < box[0]; z++) for (let y = 0; y < box[1]; y++) for (let q = 0; q < box[2]; q++, i++) {
    const pz = (x[0] + z - 4 + tile[0]) % tile[0];
    const py = (x[1] + y - 4 + tile[1]) % tile[1];
    const px = (x[2] + q - 4 + tile[2]) % tile[2];
    out[i] = target[(pz * tile[1] + py) * tile[2] + px]!;
  }
  return out;
}

describe('scoreOrientations', () => {
  it.each<NativeScore>(['cc', 'flc-sphere', 'flc'])('%s: the search\'s score of every rotation at chosen voxels (filtered template)', async (score) => {
    const positions: Shape[] = [[10, 11, 12], [0, 3, 23], [19, 21, 0]];
    const offsets = Int32Array.from([0, 5, 10, 15]);
    const all = new Float64Array(9 * 15);
    for (let q = 0; q < 3; q++) all.set(rotations, 45 * q);
    const patches = new Float32Array(3 * voxels(box));
    positions.forEach((p, q) => patches.set(patch(p), q * voxels(box)));
    const common = { template, templateShape: box, mask, score, filter, filterShape };
    const got = await scoreOrientations({ ...common, patches, rotations: all, offsets });
    expect(got.length).toBe(15);
    for (let r = 0; r < 5; r++) {
      const map = await runMatch({ ...common, device: 'cpu', target, targetShape: tile, rotations, rotationStart: r, rotationEnd: r + 1 });
      let scale = 0;
      for (const v of map.scores) scale = Math.max(scale, Math.abs(v));
      positions.forEach((p, q) => {
        const expected = map.scores[(p[0] * tile[1] + p[1]) * tile[2] + p[2]]!;
        expect(Math.abs(got[5 * q + r]! - expected) / scale).toBeLessThan(1e-4);
      });
    }
  });

  it('refuses mcc and inconsistent lengths, and cancels', async () => {
    const job = { template, templateShape: box, mask, score: 'flc' as const, patches: patch([5, 5, 5]), rotations, offsets: Int32Array.from([0, 5]) };
    await expect(scoreOrientations({ ...job, score: 'mcc' })).rejects.toMatchObject({ code: 'ERR_TME_INVALID_OPTION' });
    await expect(scoreOrientations({ ...job, offsets: Int32Array.from([0, 4]) })).rejects.toThrow(/Expected 9 values for each of the 4 rotations/);
    await expect(scoreOrientations({ ...job, patches: new Float32Array(3) })).rejects.toThrow(/patches of 512 values/);
    const controller = new AbortController();
    controller.abort();
    await expect(scoreOrientations(job, { signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
  });
});
