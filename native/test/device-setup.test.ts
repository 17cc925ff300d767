import { estimateMatchMemory, runMatch, type NativeMatchJob, type NativeMatchResult, type NativeScore } from '../index';
import { lavapipeIndex, maxAbs, maxAbsDiff } from './helpers/devices';
import { randomVolume, sphereMask, voxels, type Shape } from './helpers/reference';
import { plant, randomRotations, smoothVolume, wedgeLowPass } from './helpers/volumes';

// The tile's set-up on the Vulkan device (target spectra and flc-sphere's σ map made by VkFFT and the set-up shaders)
// against the same job with the set-up made on the host by FFTW and uploaded (setupOn 'host'), on the same device:
// the difference is the set-up's float arithmetic alone.
const vk = lavapipeIndex();
const maybe = vk === undefined ? describe.skip : describe;

const box: Shape = [7, 7, 7];
const g: Shape = [11, 11, 11];
const rotations = Float64Array.from(randomRotations(5, 31).flat());

type Mode = 'real' | 'fourier';
interface Case { score: NativeScore; mode: Mode; filter?: boolean; targetMask?: boolean; half?: boolean; tile: Shape }

// A raw tomogram's values (offset far from 0: centring matters) with a planted copy of the template.
function jobFor(c: Case): NativeMatchJob {
  const template = smoothVolume(box, 12, 1.2);
  const target = smoothVolume(c.tile, 11, 1.2).map((v) => 200 + 30 * v);
  plant(target, c.tile, template.map((v) => 30 * v), box, [5, 6, 7]);
  const job: NativeMatchJob = {
    device: vk!, target, targetShape: c.tile, template, templateShape: box, mask: sphereMask(box, 3.2), rotations,
    score: c.score, rotationMode: c.mode,
  };
  if (c.filter) Object.assign(job, { filter: wedgeLowPass(g, 0.25), filterShape: g });
  if (c.targetMask) job.targetMask = Float32Array.from({ length: voxels(c.tile) }, (_, i) => (i % c.tile[2] < c.tile[2] - 4 ? 1 : 0));
  if (c.half) job.spectrumPrecision = 'half';
  return job;
}

function expectAgree(device: NativeMatchResult, host: NativeMatchResult, tolerance: number): number {
  const d = maxAbsDiff(device.scores, host.scores) / maxAbs(host.scores);
  // Measured on these inputs: 2e-7 (cc) to 5e-6 (mcc, half spectra) of the best score.
  expect(d).toBeLessThan(tolerance);
  expect(d).toBeGreaterThan(0); // VkFFT against FFTW do round differently: equal maps would mean setupOn was ignored
  let differ = 0;
  for (let i = 0; i < host.indices.length; i++) if (host.indices[i] !== device.indices[i]) differ++;
  expect(differ).toBeLessThanOrEqual(2); // near-ties only
  return d;
}

const even: Shape = [16, 18, 20];
const odd: Shape = [15, 21, 25]; // odd sizes VkFFT transforms (factors 3, 5, 7)

