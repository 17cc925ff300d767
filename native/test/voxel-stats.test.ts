import { runMatch, type NativeMatchJob, type NativeScore } from '../index';
import { lavapipeIndex } from './helpers/devices';
import { axisAngle, randomVolume, sphereMask, voxels, type Shape } from './helpers/reference';

// Per-voxel Σ score and Σ score² over rotations (voxelStats), fused in the finalise: checked against the maps of
// one-rotation runs summed directly, on every CPU variant and on Vulkan (lavapipe).
const tile: Shape = [16, 16, 16];
const box: Shape = [6, 6, 6];
const rotations = [
  axisAngle([0, 0, 1], 0), axisAngle([1, 2, 3], 37), axisAngle([0, 1, 0], 90), axisAngle([3, -1, 2], 151), axisAngle([1, 1, 0], 212),
];
const base = {
  target: randomVolume(tile, 1), targetShape: tile, template: randomVolume(box, 2), templateShape: box,
  mask: sphereMask(box, 2.2), rotations: Float64Array.from(rotations.flat()),
};
const targetMask = Float32Array.from({ length: voxels(tile) }, (_, i) => (i % 16 < 13 ? 1 : 0));
const region = { start: [3, 2, 4] as Shape, shape: [9, 11, 8] as Shape };

function inRegion(i: number): boolean {
  const z = Math.floor(i / 256), y = Math.floor(i / 16) % 16, x = i % 16;
  return z >= 3 && z < 12 && y >= 2 && y < 13 && x >= 4 && x < 12;
}

/** Σ score and Σ score² per voxel from one run per rotation (what the fused sums must equal). */
async function bruteForce(job: Omit<NativeMatchJob, 'device'>): Promise<{ sum: Float64Array; sumSq: Float64Array }> {
  const sum = new Float64Array(voxels(tile));
  const sumSq = new Float64Array(voxels(tile));
  for (let r = 0; r < rotations.length; r++) {
    const one = await runMatch({ ...job, device: 'cpu', rotationStart: r, rotationEnd: r + 1 });
    for (let i = 0; i < sum.length; i++) {
      const s = one.scores[i] as number;
      sum[i] = (sum[i] as number) + s;
      sumSq[i] = (sumSq[i] as number) + s * s;
    }
  }
  return { sum, sumSq };
}

/** The largest |value| in the region (outside it a run that skips the voxels leaves −∞ in its maps). */
function maxInRegion(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (inRegion(i)) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}

function worstInRegion(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (inRegion(i)) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const jobFor = (score: NativeScore): Omit<NativeMatchJob, 'device'> => ({
  ...base, score, targetMask: score === 'mcc' ? targetMask : undefined, outputRegion: region,
});

describe('voxelStats: per-voxel sums over rotations', () => {
  it.each<[NativeScore, 'pruned' | 'full', number]>([
    ['cc', 'pruned', 1], ['flc-sphere', 'pruned', 2], ['flc', 'pruned', 1], ['mcc', 'pruned', 2], ['flc-sphere', 'full', 1],
  ])('%s (%s transforms, %d threads) equals the sums of one-rotation maps in the region', async (score, cpuTransforms, threads) => {
    const job = jobFor(score);
    const want = await bruteForce(job);
    const got = await runMatch({ ...job, device: 'cpu', cpuTransforms, threads, voxelStats: true });
    const scale = maxInRegion(want.sumSq);
    expect(Number.isFinite(scale) && scale > 0).toBe(true);
    expect(got.voxelSum?.length).toBe(voxels(tile));
    expect(worstInRegion(got.voxelSum!, want.sum) / scale).toBeLessThan(1e-5);
    expect(worstInRegion(got.voxelSumSq!, want.sumSq) / scale).toBeLessThan(1e-5);
    // Something to compare: the scores vary over rotations (σ > 0 at most voxels).
    let varied = 0;
    for (let i = 0; i < want.sum.length; i++) {
      const m = (want.sum[i] as number) / rotations.length;
      if (inRegion(i) && (want.sumSq[i] as number) / rotations.length - m * m > 1e-4 * scale) varied++;
    }
    expect(varied).toBeGreaterThan(0.9 * 9 * 11 * 8);
  });

  it('is absent unless asked for, and batches add up to one call', async () => {
    const job = jobFor('flc-sphere');
    const plain = await runMatch({ ...job, device: 'cpu' });
    expect(plain.voxelSum).toBeUndefined();
    const all = await runMatch({ ...job, device: 'cpu', voxelStats: true });
    const a = await runMatch({ ...job, device: 'cpu', voxelStats: true, rotationStart: 0, rotationEnd: 2 });
    const b = await runMatch({ ...job, device: 'cpu', voxelStats: true, rotationStart: 2, rotationEnd: 5 });
    const added = all.voxelSum!.map((_, i) => (a.voxelSum![i] as number) + (b.voxelSum![i] as number));
    expect(worstInRegion(added, all.voxelSum!)).toBeLessThan(1e-5);
  });

  const vk = lavapipeIndex();
  (vk === undefined ? it.skip : it).each<NativeScore>(['cc', 'flc-sphere', 'flc', 'mcc'])(
    '%s on Vulkan (lavapipe) agrees with the CPU path to 1e-4 relative', async (score) => {
      const job = jobFor(score);
      const cpu = await runMatch({ ...job, device: 'cpu', voxelStats: true });
      const gpu = await runMatch({ ...job, device: vk!, voxelStats: true });
      const scale = maxInRegion(cpu.voxelSumSq!);
      expect(scale).toBeGreaterThan(0);
      expect(worstInRegion(gpu.voxelSum!, cpu.voxelSum!) / scale).toBeLessThan(1e-4);
      expect(worstInRegion(gpu.voxelSumSq!, cpu.voxelSumSq!) / scale).toBeLessThan(1e-4);
      // Outside the region Vulkan leaves them at 0.
      let outside = 0;
      for (let i = 0; i < gpu.voxelSum!.length; i++) if (!inRegion(i)) outside = Math.max(outside, Math.abs(gpu.voxelSum![i] as number));
      expect(outside).toBe(0);
    });
});
