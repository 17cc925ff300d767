import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVolume, type Zyx } from '@tme/formats';
import { matchTemplate, type MatchOptions } from '../src/match';
import type { MatchJob } from '../src/prepare';
import { ReferenceBackend } from '../src/reference-backend';
import { extractRegion } from '../src/padding';
import { sphereMask } from '../src/masks';
import { laplacian } from '../src/laplace';
import { CHECKPOINT_FILE } from '../src/checkpoint';
import { rotateBox } from '../src/rotate';
import { blobTemplate, bruteForceScores, gaussianNoise, halfSpectrumFilter, maxAbsDiff, noiseVolume, rotationSet } from './helpers';

// Small volumes, but the machine is shared: generous time per test.
jest.setTimeout(60_000);

const targetShape: Zyx = [14, 12, 13];
const target = noiseVolume(targetShape, 11);
const template = blobTemplate(5);
const rotations = rotationSet([['z', 0], ['z', 90], ['x', 90], ['y', 30], ['z', 200]]);
const reference = new ReferenceBackend();

function job(extra: Partial<MatchJob> = {}): MatchJob {
  return { target, template, rotations, maskRadius: 4, ...extra };
}

async function match(extra: Partial<MatchJob> = {}, options: MatchOptions = {}) {
  return matchTemplate(job(extra), { backend: reference, batchRotations: 2, ...options });
}

describe('matchTemplate edges: the untiled run is the score on the padded target, cropped', () => {
  it.each([['flc-sphere', 'mean'], ['flc-sphere', 'mirror'], ['cc', 'zero'], ['flc', 'mirror']] as const)('%s with %s padding', async (score, padTarget) => {
    const result = await match({ score, padTarget });
    expect(result.tilePlan.tiles).toHaveLength(1);
    const c = 2;
    const padded: Zyx = [targetShape[0] + 4, targetShape[1] + 4, targetShape[2] + 4];
    let mean = 0;
    target.data.forEach((v) => { mean += v; });
    mean /= target.data.length;
    const p = extractRegion(target.data, targetShape, [-c, -c, -c], padded, padTarget, mean);
    const mask = sphereMask([5, 5, 5], 4, [2, 2, 2]);
    const best = new Float32Array(target.data.length).fill(-Infinity);
    for (let r = 0; r < 5; r++) {
      const m = bruteForceScores(score, p, padded, template.data, [5, 5, 5], mask, rotations.subarray(9 * r, 9 * r + 9));
      for (let z = 0; z < targetShape[0]; z++) for (let y = 0; y < targetShape[1]; y++) for (let x = 0; x < targetShape[2]; x++) {
        const v = Math.fround(m[((z + c) * padded[1] + y + c) * padded[2] + x + c]!);
        const i = (z * targetShape[1] + y) * targetShape[2] + x;
        if (v > best[i]!) best[i] = v;
      }
    }
    expect(maxAbsDiff(result.scores.data, best)).toBeLessThan(score === 'cc' ? 1e-3 : 1e-4);
    expect(result.scores.shape).toEqual(targetShape);
    expect(result.indices.every((i) => i >= 0 && i < 5)).toBe(true);
  });
});

