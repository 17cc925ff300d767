import { runMatch, type NativeScore } from '../index';
import { lavapipeIndex, maxAbs, maxAbsDiff } from './helpers/devices';
import { axisAngle, randomVolume, sphereMask, voxels, type Shape } from './helpers/reference';
import { wedgeLowPass } from './helpers/volumes';

// spectrumPrecision 'half': the target's spectra as float16 pairs on the device. The maps against float32 on the same
// device (the difference is float16's rounding alone), and the CPU's refusal.
const vk = lavapipeIndex();
const maybe = vk === undefined ? describe.skip : describe;

const tile: Shape = [16, 18, 20];
const box: Shape = [6, 6, 6];
const g: Shape = [9, 9, 9];
const rotations = Float64Array.from([axisAngle([0, 0, 1], 0), axisAngle([1, 2, 3], 37), axisAngle([0, 1, 0], 90)].flat());
// A raw tomogram's values: offset and scale far from 1, so that the spectrum would overflow float16 unscaled.
const target = randomVolume(tile, 7).map((v) => 300 + 40 * v);
const targetMask = Float32Array.from({ length: voxels(tile) }, (_, i) => (i % 20 < 17 ? 1 : 0));
const base = { target, targetShape: tile, template: randomVolume(box, 8), templateShape: box, mask: sphereMask(box, 2.2), rotations };

maybe('spectrumPrecision half on Vulkan (lavapipe)', () => {
  it.each<[NativeScore, 'real' | 'fourier']>([
    ['cc', 'real'], ['flc-sphere', 'real'], ['flc', 'real'], ['mcc', 'real'], ['cc', 'fourier'], ['flc-sphere', 'fourier'],
  ])('%s (%s rotation, filtered): maps within 1e-3 of the best score of float32, same rotations but near-ties', async (score, rotationMode) => {
    const job = {
      ...base, device: vk!, score, rotationMode, filter: wedgeLowPass(g, 0.3), filterShape: g,
      ...(score === 'mcc' ? { targetMask } : {}),
    };
    const single = await runMatch(job);
    const half = await runMatch({ ...job, spectrumPrecision: 'half' });
    const scale = maxAbs(single.scores);
    const d = maxAbsDiff(half.scores, single.scores) / scale;
    // Measured on these inputs: 1.2e-4 (cc) to 4.6e-4 (mcc) of the best score.
    expect(d).toBeLessThan(1e-3);
    expect(d).toBeGreaterThan(0); // float16 does round: equal maps would mean 'half' was ignored
    let differ = 0;
    for (let i = 0; i < single.indices.length; i++) if (single.indices[i] !== half.indices[i]) differ++;
    expect(differ).toBeLessThanOrEqual(0.01 * single.indices.length);
  });
});

describe('spectrumPrecision on the CPU', () => {
  it('refuses half in one line', async () => {
    await expect(runMatch({ ...base, device: 'cpu', score: 'cc', spectrumPrecision: 'half' }))
      .rejects.toThrow(/^Expected a Vulkan device for spectrumPrecision 'half' but received "cpu"/);
  });
});
