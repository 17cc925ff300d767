// Normalised scores stay in [−1, 1] on every path, and a voxel whose local σ under the mask is below 1 % of the
// target's σ scores 0: flat, constant, zero-filled and noise-free targets (where flc-sphere once wrote 2.64).
import { fftForward, fftInverse, runMatch, type NativeMatchJob, type NativeScore } from '../index';
import { lavapipeIndex } from './helpers/devices';
import { randomVolume, rotateBox, sphereMask, voxels, type Shape } from './helpers/reference';
import { randomRotations, smoothVolume, wedgeLowPass } from './helpers/volumes';

const tile: Shape = [24, 24, 24];
const box: Shape = [8, 8, 8];
const mask = sphereMask(box, 3);
const template = smoothVolume(box, 3, 1.2).map((v, i) => v * mask[i]!);
const rotations = randomRotations(4, 5);
const flat = Float64Array.from(rotations.flat());
const vk = lavapipeIndex();
const devices: Array<NativeMatchJob['device']> = vk === undefined ? ['cpu'] : ['cpu', vk];
const scores: NativeScore[] = ['flc-sphere', 'flc', 'mcc'];

const at = (z: number, y: number, x: number): number => (z * tile[1] + y) * tile[2] + x;

function job(score: NativeScore, target: Float32Array, extra: Partial<NativeMatchJob> = {}): Omit<NativeMatchJob, 'device'> {
  return {
    target, targetShape: tile, template, templateShape: box, mask, rotations: flat, score,
    targetMask: score === 'mcc' ? new Float32Array(voxels(tile)).fill(1) : undefined, ...extra,
  };
}

// (+0 for −0: a flat voxel's 0 may carry the sign of its correlation.)
function range(a: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of a) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return [lo + 0, hi + 0];
}

/** Voxels whose mask (radius 3 + 1 soft voxel) sees only z < edge: their neighbourhood is all zeros. */
function seesOnlyBelow(z: number, edge: number): boolean {
  return z + 4 < edge;
}

describe.each(devices)('bounded scores on device %s', (device) => {
  it.each(scores)('%s: a constant target scores 0 everywhere (and so does an all-zero one)', async (score) => {
    for (const value of [5, 0]) {
      const r = await runMatch({ ...job(score, new Float32Array(voxels(tile)).fill(value)), device });
      expect(range(r.scores)).toEqual([0, 0]);
    }
  });

  it.each(scores)('%s: a zero-filled border scores 0 where the mask sees only zeros, and every score is in [−1, 1]', async (score) => {
    // Noise in z ≥ 12, exact zeros below (a volume outside the reconstructed field of view).
    const target = randomVolume(tile, 11).map((v, i) => (Math.floor(i / (tile[1] * tile[2])) >= 12 ? v : 0));
    const r = await runMatch({ ...job(score, target, { filter: wedgeLowPass([8, 8, 8], 0.3), filterShape: [8, 8, 8] }), device });
    const [lo, hi] = range(r.scores);
    expect(lo).toBeGreaterThanOrEqual(-1);
    expect(hi).toBeLessThanOrEqual(1);
    let flatCount = 0;
    for (let z = 0; z < tile[0]; z++) {
      if (!seesOnlyBelow(z, 12)) continue;
      for (let y = 0; y < tile[1]; y++) for (let x = 0; x < tile[2]; x++) {
        // Circular correlation: z near the top wraps onto the noise, so only the middle of the zero band is flat.
        if (z < 4) continue;
        expect(Math.abs(r.scores[at(z, y, x)]!)).toBe(0);
        flatCount++;
      }
    }
    expect(flatCount).toBeGreaterThan(0);
    // Where the mask straddles the border the score is defined and not 0.
    expect(Math.abs(r.scores[at(11, 12, 12)]!)).toBeGreaterThan(0);
  });

  it.each(scores)('%s: an isolated particle in an empty volume scores ≈1 at its centre, ≤ 1 everywhere, 0 far away', async (score) => {
    const particle = new Float32Array(voxels(tile));
    const placed = rotateBox(template, box, rotations[2]!);
    for (let z = 0; z < 8; z++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) {
      particle[at(8 + z, 8 + y, 8 + x)] = placed[(z * 8 + y) * 8 + x]!;
    }
    // Imaged through a wedge and a low-pass, as a noise-free simulation would be: the particle's tails reach every
    // voxel at a tiny level — a local σ of ~1e-7 of the target's, where the old rule (relative to the local mean
    // square) let float error through.
    const h = wedgeLowPass(tile, 0.25);
    const spectrum = fftForward('cpu', particle, tile);
    for (let k = 0; k < h.length; k++) { spectrum[2 * k]! *= h[k]!; spectrum[2 * k + 1]! *= h[k]!; }
    const target = fftInverse('cpu', spectrum, tile);
    const filter = wedgeLowPass([8, 8, 8], 0.25);
    const r = await runMatch({ ...job(score, target, { filter, filterShape: [8, 8, 8] }), device });
    const [lo, hi] = range(r.scores);
    expect(lo).toBeGreaterThanOrEqual(-1);
    expect(hi).toBeLessThanOrEqual(1);
    expect(r.scores[at(12, 12, 12)]!).toBeGreaterThan(0.9);
    expect(r.indices[at(12, 12, 12)]).toBe(2);
    // A corner far from the particle: the mask sees only zeros.
    expect(Math.abs(r.scores[at(0, 0, 0)]!)).toBe(0);
    expect(Math.abs(r.scores[at(22, 2, 21)]!)).toBe(0);
  });

  it('flatness is judged against the variance the job gives (the whole target\'s), not the tile\'s', async () => {
    // Noise of σ 1e-3 everywhere: with its own variance nothing is flat; against a target variance of 1 all of it is.
    const quiet = randomVolume(tile, 21).map((v) => v * 1e-3);
    const own = await runMatch({ ...job('flc-sphere', quiet), device });
    expect(own.scores.filter((v) => v === 0).length).toBeLessThan(voxels(tile) * 0.01);
    const global = await runMatch({ ...job('flc-sphere', quiet, { targetMean: 0, targetVariance: 1 }), device });
    expect(range(global.scores)).toEqual([0, 0]);
    // The mean only centres the data: the same maps with any mean subtracted, to float error.
    const shifted = await runMatch({ ...job('flc', quiet.map((v) => v + 1000 * 1e-3)), device });
    const plain = await runMatch({ ...job('flc', quiet), device });
    let d = 0;
    for (let i = 0; i < plain.scores.length; i++) d = Math.max(d, Math.abs(plain.scores[i]! - shifted.scores[i]!));
    expect(d).toBeLessThan(1e-3);
  });
});
