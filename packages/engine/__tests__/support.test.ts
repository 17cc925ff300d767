// Padding by the template's support: a tile padded and offset by the support gives the maps of one padded by the
// whole box (today's), under a filter whose spread reaches beyond the mask, on the CPU and on Vulkan (lavapipe in CI).
import { createVolume, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import type { BackendScore } from '../src/backend';
import { matchTemplate } from '../src/match';
import { nativeAddonBuilt } from '../src/native-backend';
import { extractRegion } from '../src/padding';
import { filterGridFor, prepareJob } from '../src/prepare';
import { boxCentre } from '../src/rotate';
import { sphereMask } from '../src/masks';
import { templateSupport } from '../src/support';
import { gaussianNoise, halfSpectrumFilter, maxAbsDiff, noiseVolume, rotationSet } from './helpers';

jest.setTimeout(120_000);

describe('templateSupport', () => {
  const box: Zyx = [32, 32, 32];
  const mask = sphereMask(box, 7, [1, 1, 1]);

  it('flc-sphere: the mask\'s bounding box, centred (a radius-7 sphere in a 32³ box: 15³)', () => {
    expect(templateSupport(mask, box, 'flc-sphere', 'linear', 'real')).toEqual([15, 15, 15]);
  });

  it('flc / mcc: the ball the rotated mask can reach, wider for cubic interpolation', () => {
    // farthest non-zero voxel at 7 from the centre: 7 + √3 → 8 (17³), 7 + 2√3 → 10 (21³)
    expect(templateSupport(mask, box, 'flc', 'linear', 'real')).toEqual([17, 17, 17]);
    expect(templateSupport(mask, box, 'mcc', 'cubic', 'real')).toEqual([21, 21, 21]);
  });

  it('cc, Fourier-space rotation, and masks that fill the box: the box', () => {
    expect(templateSupport(mask, box, 'cc', 'linear', 'real')).toEqual(box);
    expect(templateSupport(mask, box, 'flc-sphere', 'linear', 'fourier')).toEqual(box);
    const even: Zyx = [8, 9, 10];
    expect(templateSupport(new Float32Array(8 * 9 * 10).fill(1), even, 'flc-sphere', 'linear', 'real')).toEqual(even);
    expect(templateSupport(new Float32Array(8 * 9 * 10).fill(1), even, 'flc', 'linear', 'real')).toEqual(even);
  });

  it('every support is a centred sub-box: its own centre index is the box\'s', () => {
    for (const b of [[20, 21, 32], [9, 10, 11]] as Zyx[]) {
      for (const r of [1.5, 3, 4.2, 9]) {
        const m = sphereMask(b, r, [1, 1, 1]);
        for (const score of ['flc-sphere', 'flc'] as const) {
          const s = templateSupport(m, b, score, 'linear', 'real');
          const cb = boxCentre(b);
          const cs = boxCentre(s);
          for (let a = 0; a < 3; a++) {
            expect(s[a]).toBeLessThanOrEqual(b[a]!);
            expect(cb[a]! - cs[a]!).toBeGreaterThanOrEqual(0);
            expect(cb[a]! - cs[a]! + s[a]!).toBeLessThanOrEqual(b[a]!);
          }
        }
      }
    }
  });
});

const built = nativeAddonBuilt();
const describeNative = built ? describe : describe.skip;
const devices: Array<'cpu' | number> = built ? ['cpu', ...native.listDevices().filter((d) => d.api === 'vulkan').map((d) => d.index as number)] : [];

describeNative('a tile padded by the support gives the maps of one padded by the box', () => {
  // 4 voxels thick: padded by the support the tile is thinner than the box (12 or 14 < 20), so any of the box
  // outside the support would wrap onto it.
  const shape: Zyx = [4, 26, 24];
  const box: Zyx = [20, 20, 20];
  const target = gaussianNoise(shape[0] * shape[1] * shape[2], 5);
  // A template with content everywhere in the box: the filter carries the corners' content into the mask.
  const template = gaussianNoise(box[0] * box[1] * box[2], 6);
  const mask = sphereMask(box, 4, [1, 1, 1]);
  const filterShape = filterGridFor(box);
  // A ±60° missing wedge (DC kept) times a Gaussian low-pass.
  const filter = halfSpectrumFilter(filterShape, (fz, fy, fx) =>
    (fz === 0 && fy === 0 && fx === 0) || Math.abs(fz) <= 1.7 * fx ? Math.exp(-(fz * fz + fy * fy + fx * fx) / 0.08) : 0);
  const rotations = rotationSet([['z', 0], ['x', 33], ['y', 71], ['z', -140]]);
  const targetMask = new Float32Array(target.length).fill(1);

  async function maps(score: BackendScore, device: 'cpu' | number, support: Zyx): Promise<{ scores: Float32Array; indices: Int32Array }> {
    const c = boxCentre(support);
    const fast = native.nextFastShape([shape[0] + support[0] - 1, shape[1] + support[1] - 1, shape[2] + support[2] - 1]);
    const readStart: Zyx = [-c[0], -c[1], -c[2]];
    const tile = extractRegion(target, shape, readStart, fast, 'mean', 0);
    const r = await native.runMatch({
      device, threads: 2, target: tile, targetShape: fast, template, templateShape: box, mask, supportShape: support,
      ...(score === 'mcc' ? { targetMask: extractRegion(targetMask, shape, readStart, fast, 'mirror') } : {}),
      filter, filterShape, targetMean: 0, targetVariance: 1, rotations, score, interpolation: 'linear', rotationMode: 'real',
    });
    // The core: the target's voxels.
    const n = shape[0] * shape[1] * shape[2];
    const scores = new Float32Array(n);
    const indices = new Int32Array(n);
    for (let z = 0, i = 0; z < shape[0]; z++) for (let y = 0; y < shape[1]; y++) for (let x = 0; x < shape[2]; x++, i++) {
      const j = ((z + c[0]) * fast[1] + y + c[1]) * fast[2] + x + c[2];
      scores[i] = r.scores[j]!;
      indices[i] = r.indices[j]!;
    }
    return { scores, indices };
  }

  it.each(devices.flatMap((d) => (['flc-sphere', 'flc', 'mcc'] as const).map((s) => [s, d] as const)))('%s on device %s: equal to 1e-6', async (score, device) => {
    const support = templateSupport(mask, box, score, 'linear', 'real');
    expect(support[0]).toBeLessThan(box[0]);  // the case is one where the support saves padding
    const whole = await maps(score, device, box);
    const cropped = await maps(score, device, support);
    expect(maxAbsDiff(whole.scores, cropped.scores)).toBeLessThan(1e-6);
    let same = 0;
    for (let i = 0; i < whole.indices.length; i++) if (whole.indices[i] === cropped.indices[i]) same++;
    expect(same / whole.indices.length).toBeGreaterThan(0.999);
    // And the scores are real ones, not zeros everywhere.
    expect(Math.max(...whole.scores)).toBeGreaterThan(0.2);
  });

  it('matchTemplate pads and overlaps its tiles by the support (flc-sphere: 9³ for a radius-4 sphere in a 20³ box)', async () => {
    const job = {
      target: noiseVolume(shape, 7, 1), template: createVolume(template, box, 1),
      maskRadius: 4, rotations, device: 'cpu' as const, threads: 2,
    };
    const p = prepareJob(job as Parameters<typeof prepareJob>[0]);
    expect(p.supportShape).toEqual([9, 9, 9]);
    const untiled = await matchTemplate(job as Parameters<typeof matchTemplate>[0]);
    const tiled = await matchTemplate({ ...job, tile: [12, 14, 13] } as Parameters<typeof matchTemplate>[0]);
    expect(untiled.tilePlan.fastShape.every((n, a) => n < shape[a]! + box[a]! - 1)).toBe(true);
    expect(tiled.tilePlan.tiles.length).toBeGreaterThan(1);
    expect(maxAbsDiff(untiled.scores.data, tiled.scores.data)).toBeLessThan(1e-5);
  });
});
