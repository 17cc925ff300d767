import type { Zyx } from '@tme/formats';
import { ReferenceBackend } from '../src/reference-backend';
import { sphereMask } from '../src/masks';
import type { BackendScore } from '../src/backend';
import { blobTemplate, bruteForceScores, gaussianNoise, maxAbsDiff, rotationSet } from './helpers';

// Small volumes, but the machine is shared: generous time per test.
jest.setTimeout(60_000);

const tile: Zyx = [9, 10, 11];
const box: Zyx = [5, 5, 5];
const f = gaussianNoise(tile[0] * tile[1] * tile[2], 1);
const t = blobTemplate(5).data;
const mask = sphereMask(box, 2, [1, 1, 1]);
const rotations = rotationSet([['z', 0], ['z', 37], ['x', 90], ['y', 200]]);
const targetMask = new Float32Array(f.length).fill(1);
for (let i = 0; i < f.length; i += 7) targetMask[i] = 0;

async function run(score: BackendScore, extra: Partial<Parameters<ReferenceBackend['runMatch']>[0]> = {}) {
  return new ReferenceBackend().runMatch({
    device: 'cpu', target: f, targetShape: tile, template: t, templateShape: box, mask,
    targetMask: score === 'mcc' ? targetMask : undefined, rotations, rotationStart: 0, rotationEnd: 4,
    score, interpolation: 'linear', rotationMode: 'real', ...extra,
  });
}

describe('reference backend against per-voxel brute force', () => {
  it.each(['cc', 'flc-sphere', 'flc', 'mcc'] as const)('%s: best scores, indices and statistics', async (score) => {
    const result = await run(score);
    const maps = [0, 1, 2, 3].map((r) =>
      bruteForceScores(score, f, tile, t, box, mask, rotations.subarray(9 * r, 9 * r + 9), 'linear', targetMask));
    const best = new Float64Array(f.length).fill(-Infinity);
    const arg = new Int32Array(f.length).fill(-1);
    maps.forEach((m, r) => m.forEach((v, i) => { if (Math.fround(v) > best[i]!) { best[i] = Math.fround(v); arg[i] = r; } }));
    expect(maxAbsDiff(result.scores, best)).toBeLessThan(1e-4 * (score === 'cc' ? 10 : 1));
    // Index maps agree wherever the best two rotations are not within rounding of each other.
    let disagree = 0;
    for (let i = 0; i < f.length; i++) if (result.indices[i] !== arg[i]) disagree++;
    expect(disagree).toBeLessThanOrEqual(f.length * 0.002);
    const all = maps.flatMap((m) => Array.from(m));
    const mean = all.reduce((s, v) => s + v, 0) / all.length;
    expect(result.stats.count).toBe(all.length);
    expect(result.stats.sum / result.stats.count).toBeCloseTo(mean, 5);
    maps.forEach((m, r) => expect(result.stats.perRotationMax[r]).toBeCloseTo(Math.max(...m), 4));
    if (score !== 'cc') expect(Math.max(...result.scores)).toBeLessThanOrEqual(1 + 1e-6);
  });

  it('cubic interpolation follows the same definitions', async () => {
    const result = await run('flc', { interpolation: 'cubic', rotationStart: 1, rotationEnd: 2 });
    const m = bruteForceScores('flc', f, tile, t, box, mask, rotations.subarray(9, 18), 'cubic');
    expect(maxAbsDiff(result.scores, m)).toBeLessThan(1e-4);
    expect(result.indices.every((i) => i === 1)).toBe(true);
  });

  it('a filter cos(2πkx/gx) on the template\'s grid averages the correlation of the two x-neighbours', async () => {
    // The template is zero on its x faces and the filter grid two voxels wider in x, so the shifted copies stay
    // inside the box: T'(q) = (T(q − eₓ) + T(q + eₓ))/2, hence c'(x) = (c(x − eₓ) + c(x + eₓ))/2.
    const g: Zyx = [box[0], box[1], box[2] + 2];
    const hx = Math.floor(g[2] / 2) + 1;
    const filter = new Float32Array(g[0] * g[1] * hx);
    for (let i = 0; i < filter.length; i++) filter[i] = Math.cos((2 * Math.PI * (i % hx)) / g[2]);
    const inner = t.map((v, i) => (i % box[2] === 0 || i % box[2] === box[2] - 1 ? 0 : v));
    const plain = await run('cc', { rotationEnd: 1, template: inner });
    const filtered = await run('cc', { rotationEnd: 1, template: inner, filter, filterShape: g });
    const nx = tile[2];
    const expected = new Float64Array(f.length);
    for (let i = 0; i < f.length; i++) {
      const x = i % nx;
      const row = i - x;
      expected[i] = ((plain.scores[row + ((x + nx - 1) % nx)] as number) + (plain.scores[row + ((x + 1) % nx)] as number)) / 2;
    }
    expect(maxAbsDiff(filtered.scores, expected)).toBeLessThan(1e-4);
  });

  it('only strictly greater scores replace the initial maps; ties keep the lowest index', async () => {
    const twice = new Float64Array(18);
    twice.set(rotations.subarray(0, 9), 0);
    twice.set(rotations.subarray(0, 9), 9);
    const result = await run('flc-sphere', { rotations: twice, rotationEnd: 2 });
    expect(result.indices.every((i) => i === 0)).toBe(true);
    const initialScores = new Float32Array(f.length).fill(2);
    const initialIndices = new Int32Array(f.length).fill(7);
    const kept = await run('flc-sphere', { initialScores, initialIndices });
    expect(kept.indices.every((i) => i === 7)).toBe(true);
    expect(kept.scores.every((v) => v === 2)).toBe(true);
  });

  it('counts statistics only where statsMask is set, per rotation', async () => {
    const statsMask = new Uint8Array(f.length);
    statsMask[5] = 1;
    statsMask[77] = 1;
    const result = await run('flc-sphere', { statsMask });
    const full = await run('flc-sphere');
    expect(result.stats.count).toBe(8);
    const maps = [0, 1, 2, 3].map((r) => bruteForceScores('flc-sphere', f, tile, t, box, mask, rotations.subarray(9 * r, 9 * r + 9)));
    const s = maps.reduce((acc, m) => acc + Math.fround(m[5]!) + Math.fround(m[77]!), 0);
    expect(result.stats.sum).toBeCloseTo(s, 5);
    expect(result.stats.perRotationSum?.length).toBe(4);
    expect(full.stats.count).toBe(4 * f.length);
  });

  it('cancels between rotations with ERR_TME_CANCELLED', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(new ReferenceBackend().runMatch({
      device: 'cpu', target: f, targetShape: tile, template: t, templateShape: box, mask, rotations, rotationStart: 0,
      rotationEnd: 4, score: 'cc', interpolation: 'linear', rotationMode: 'real',
    }, { signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
  });
});
