import { runMatch, type NativeMatchJob, type NativeScore } from '../index';
import { lavapipeIndex, maxAbs, maxAbsDiff } from './helpers/devices';
import { axisAngle, randomVolume, referenceMatch, rotateBox, sphereMask, voxels, type Shape } from './helpers/reference';
import { argmax, plant, randomRotations, smoothVolume, wedgeLowPass } from './helpers/volumes';

// Vulkan on lavapipe (Mesa's CPU driver): the same loop as on a GPU, checked against the CPU path.
const vk = lavapipeIndex();
const maybe = vk === undefined ? describe.skip : describe;

const tile: Shape = [16, 16, 16];
const box: Shape = [6, 6, 6];
const rotations = [axisAngle([0, 0, 1], 0), axisAngle([1, 2, 3], 37), axisAngle([0, 1, 0], 90)];
const base = {
  target: randomVolume(tile, 1), targetShape: tile, template: randomVolume(box, 2), templateShape: box,
  mask: sphereMask(box, 2.2), rotations: Float64Array.from(rotations.flat()),
};
const targetMask = Float32Array.from({ length: voxels(tile) }, (_, i) => (i % 16 < 13 ? 1 : 0));

maybe('runMatch on Vulkan (lavapipe)', () => {
  it.each<[NativeScore, 'real' | 'fourier']>([
    ['cc', 'real'], ['flc-sphere', 'real'], ['flc', 'real'], ['mcc', 'real'], ['cc', 'fourier'], ['flc-sphere', 'fourier'],
  ])('%s (%s rotation) agrees with the CPU path to 1e-4 relative, same rotations', async (score, rotationMode) => {
    const job: Omit<NativeMatchJob, 'device'> = { ...base, score, rotationMode, targetMask: score === 'mcc' ? targetMask : undefined };
    const cpu = await runMatch({ ...job, device: 'cpu' });
    const gpu = await runMatch({ ...job, device: vk! });
    const scale = maxAbs(cpu.scores);
    expect(maxAbsDiff(gpu.scores, cpu.scores) / scale).toBeLessThan(1e-4);
    let differ = 0;
    for (let i = 0; i < cpu.indices.length; i++) if (cpu.indices[i] !== gpu.indices[i]) differ++;
    expect(differ).toBeLessThanOrEqual(2); // near-ties only
    expect(maxAbsDiff(gpu.stats.perRotationMax, cpu.stats.perRotationMax) / scale).toBeLessThan(1e-4);
    expect(Math.abs(gpu.stats.sum - cpu.stats.sum)).toBeLessThan(1e-4 * scale * cpu.stats.count);
    expect(Math.abs(gpu.stats.sumSq - cpu.stats.sumSq) / cpu.stats.sumSq).toBeLessThan(1e-4);
    for (let r = 0; r < rotations.length; r++) {
      expect(Math.abs(gpu.stats.perRotationSum[r]! - cpu.stats.perRotationSum[r]!)).toBeLessThan(1e-4 * scale * voxels(tile));
      expect(Math.abs(gpu.stats.perRotationSumSq[r]! - cpu.stats.perRotationSumSq[r]!) / cpu.stats.perRotationSumSq[r]!).toBeLessThan(1e-4);
    }
    expect(gpu.device).toContain('Vulkan');
  });

  it('counts statistics only where statsMask is set, on both paths, as a direct sum over the maps says', async () => {
    // The voxels of a core region (as a tile's core inside padding): only they enter sum, sumSq, count and maxima.
    const statsMask = Uint8Array.from({ length: voxels(tile) }, (_, i) => (Math.floor(i / 256) % 16 >= 3 && i % 16 >= 4 ? 1 : 0));
    let counted = 0;
    for (const v of statsMask) counted += v;
    const nRot = rotations.length;
    // Per-rotation maps from one-rotation runs give the expected statistics directly.
    let sum = 0; let sumSq = 0;
    const maxima: number[] = [];
    for (let r = 0; r < nRot; r++) {
      const one = await runMatch({ ...base, score: 'flc-sphere', device: 'cpu', rotationStart: r, rotationEnd: r + 1 });
      let m = -Infinity;
      for (let i = 0; i < one.scores.length; i++) {
        if (!statsMask[i]) continue;
        const v = one.scores[i] as number;
        sum += v; sumSq += v * v; m = Math.max(m, v);
      }
      maxima.push(m);
    }
    for (const device of ['cpu', vk!] as const) {
      const r = await runMatch({ ...base, score: 'flc-sphere', device, statsMask });
      expect(r.stats.count).toBe(counted * nRot);
      expect(Math.abs(r.stats.sum - sum)).toBeLessThan(1e-4 * counted);
      expect(Math.abs(r.stats.sumSq - sumSq) / sumSq).toBeLessThan(1e-4);
      expect(maxAbsDiff(r.stats.perRotationMax, Float32Array.from(maxima))).toBeLessThan(1e-5);
    }
  });

  it('cubic (Catmull-Rom) rotation agrees with the CPU path', async () => {
    const job = { ...base, score: 'flc' as const, interpolation: 'cubic' as const };
    const cpu = await runMatch({ ...job, device: 'cpu' });
    const gpu = await runMatch({ ...job, device: vk! });
    expect(maxAbsDiff(gpu.scores, cpu.scores) / maxAbs(cpu.scores)).toBeLessThan(1e-4);
  });

  it.each<NativeScore>(['cc', 'flc-sphere', 'flc', 'mcc'])('%s with a template filter on its own grid matches the direct reference', async (score) => {
    const g: Shape = [8, 9, 10];
    const filter = { shape: g, values: wedgeLowPass(g, 0.3) };
    const tm = score === 'mcc' ? targetMask : undefined;
    const ref = referenceMatch(score, base.target, tile, base.template, base.mask, box, rotations, tm, filter);
    const gpu = await runMatch({ ...base, device: vk!, score, targetMask: tm, filter: filter.values, filterShape: g });
    expect(maxAbsDiff(gpu.scores, ref.scores) / maxAbs(ref.scores)).toBeLessThan(1e-4);
  });

  it('matches the direct reference for flc-sphere', async () => {
    const ref = referenceMatch('flc-sphere', base.target, tile, base.template, base.mask, box, rotations);
    const gpu = await runMatch({ ...base, device: vk!, score: 'flc-sphere' });
    expect(maxAbsDiff(gpu.scores, ref.scores) / maxAbs(ref.scores)).toBeLessThan(1e-4);
  });

  it('finds a planted template and batches reproduce one call bitwise', async () => {
    const bigTile: Shape = [32, 32, 32];
    const bigBox: Shape = [10, 10, 10];
    const rots = randomRotations(4, 3);
    const sphere = sphereMask(bigBox, 4.5);
    const t0 = smoothVolume(bigBox, 4, 1.2).map((v, i) => v * sphere[i]!);
    const target = randomVolume(bigTile, 5).map((v) => v * 0.1);
    plant(target, bigTile, rotateBox(t0, bigBox, rots[2]!), bigBox, [5, 27, 14]);
    const common = { device: vk!, target, targetShape: bigTile, template: t0, templateShape: bigBox, mask: sphere, rotations: Float64Array.from(rots.flat()) };
    const whole = await runMatch(common);
    const peak = argmax(whole.scores);
    expect(peak).toBe((5 * 32 + 27) * 32 + 14);
    expect(whole.indices[peak]).toBe(2);
    const a = await runMatch({ ...common, rotationEnd: 1 });
    const b = await runMatch({ ...common, rotationStart: 1, initialScores: a.scores, initialIndices: a.indices });
    expect(b.scores).toEqual(whole.scores);
    expect(b.indices).toEqual(whole.indices);
    expect(b.scores).toBe(a.scores);
    expect(b.indices).toBe(a.indices);
  });
});