describe('tiling', () => {
  it('memory-driven tiles give bitwise the untiled maps and the same statistics', async () => {
    const untiled = await match();
    const small = new ReferenceBackend({ memoryBytes: 100_000 });
    const tiled = await matchTemplate(job(), { backend: small, batchRotations: 2 });
    expect(tiled.tilePlan.tiles.length).toBeGreaterThan(1);
    expect(tiled.tilePlan.reason).toBe('memory');
    expect(Buffer.from(tiled.scores.data.buffer).equals(Buffer.from(untiled.scores.data.buffer))).toBe(true);
    expect(Buffer.from(tiled.indices.buffer).equals(Buffer.from(untiled.indices.buffer))).toBe(true);
    expect(tiled.stats.count).toBe(untiled.stats.count);
    expect(tiled.stats.count).toBe(targetShape[0] * targetShape[1] * targetShape[2] * 5);
    expect(tiled.stats.mean).toBeCloseTo(untiled.stats.mean, 12);
    expect(tiled.stats.std).toBeCloseTo(untiled.stats.std, 12);
    expect(Array.from(tiled.stats.perRotationMax)).toEqual(Array.from(untiled.stats.perRotationMax));
    // Each rotation's own mean and spread (the false-alarm model per rotation), against one-rotation searches.
    expect(tiled.stats.perRotationMean).toHaveLength(5);
    for (let r = 0; r < 5; r++) {
      expect(tiled.stats.perRotationMean![r]).toBeCloseTo(untiled.stats.perRotationMean![r]!, 12);
      expect(tiled.stats.perRotationStd![r]).toBeCloseTo(untiled.stats.perRotationStd![r]!, 12);
      const one = await match({ rotations: rotations.slice(9 * r, 9 * r + 9) });
      expect(untiled.stats.perRotationMean![r]).toBeCloseTo(one.stats.mean, 9);
      expect(untiled.stats.perRotationStd![r]).toBeCloseTo(one.stats.std, 9);
    }
  });

  it('a user tile splits as asked (odd cores included) and stitches to the same maps', async () => {
    const untiled = await match({ score: 'flc', padTarget: 'mirror' });
    const tiled = await match({ score: 'flc', padTarget: 'mirror', tile: [9, 10, 8] });
    expect(tiled.tilePlan.reason).toBe('user');
    expect(tiled.tilePlan.splits).toEqual([3, 2, 4]);
    expect(Buffer.from(tiled.scores.data.buffer).equals(Buffer.from(untiled.scores.data.buffer))).toBe(true);
    expect(Buffer.from(tiled.indices.buffer).equals(Buffer.from(untiled.indices.buffer))).toBe(true);
  });

  it('mcc tiles keep the target mask aligned', async () => {
    const tm = new Float32Array(target.data.length).fill(1);
    for (let i = 0; i < 300; i++) tm[i] = 0;
    const targetMask = createVolume(tm, targetShape, 2);
    const untiled = await match({ score: 'mcc', targetMask });
    const tiled = await match({ score: 'mcc', targetMask, tile: [10, 9, 9] });
    expect(Buffer.from(tiled.scores.data.buffer).equals(Buffer.from(untiled.scores.data.buffer))).toBe(true);
    expect(tiled.stats.voxelCount).toBe(target.data.length - 300);
    expect(tiled.stats.count).toBe((target.data.length - 300) * 5);
  });
});

