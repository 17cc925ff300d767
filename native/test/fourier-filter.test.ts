import { runMatch, type NativeScore } from '../index';
import { lavapipeIndex, maxAbs, maxAbsDiff } from './helpers/devices';
import { sphereMask, voxels, type Shape } from './helpers/reference';
import { argmax, plant, randomRotations, smoothVolume, wedgeLowPass } from './helpers/volumes';

// Fourier-space rotation with a template filter (the wedge every real search has): the tile is filtered once (the
// filter is in the tomogram's frame) and correlated with the unfiltered rotated template.
const tile: Shape = [32, 32, 32];
const box: Shape = [12, 12, 12];
const g: Shape = [18, 18, 18];  // the engine's filter grid for a 12³ box (1.5×)
const mask = sphereMask(box, 5);
const template = smoothVolume(box, 6, 1.5).map((v, i) => v * mask[i]!);
const filter = wedgeLowPass(g, 0.25);
const rotations = randomRotations(6, 9);
const common = { template, templateShape: box, mask, filter, filterShape: g, rotations: Float64Array.from(rotations.flat()) };

/** A noisy tile with rotation 2 of the template planted at `at`. */
function plantedTile(at: Shape): Float32Array {
  const target = smoothVolume(tile, 5, 1.5).map((v) => 0.4 * v);
  const R = rotations[2]!;
  // The template rotated by R (nearest neighbour is enough to plant a particle).
  const rotated = new Float32Array(voxels(box));
  const c = box.map((n) => Math.floor(n / 2));
  for (let z = 0; z < box[0]; z++)
    for (let y = 0; y < box[1]; y++)
      for (let x = 0; x < box[2]; x++) {
        const o = [x - c[2]!, y - c[1]!, z - c[0]!];
        // Inverse (transpose) of the xyz-frame matrix maps output offsets to template offsets.
        const sx = Math.round(R[0]! * o[0]! + R[3]! * o[1]! + R[6]! * o[2]!) + c[2]!;
        const sy = Math.round(R[1]! * o[0]! + R[4]! * o[1]! + R[7]! * o[2]!) + c[1]!;
        const sz = Math.round(R[2]! * o[0]! + R[5]! * o[1]! + R[8]! * o[2]!) + c[0]!;
        if (sx >= 0 && sy >= 0 && sz >= 0 && sx < box[2] && sy < box[1] && sz < box[0]) {
          rotated[(z * box[1] + y) * box[2] + x] = template[(sz * box[1] + sy) * box[2] + sx]!;
        }
      }
  plant(target, tile, rotated, box, at);
  return target;
}

describe("rotationMode 'fourier' with a template filter (CPU path)", () => {
  const at: Shape = [13, 17, 19];
  const target = plantedTile(at);
  const job = { ...common, device: 'cpu' as const, target, targetShape: tile, score: 'flc-sphere' as const };

  it('finds the planted particle where real space does, with its rotation, and flc-sphere stays in [-1, 1]', async () => {
    const real = await runMatch(job);
    const fourier = await runMatch({ ...job, rotationMode: 'fourier' });
    const peak = (at[0] * tile[1] + at[1]) * tile[2] + at[2];
    expect(argmax(real.scores)).toBe(peak);
    expect(argmax(fourier.scores)).toBe(peak);
    expect(real.indices[peak]).toBe(2);
    expect(fourier.indices[peak]).toBe(2);
    expect(maxAbs(fourier.scores)).toBeLessThanOrEqual(1);
    // Measured: peak 0.72 (real) vs 0.82 (Fourier: the filtered tile's local σ leaves out the noise the filter
    // removes); away from the particle the maps differ by up to 0.35 (two different normalisations of smooth noise).
    const ratio = fourier.scores[peak]! / real.scores[peak]!;
    expect(ratio).toBeGreaterThan(1.0);
    expect(ratio).toBeLessThan(1.3);
    expect(maxAbsDiff(fourier.scores, real.scores)).toBeLessThan(0.5);
  });

  it('the filter acts: the filtered map differs from the unfiltered one', async () => {
    const { filter: _f, filterShape: _g, ...unfiltered } = job;
    const plain = await runMatch({ ...unfiltered, rotationMode: 'fourier' });
    const filtered = await runMatch({ ...job, rotationMode: 'fourier' });
    expect(maxAbsDiff(plain.scores, filtered.scores)).toBeGreaterThan(0.05);
  });
});

const vk = lavapipeIndex();
(vk === undefined ? describe.skip : describe)("rotationMode 'fourier' with a template filter on Vulkan (lavapipe)", () => {
  const small: Shape = [16, 18, 20];
  const b: Shape = [6, 6, 6];
  const gs: Shape = [9, 9, 9];
  const m = sphereMask(b, 2.5);
  const t = smoothVolume(b, 3, 1).map((v, i) => v * m[i]!);
  it.each<NativeScore>(['cc', 'flc-sphere'])('%s agrees with the CPU path to 1e-4 of the best score, same rotations', async (score) => {
    const job = {
      target: smoothVolume(small, 4, 1), targetShape: small, template: t, templateShape: b, mask: m, score,
      rotations: Float64Array.from(randomRotations(5, 2).flat()), rotationMode: 'fourier' as const,
      filter: wedgeLowPass(gs, 0.3), filterShape: gs,
    };
    const cpu = await runMatch({ ...job, device: 'cpu' });
    const gpu = await runMatch({ ...job, device: vk! });
    const scale = maxAbs(cpu.scores);
    expect(maxAbsDiff(gpu.scores, cpu.scores) / scale).toBeLessThan(1e-4);
    let differ = 0;
    for (let i = 0; i < cpu.indices.length; i++) if (cpu.indices[i] !== gpu.indices[i]) differ++;
    expect(differ).toBeLessThanOrEqual(2); // near-ties only
    expect(maxAbsDiff(gpu.stats.perRotationMax, cpu.stats.perRotationMax) / scale).toBeLessThan(1e-4);
  });
});
