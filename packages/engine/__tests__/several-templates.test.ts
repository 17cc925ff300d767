// Several templates in one pass (MatchJob.moreTemplates) against one run per template merged by max: the same maps,
// whichever backend, tiling or support each template has.
import { createVolume, type Volume, type Zyx } from '@tme/formats';
import { matchTemplate, type MatchResult } from '../src/match';
import { estimateJob } from '../src/estimate';
import type { MatchJob } from '../src/prepare';
import { NativeBackend, nativeAddonBuilt } from '../src/native-backend';
import { ReferenceBackend } from '../src/reference-backend';
import type { MatchBackend } from '../src/backend';
import { blobTemplate, noiseVolume, rotationSet } from './helpers';

jest.setTimeout(120_000);

const targetShape: Zyx = [22, 20, 24];
/** A second template unlike blobTemplate: a rod and a knob on a larger box. */
function rodTemplate(size: number): Volume {
  const c = Math.floor(size / 2);
  const data = new Float32Array(size ** 3);
  for (let z = 0; z < size; z++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const rod = Math.exp(-((y - c) ** 2 + (x - c) ** 2) / 1.5) * (Math.abs(z - c) <= 3 ? 1 : 0);
    const knob = 0.7 * Math.exp(-((z - c - 2) ** 2 + (y - c) ** 2 + (x - c - 2) ** 2) / 1.0);
    data[(z * size + y) * size + x] = rod + knob;
  }
  return createVolume(data, [size, size, size], 2);
}

const a = blobTemplate(7);
const b = rodTemplate(9);
const rotationsA = rotationSet([['z', 0], ['z', 90], ['x', 90], ['y', 30]]);
const rotationsB = rotationSet([['z', 0], ['x', 45], ['y', 120]]);

/** The target: noise with a copy of each template planted (A at one place, B at another). */
function plantedTarget(): Volume {
  const t = noiseVolume(targetShape, 5);
  const plant = (tpl: Volume, at: Zyx, gain: number): void => {
    const [s] = tpl.shape;
    const c = Math.floor(s / 2);
    for (let z = 0; z < s; z++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      const i = ((at[0] + z - c) * targetShape[1] + at[1] + y - c) * targetShape[2] + at[2] + x - c;
      t.data[i] = (t.data[i] as number) + gain * (tpl.data[(z * s + y) * s + x] as number);
    }
  };
  plant(a, [6, 6, 7], 4);
  plant(b, [14, 13, 16], 4);
  return t;
}
const target = plantedTarget();

function job(extra: Partial<MatchJob> = {}): MatchJob {
  return { target, template: a, rotations: rotationsA, maskRadius: 6, moreTemplates: [{ template: b, rotations: rotationsB, maskRadius: 7 }], ...extra };
}

/** Template A's run and template B's run, merged by max (ties to A, as the pass keeps the lower rotation index). */
async function separately(backend: MatchBackend, extra: Partial<MatchJob>): Promise<{ scores: Float32Array; indices: Int32Array }> {
  const ra = await matchTemplate({ target, template: a, rotations: rotationsA, maskRadius: 6, ...extra }, { backend });
  const rb = await matchTemplate({ target, template: b, rotations: rotationsB, maskRadius: 7, ...extra }, { backend });
  const scores = new Float32Array(ra.scores.data.length);
  const indices = new Int32Array(scores.length);
  for (let i = 0; i < scores.length; i++) {
    const sa = ra.scores.data[i] as number;
    const sb = rb.scores.data[i] as number;
    scores[i] = Math.max(sa, sb);
    indices[i] = sb > sa ? (rb.indices[i] as number) + rotationsA.length / 9 : (ra.indices[i] as number);
  }
  return { scores, indices };
}

function compare(pass: MatchResult, merged: { scores: Float32Array; indices: Int32Array }): void {
  const nA = rotationsA.length / 9;
  let worst = 0;
  let decided = 0;
  for (let i = 0; i < merged.scores.length; i++) {
    worst = Math.max(worst, Math.abs((pass.scores.data[i] as number) - (merged.scores[i] as number)));
  }
  expect(worst).toBeLessThan(1e-5);
  // The winning template and rotation agree wherever the two best scores are not within rounding of each other.
  for (let i = 0; i < merged.scores.length; i++) {
    const p = pass.indices[i] as number;
    const m = merged.indices[i] as number;
    if (p !== m) {
      expect(Math.abs((pass.scores.data[i] as number) - (merged.scores[i] as number))).toBeLessThan(1e-5);
    } else decided++;
  }
  expect(decided / merged.scores.length).toBeGreaterThan(0.99);
  // The planted particles: template A wins at A's place, B at B's, each with its own rotation 0.
  const at = (z: number, y: number, x: number): number => (z * targetShape[1] + y) * targetShape[2] + x;
  expect(pass.indices[at(6, 6, 7)]).toBe(0);
  expect(pass.indices[at(14, 13, 16)]).toBe(nA);
  expect(pass.rotations.length).toBe(rotationsA.length + rotationsB.length);
  expect(pass.parameters.templates?.map((t) => [t.rotationStart, t.rotationCount, t.templateShape[0]])).toEqual([[0, nA, 7], [nA, 3, 9]]);
}

const backends: Array<[string, () => MatchBackend]> = [['reference', () => new ReferenceBackend()]];
if (nativeAddonBuilt()) backends.push(['native CPU', () => new NativeBackend()]);

describe('two templates in one pass equal two runs merged by max', () => {
  it.each(backends)('%s backend, one tile', async (_name, make) => {
    const backend = make();
    const pass = await matchTemplate(job({ device: 'cpu' }), { backend });
    expect(pass.tilePlan.tiles).toHaveLength(1);
    compare(pass, await separately(backend, { device: 'cpu' }));
  });

  it.each(backends)('%s backend, tiles padded by the larger support', async (_name, make) => {
    const backend = make();
    // A tile of 16 voxels per axis: several tiles, each padded by template B's support (the larger).
    const pass = await matchTemplate(job({ device: 'cpu', tile: [16, 16, 16] }), { backend, batchRotations: 2 });
    expect(pass.tilePlan.tiles.length).toBeGreaterThan(1);
    expect(pass.parameters.supportShape).toEqual(pass.parameters.templates?.[1]?.supportShape);
    compare(pass, await separately(backend, { device: 'cpu' }));
  });
});

describe('what several templates refuse and report', () => {
  const backend = new ReferenceBackend();
  it('refuses a shard and a background option, naming them', async () => {
    await expect(matchTemplate(job({ rotationRange: [0, 2] }), { backend })).rejects.toThrow(/rotationRange/);
    await expect(matchTemplate(job({ background: 'random-phase' }), { backend })).rejects.toThrow(/background/);
    await expect(matchTemplate(job({ background: 'rotation-stats' }), { backend })).rejects.toThrow(/background/);
  });

  it('estimate counts every template\'s rotations and the larger box', async () => {
    const e = await estimateJob(job({ device: 'cpu' }), { backend });
    expect(e.templateCount).toBe(2);
    expect(e.rotationCount).toBe(rotationsA.length / 9 + rotationsB.length / 9);
    expect(e.templateShape).toEqual([9, 9, 9]);
  });
});