describe('determinism across batches, checkpoints and resumes', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-engine-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('batch sizes do not change maps or statistics', async () => {
    const a = await match({}, { batchRotations: 1 });
    const b = await match({}, { batchRotations: 5 });
    expect(Buffer.from(a.scores.data.buffer).equals(Buffer.from(b.scores.data.buffer))).toBe(true);
    expect(Buffer.from(a.indices.buffer).equals(Buffer.from(b.indices.buffer))).toBe(true);
    expect(a.stats.mean).toBe(b.stats.mean);
    expect(a.stats.std).toBe(b.stats.std);
  });

  it('cancel leaves a checkpoint; resume gives bitwise the uninterrupted maps', async () => {
    const opts = { tile: [9, 10, 8] as Zyx, score: 'flc' };
    const whole = await match(opts, { batchRotations: 2 });
    const controller = new AbortController();
    let events = 0;
    await expect(match(opts, {
      batchRotations: 2, signal: controller.signal, checkpoint: { dir, intervalSeconds: 0 },
      onProgress: (p) => { events++; if (p.done >= 13) controller.abort(); },
    })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
    expect(events).toBeGreaterThanOrEqual(13);
    expect(fs.existsSync(path.join(dir, CHECKPOINT_FILE))).toBe(true);
    const progress: number[] = [];
    const resumed = await match(opts, {
      batchRotations: 3, checkpoint: { dir, resume: true, intervalSeconds: 0 }, onProgress: (p) => progress.push(p.done),
    });
    expect(resumed.resumed).toBe(true);
    // It continued: the first progress it reports is past the cancelled point's last whole batch.
    expect(progress[0]).toBeGreaterThan(10);
    expect(Buffer.from(resumed.scores.data.buffer).equals(Buffer.from(whole.scores.data.buffer))).toBe(true);
    expect(Buffer.from(resumed.indices.buffer).equals(Buffer.from(whole.indices.buffer))).toBe(true);
    expect(resumed.stats.mean).toBe(whole.stats.mean);
    expect(resumed.stats.std).toBe(whole.stats.std);
  });

  it('refuses to resume another job\'s checkpoint', async () => {
    const controller = new AbortController();
    await expect(match({}, {
      batchRotations: 1, signal: controller.signal, checkpoint: { dir, intervalSeconds: 0 },
      onProgress: (p) => { if (p.done >= 2) controller.abort(); },
    })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
    await expect(match({ padTarget: 'zero' }, { checkpoint: { dir, resume: true } })).rejects.toMatchObject({ code: 'ERR_TME_MISMATCH' });
  });

  it('an already aborted signal fails at once', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(match({}, { signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
  });
});

describe('ground truth: templates placed in noise are found', () => {
  it('finds each copy at its exact position with its rotation', async () => {
    const shape: Zyx = [24, 24, 24];
    const set = rotationSet([['z', 0], ['z', 90], ['x', 90], ['y', 90], ['x', 180]]);
    const data = gaussianNoise(24 ** 3, 5, 0.3);
    const t = blobTemplate(7);
    const placed: Array<{ at: Zyx; rotation: number }> = [{ at: [6, 7, 16], rotation: 1 }, { at: [17, 15, 6], rotation: 3 }, { at: [16, 5, 17], rotation: 4 }];
    for (const { at, rotation } of placed) {
      const tR = rotateBox(t.data, [7, 7, 7], set.subarray(9 * rotation, 9 * rotation + 9), 'linear');
      for (let z = 0; z < 7; z++) for (let y = 0; y < 7; y++) for (let x = 0; x < 7; x++) {
        const i = ((at[0] + z - 3) * 24 + at[1] + y - 3) * 24 + at[2] + x - 3;
        data[i] = data[i]! + tR[(z * 7 + y) * 7 + x]!;
      }
    }
    const result = await matchTemplate({ target: createVolume(data, shape, 2), template: t, rotations: set, maskRadius: 6 }, { backend: reference });
    const order = Array.from(result.scores.data.keys()).sort((a, b) => result.scores.data[b]! - result.scores.data[a]!);
    const found: number[] = [];
    for (const i of order) {
      const z = Math.floor(i / 576), y = Math.floor(i / 24) % 24, x = i % 24;
      if (found.every((j) => Math.max(Math.abs(Math.floor(j / 576) - z), Math.abs((Math.floor(j / 24) % 24) - y), Math.abs((j % 24) - x)) > 4)) found.push(i);
      if (found.length === 3) break;
    }
    const expected = placed.map(({ at }) => (at[0] * 24 + at[1]) * 24 + at[2]);
    expect(found.slice().sort((a, b) => a - b)).toEqual(expected.slice().sort((a, b) => a - b));
    for (const { at, rotation } of placed) {
      const i = (at[0] * 24 + at[1]) * 24 + at[2];
      expect(result.indices[i]).toBe(rotation);
      expect(result.scores.data[i]).toBeGreaterThan(0.4);
    }
    expect(result.stats.std).toBeGreaterThan(0);
    expect(result.stats.mean).toBeLessThan(0.1);
  });
});

describe('score mapping', () => {
  it('corr is flc-sphere; cam equals it to rounding; lcc is cc on Laplacians', async () => {
    const flc = await match({ score: 'FLCSphericalMask' });
    const corr = await match({ score: 'CORR' });
    const cam = await match({ score: 'cam' });
    expect(Buffer.from(corr.scores.data.buffer).equals(Buffer.from(flc.scores.data.buffer))).toBe(true);
    expect(maxAbsDiff(cam.scores.data, flc.scores.data)).toBeLessThan(1e-4);
    const lcc = await match({ score: 'LCC', padTarget: 'zero' });
    const lf = laplacian(target.data, targetShape, 'nearest');
    const lt = laplacian(template.data, [5, 5, 5], 'zero');
    const padded: Zyx = [18, 16, 17];
    const p = extractRegion(lf, targetShape, [-2, -2, -2], padded, 'zero');
    const m = bruteForceScores('cc', p, padded, lt, [5, 5, 5], new Float32Array(125).fill(1), rotations.subarray(0, 9));
    // Rotation 0 is the identity: lcc ≥ the identity's score everywhere, and equal where the identity wins.
    for (let z = 0; z < 14; z++) for (let y = 0; y < 12; y++) for (let x = 0; x < 13; x++) {
      const i = (z * 12 + y) * 13 + x;
      const v = Math.fround(m[((z + 2) * 16 + y + 2) * 17 + x + 2]!);
      if (lcc.indices[i] === 0) expect(Math.abs(lcc.scores.data[i]! - v)).toBeLessThan(1e-3);
      else expect(lcc.scores.data[i]!).toBeGreaterThanOrEqual(v - 1e-3);
    }
    expect(lcc.parameters.backendScore).toBe('cc');
  });
});

describe('validation', () => {
  it.each([
    ['mcc without a target mask', { score: 'mcc' }, 'ERR_TME_INVALID_OPTION', /needs a target mask/],
    ['an unknown score', { score: 'ncc' }, 'ERR_TME_INVALID_OPTION', /Expected one of cc, lcc/],
    ['another voxel size', { template: createVolume(template.data, [5, 5, 5], 3) }, 'ERR_TME_MISMATCH', /voxel size/],
    ['a tile within the template box', { tile: [4, 12, 12] as Zyx }, 'ERR_TME_INVALID_OPTION', /tile larger than the template's support/],
    ['8 matrix values', { rotations: new Float64Array(8) }, 'ERR_TME_INVALID_OPTION', /9 values per rotation/],
    ['a filter of the wrong length', { filter: () => new Float32Array(3) }, 'ERR_TME_MISMATCH', /half-spectrum needs/],
    ['a one-voxel sphere', { maskRadius: 0.5 }, 'ERR_TME_INVALID_OPTION', /covers fewer than 2 voxels/],
    ['an empty mask', { maskRadius: undefined, templateMask: createVolume(new Float32Array(125), [5, 5, 5], 2) }, 'ERR_TME_INVALID_OPTION', /covers fewer than 2 voxels/],
    ['fourier rotation with flc', { score: 'flc', rotationMode: 'fourier' }, 'ERR_TME_INVALID_OPTION', /real for the flc score/],
    ['a mask and a radius', { templateMask: createVolume(new Float32Array(125), [5, 5, 5], 2) }, 'ERR_TME_INVALID_OPTION', /no radius when a template mask is given/],
  ] as const)('rejects %s', async (_label, extra, code, message) => {
    const promise = match(extra as Partial<MatchJob>);
    await expect(promise).rejects.toMatchObject({ code });
    await expect(promise).rejects.toThrow(message);
  });

  it('a job that cannot fit the device fails with the numbers', async () => {
    // The maps (8 bytes a voxel, 17.5 kB here) fit in 85 % of 22 kB; a tile does not.
    await expect(matchTemplate(job(), { backend: new ReferenceBackend({ memoryBytes: 22_000 }) }))
      .rejects.toThrow(/needs .* GiB but the device has/);
  });

  it('maps larger than the host memory free (or memoryLimitBytes) are refused before anything is allocated', async () => {
    await expect(matchTemplate(job(), { backend: new ReferenceBackend({ memoryBytes: 1000 }) }))
      .rejects.toMatchObject({ code: 'ERR_TME_DEVICE_MEMORY', message: expect.stringMatching(/^the search of a 13×12×14 target holds 1 MiB \(its best-score and rotation maps\) before any tile, but 1 MiB of host memory is free/) });
    await expect(matchTemplate({ ...job(), memoryLimitBytes: 10_000 }, { backend: new ReferenceBackend() }))
      .rejects.toThrow(/holds 161 MiB \(the target, its best-score and rotation maps and tme itself\) before any tile, but --memory allows 1 MiB/);
    const limited = await matchTemplate({ ...job(), memoryLimitBytes: 2 ** 30 }, { backend: new ReferenceBackend() });
    expect(limited.parameters.memoryLimitBytes).toBe(2 ** 30);
  });
});

describe('the target filter', () => {
  it('is applied once to the whole target, continued by the padding mode a template box beyond each face', async () => {
    const { nextFastShape } = await import('@tme/native');
    const { applyHalfSpectrumFilter } = await import('../src/dft');
    const lowPass = (shape: Zyx): Float32Array => halfSpectrumFilter(shape, (fz, fy, fx) => Math.exp(-(fz * fz + fy * fy + fx * fx) / (2 * 0.15 ** 2)));
    const filtered = await match({ targetFilter: lowPass, padTarget: 'mirror' });
    // By hand: the target mirrored 5 voxels (the box) past every face, on the fast grid, filtered, cut back.
    const grid = nextFastShape([targetShape[0] + 10, targetShape[1] + 10, targetShape[2] + 10]);
    const padded = Float64Array.from(extractRegion(target.data, targetShape, [-5, -5, -5], grid, 'mirror'));
    const back = Float32Array.from(applyHalfSpectrumFilter(padded, grid, lowPass(grid)));
    const byHand = createVolume(extractRegion(back, grid, [5, 5, 5], targetShape, 'zero'), targetShape, target.voxelSize);
    const expected = await match({ target: byHand, padTarget: 'mirror' });
    expect(maxAbsDiff(filtered.scores.data, expected.scores.data)).toBeLessThan(1e-4);
    // And it did something.
    const plain = await match({ padTarget: 'mirror' });
    expect(maxAbsDiff(plain.scores.data, expected.scores.data)).toBeGreaterThan(1e-2);
  });
});