maybe('several rotations per command buffer (what a GPU gets)', () => {
  it('gives bitwise the maps of one rotation per submission', async () => {
    const rots = randomRotations(5, 17);
    const g: Shape = [8, 9, 10];
    const job = { ...base, device: vk!, rotations: Float64Array.from(rots.flat()), score: 'flc' as const, filter: wedgeLowPass(g, 0.3), filterShape: g };
    const single = await runMatch({ ...job, rotationsPerSubmit: 1 });
    const batched = await runMatch({ ...job, rotationsPerSubmit: 3 });
    expect(batched.scores).toEqual(single.scores);
    expect(batched.indices).toEqual(single.indices);
    expect(batched.stats.perRotationMax).toEqual(single.stats.perRotationMax);
  });
});

maybe('outputRegion on Vulkan (lavapipe)', () => {
  it('counts statistics only inside the region and agrees with the CPU path there', async () => {
    const region = { start: [2, 3, 1] as Shape, shape: [12, 10, 13] as Shape };
    const job: Omit<NativeMatchJob, 'device'> = { ...base, outputRegion: region };
    const cpu = await runMatch({ ...job, device: 'cpu' });
    const gpu = await runMatch({ ...job, device: vk! });
    expect(gpu.stats.count).toBe(12 * 10 * 13 * rotations.length);
    expect(gpu.stats.count).toBe(cpu.stats.count);
    const scale = maxAbs(cpu.scores.filter((v) => Number.isFinite(v)));
    let diff = 0;
    for (let z = 2; z < 14; z++)
      for (let y = 3; y < 13; y++)
        for (let x = 1; x < 14; x++) {
          const i = (z * 16 + y) * 16 + x;
          diff = Math.max(diff, Math.abs(cpu.scores[i]! - gpu.scores[i]!));
        }
    expect(diff / scale).toBeLessThan(1e-4);
    expect(Math.abs(gpu.stats.sum - cpu.stats.sum)).toBeLessThan(1e-4 * scale * cpu.stats.count);
    // Voxels outside keep their initial maps (none given: −1) on both paths.
    const untouched = (r: typeof cpu): number => r.indices.filter((v) => v === -1).length;
    expect(untouched(gpu)).toBe(16 * 16 * 16 - 12 * 10 * 13);
    expect(untouched(cpu)).toBe(16 * 16 * 16 - 12 * 10 * 13);
  });
});

maybe('a tile shape VkFFT refuses (lavapipe)', () => {
  it('fails in one line each time, and the next job of a good shape still runs', async () => {
    const bad: Shape = [15, 17, 19]; // 17 and 19: prime factors above VkFFT's 13
    const job = { ...base, target: randomVolume(bad, 3), targetShape: bad, device: vk!, score: 'mcc' as const };
    // Twice: the first call's half-made FFT slots must not be cached for the second (it crashed the process).
    for (let i = 0; i < 2; i++) await expect(runMatch(job)).rejects.toThrow(/^VkFFT cannot transform a 15x17x19 grid on .*: axis 17 has a prime factor above 13/);
    const good = await runMatch({ ...base, device: vk!, score: 'mcc' });
    const cpu = await runMatch({ ...base, device: 'cpu', score: 'mcc' });
    expect(maxAbsDiff(good.scores, cpu.scores) / maxAbs(cpu.scores)).toBeLessThan(1e-4);
  });
});