maybe('the tile set-up on the Vulkan device (lavapipe)', () => {
  it.each<[string, Case]>([
    ['cc, even tile', { score: 'cc', mode: 'real', tile: even }],
    ['cc, odd tile', { score: 'cc', mode: 'real', tile: odd }],
    ['flc-sphere, even tile', { score: 'flc-sphere', mode: 'real', tile: even }],
    ['flc-sphere, odd tile', { score: 'flc-sphere', mode: 'real', tile: odd }],
    ['flc, even tile', { score: 'flc', mode: 'real', tile: even }],
    ['flc, odd tile, filtered', { score: 'flc', mode: 'real', tile: odd, filter: true }],
    ['mcc without a target mask', { score: 'mcc', mode: 'real', tile: even }],
    ['mcc with a target mask, odd tile', { score: 'mcc', mode: 'real', tile: odd, targetMask: true }],
    ['cc, Fourier mode', { score: 'cc', mode: 'fourier', tile: even }],
    ['flc-sphere, Fourier mode, odd tile', { score: 'flc-sphere', mode: 'fourier', tile: odd }],
    ['cc, Fourier mode with a filter', { score: 'cc', mode: 'fourier', tile: even, filter: true }],
    ['flc-sphere, Fourier mode with a filter, odd tile', { score: 'flc-sphere', mode: 'fourier', tile: odd, filter: true }],
  ])('%s: maps within 1e-5 of the best score of the host set-up, same rotations but near-ties', async (_name, c) => {
    const job = jobFor(c);
    const host = await runMatch({ ...job, setupOn: 'host' });
    const device = await runMatch(job);
    expectAgree(device, host, 1e-5);
    expect(device.device).toContain('Vulkan');
  });

  it.each<[string, Case]>([
    ['flc-sphere', { score: 'flc-sphere', mode: 'real', tile: even, half: true }],
    ['mcc with a target mask', { score: 'mcc', mode: 'real', tile: odd, targetMask: true, half: true }],
    ['flc-sphere, Fourier mode with a filter', { score: 'flc-sphere', mode: 'fourier', tile: odd, filter: true, half: true }],
  ])('half spectra packed on the device (%s): within 1e-5 of the best score of those packed on the host', async (_name, c) => {
    const job = jobFor(c);
    const host = await runMatch({ ...job, setupOn: 'host' });
    const device = await runMatch(job);
    expectAgree(device, host, 1e-5);
    // Half spectra do round: the maps differ from float32's by more than the set-up's own difference.
    const single = await runMatch({ ...job, spectrumPrecision: 'single' });
    expect(maxAbsDiff(device.scores, single.scores)).toBeGreaterThan(maxAbsDiff(device.scores, host.scores));
  });

  it.each<NativeScore>(['flc-sphere', 'flc', 'mcc'])('%s scores 0 in a flat region of the target, as the host set-up', async (score) => {
    const tile: Shape = [20, 16, 18];
    const job = jobFor({ score, mode: 'real', tile });
    const target = job.target;
    // Planes z 12..19 constant: every window of the box there sees a flat target.
    target.fill(target[0]!, 12 * 16 * 18);
    const host = await runMatch({ ...job, setupOn: 'host' });
    const device = await runMatch(job);
    expectAgree(device, host, 1e-5);
    let nonzero = 0;
    for (let z = 15; z <= 16; z++)
      for (let i = z * 16 * 18; i < (z + 1) * 16 * 18; i++) if (device.scores[i] !== 0) nonzero++;
    expect(nonzero).toBe(0);
    expect(maxAbs(device.scores)).toBeGreaterThan(0.5); // the planted template still scores
  });

  it('templates sharing a box and a mask share the set-up kept on the device (keepSetup), maps as made alone', async () => {
    const job = jobFor({ score: 'flc-sphere', mode: 'real', tile: even });
    const other = randomVolume(box, 44);
    const alone = await runMatch({ ...job, template: other });
    const first = await runMatch({ ...job, keepSetup: true });
    expect(first.setupReused).toBe(false);
    const shared = await runMatch({ ...job, template: other, keepSetup: true });
    expect(shared.setupReused).toBe(true);
    expect(Buffer.from(shared.scores.buffer).equals(Buffer.from(alone.scores.buffer))).toBe(true);
    expect(shared.indices).toEqual(alone.indices);
    // Half spectra are another set-up: made anew, then kept in turn.
    const half = await runMatch({ ...job, spectrumPrecision: 'half', keepSetup: true });
    expect(half.setupReused).toBe(false);
    const again = await runMatch({ ...job, spectrumPrecision: 'half' });
    expect(again.setupReused).toBe(true);
    expect(Buffer.from(again.scores.buffer).equals(Buffer.from(half.scores.buffer))).toBe(true);
    // A changed target is never matched against the kept set-up.
    await runMatch({ ...job, keepSetup: true });
    const changedTarget = Float32Array.from(job.target);
    changedTarget[100] = changedTarget[100]! + 50;
    const changed = await runMatch({ ...job, target: changedTarget });
    expect(changed.setupReused).toBe(false);
    const fresh = await runMatch({ ...job, target: changedTarget, setupOn: 'host' });
    expectAgree(changed, fresh, 1e-5);
  });

  it('a run in batches of rotations with the kept set-up equals one call', async () => {
    const job = jobFor({ score: 'mcc', mode: 'real', tile: odd, targetMask: true });
    const whole = await runMatch(job);
    const first = await runMatch({ ...job, rotationEnd: 2, keepSetup: true });
    const second = await runMatch({ ...job, rotationStart: 2, initialScores: first.scores, initialIndices: first.indices });
    expect(second.setupReused).toBe(true);
    expect(Buffer.from(second.scores.buffer).equals(Buffer.from(whole.scores.buffer))).toBe(true);
    expect(second.indices).toEqual(whole.indices);
  });

  it('the memory estimate: device bytes for the set-up, host bytes without the host transforms', () => {
    const q = { device: vk!, targetShape: [256, 256, 256] as Shape, templateShape: [32, 32, 32] as Shape, score: 'flc-sphere' as const };
    const device = estimateMatchMemory(q);
    const host = estimateMatchMemory({ ...q, setupOn: 'host' });
    const n = 256 ** 3;
    const nc = 256 * 256 * 129;
    // Host: the set-up's two half spectra and two tile arrays (FFTW) become one staging copy of the target.
    expect(host.hostBytes - device.hostBytes).toBe(2 * 8 * nc + 4 * n);
    // Device: the target and the mask's spectrum beside the slots while the set-up runs; the loop's maps later.
    expect(device.deviceBytes).toBeGreaterThanOrEqual(host.deviceBytes);
  });
});

describe('setupOn', () => {
  const job = { ...jobFor({ score: 'cc', mode: 'real', tile: even }), device: 'cpu' as const };
  it('the CPU path refuses the set-up on the device in one line', async () => {
    await expect(runMatch({ ...job, setupOn: 'device' })).rejects.toThrow(/^Expected a Vulkan device for setupOn 'device' but received "cpu"$/);
  });
  it('refuses an unknown place in one line', async () => {
    await expect(runMatch({ ...job, setupOn: 'gpu' as 'host' })).rejects.toThrow(/^Expected 'device' \| 'host' for setupOn but received "gpu"$/);
  });
  it('takes host on the CPU (its only way)', async () => {
    const a = await runMatch(job);
    const b = await runMatch({ ...job, setupOn: 'host' });
    expect(Buffer.from(a.scores.buffer).equals(Buffer.from(b.scores.buffer))).toBe(true);
  });
});
