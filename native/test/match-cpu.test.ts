import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fftForward, fftInverse, runMatch, type CpuTransforms, type NativeScore } from '../index';
import { runJobInChild } from './helpers/child';
import { axisAngle, randomVolume, referenceMatch, rotateBox, sphereMask, voxels, type Shape } from './helpers/reference';
import { argmax, plant, randomRotations, smoothVolume, wedgeLowPass } from './helpers/volumes';

const tile: Shape = [16, 16, 16];
const box: Shape = [6, 6, 6];
const rotations = [axisAngle([0, 0, 1], 0), axisAngle([1, 2, 3], 37), axisAngle([0, 1, 0], 90)];
const flat = Float64Array.from(rotations.flat());
const target = randomVolume(tile, 1);
const template = randomVolume(box, 2);
const mask = sphereMask(box, 2.2);
const targetMask = Float32Array.from({ length: voxels(tile) }, (_, i) => (i % 16 < 13 ? 1 : 0));

/** A CPU job on noise: target and template from seeds `seed` and `seed` + 1, `count` random rotations from `seed` + 2,
 *  a sphere mask of radius `radius`. */
function noiseJob(t: Shape, b: Shape, seed: number, radius: number, count: number) {
  return {
    device: 'cpu' as const, target: randomVolume(t, seed), targetShape: t, template: randomVolume(b, seed + 1), templateShape: b,
    mask: sphereMask(b, radius), rotations: Float64Array.from(randomRotations(count, seed + 2).flat()),
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

describe.each<NativeScore>(['cc', 'flc-sphere', 'flc', 'mcc'])('runMatch %s on the CPU path', (score) => {
  it('equals the direct (non-FFT) reference to 1e-4 and picks the same rotations', async () => {
    const tm = score === 'mcc' ? targetMask : undefined;
    const ref = referenceMatch(score, target, tile, template, mask, box, rotations, tm);
    const got = await runMatch({
      device: 'cpu', target, targetShape: tile, template, templateShape: box, mask, rotations: flat, score,
      targetMask: tm,
    });
    let scale = 0;
    for (const v of ref.scores) scale = Math.max(scale, Math.abs(v));
    expect(maxAbsDiff(got.scores, ref.scores) / scale).toBeLessThan(1e-4);
    // Rotation indices agree wherever the two best scores are not a near tie.
    let mismatches = 0;
    for (let i = 0; i < got.indices.length; i++) {
      if (got.indices[i] !== ref.indices[i]) {
        const a = ref.maps[got.indices[i]!]![i]!;
        if (Math.abs(a - ref.scores[i]!) > 1e-4 * scale) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
    expect(got.stats.count).toBe(voxels(tile) * rotations.length);
    let sum = 0;
    for (const map of ref.maps) for (const v of map) sum += v;
    expect(Math.abs(got.stats.sum - sum)).toBeLessThan(1e-3 * scale * voxels(tile));
    ref.maps.forEach((map, r) => {
      let mx = -Infinity;
      let s1 = 0;
      let s2 = 0;
      for (const v of map) { mx = Math.max(mx, v); s1 += v; s2 += v * v; }
      expect(Math.abs(got.stats.perRotationMax[r]! - mx)).toBeLessThan(1e-4 * scale);
      // Per rotation too: the false-alarm model sums each rotation's own Gaussian tail.
      expect(Math.abs(got.stats.perRotationSum[r]! - s1)).toBeLessThan(1e-3 * scale * voxels(tile));
      expect(Math.abs(got.stats.perRotationSumSq[r]! - s2) / s2).toBeLessThan(1e-4);
    });
    let total = 0;
    for (const v of got.stats.perRotationSum) total += v;
    expect(total).toBeCloseTo(got.stats.sum, 6);
  });
});

// The template filter acts on each rotated template on its own grid, before the template is normalised (README).
describe.each<NativeScore>(['cc', 'flc-sphere', 'flc', 'mcc'])('runMatch %s with a template filter on the CPU path', (score) => {
  it.each<[string, Shape]>([['the box', box], ['a larger grid', [8, 9, 10]]])('filtered on %s: equals the direct reference to 1e-4', async (_name, g) => {
    const filter = { shape: g, values: wedgeLowPass(g, 0.3) };
    const tm = score === 'mcc' ? targetMask : undefined;
    const ref = referenceMatch(score, target, tile, template, mask, box, rotations, tm, filter);
    const unfiltered = referenceMatch(score, target, tile, template, mask, box, rotations, tm);
    const got = await runMatch({
      device: 'cpu', target, targetShape: tile, template, templateShape: box, mask, rotations: flat, score,
      targetMask: tm, filter: filter.values, filterShape: g,
    });
    let scale = 0;
    for (const v of ref.scores) scale = Math.max(scale, Math.abs(v));
    expect(maxAbsDiff(got.scores, ref.scores) / scale).toBeLessThan(1e-4);
    // The filter matters: the unfiltered maps differ by far more than the tolerance.
    expect(maxAbsDiff(unfiltered.scores, ref.scores) / scale).toBeGreaterThan(1e-2);
  });
});

describe('runMatch behaviour (CPU path)', () => {
  const bigTile: Shape = [32, 32, 32];
  const bigBox: Shape = [10, 10, 10];
  const rots = randomRotations(5, 7);
  const smoothTemplate = smoothVolume(bigBox, 8, 1.2);
  const sphere = sphereMask(bigBox, 4.5);
  const masked = smoothTemplate.map((v, i) => v * sphere[i]!);

  it('finds a planted rotated template at its centre voxel with its rotation index', async () => {
    const t = randomVolume(bigTile, 9).map((v) => v * 0.1);
    const centre: Shape = [20, 11, 7];
    plant(t, bigTile, rotateBox(masked, bigBox, rots[3]!), bigBox, centre);
    const got = await runMatch({
      device: 'cpu', target: t, targetShape: bigTile, template: masked, templateShape: bigBox, mask: sphere,
      rotations: Float64Array.from(rots.flat()),
    });
    const peak = argmax(got.scores);
    expect(peak).toBe((centre[0] * 32 + centre[1]) * 32 + centre[2]);
    expect(got.indices[peak]).toBe(3);
    expect(got.scores[peak]).toBeGreaterThan(0.9);
  });

  it('batches with initial maps give bitwise the maps of one call; threads do not change them', async () => {
    const t = smoothVolume(bigTile, 10);
    const common = {
      device: 'cpu' as const, target: t, targetShape: bigTile, template: masked, templateShape: bigBox, mask: sphere,
      rotations: Float64Array.from(rots.flat()),
    };
    const whole = await runMatch({ ...common, threads: 2 });
    const first = await runMatch({ ...common, rotationStart: 0, rotationEnd: 2, threads: 2 });
    const second = await runMatch({
      ...common, rotationStart: 2, rotationEnd: 5, initialScores: first.scores, initialIndices: first.indices, threads: 1,
    });
    expect(second.scores).toEqual(whole.scores);
    expect(second.indices).toEqual(whole.indices);
    // Written back into the maps it continued from: a run in batches allocates no tile-sized pair per call.
    expect(second.scores).toBe(first.scores);
    expect(second.indices).toBe(first.indices);
    expect(Array.from(first.stats.perRotationMax).concat(Array.from(second.stats.perRotationMax))).toEqual(Array.from(whole.stats.perRotationMax));
    const one = await runMatch({ ...common, threads: 1 });
    expect(one.scores).toEqual(whole.scores);
    expect(one.indices).toEqual(whole.indices);
    expect(Math.abs(one.stats.sum - whole.stats.sum)).toBeLessThan(1e-6 * whole.stats.count);
  });

  it('two workers continuing a batch: the first in the initial maps themselves, the other merged into them — the maps of one call', async () => {
    // 40 rotations of a 24×40×48 tile: both workers take some (each takes the next rotation when it is free).
    const job = { ...noiseJob([24, 40, 48], [9, 9, 9], 71, 4, 40), threads: 2 };
    const whole = await runMatch(job);
    const first = await runMatch({ ...job, rotationEnd: 4 });
    const rest = await runMatch({ ...job, rotationStart: 4, initialScores: first.scores, initialIndices: first.indices });
    expect(rest.scores).toBe(first.scores);
    expect(Buffer.from(rest.scores.buffer).equals(Buffer.from(whole.scores.buffer))).toBe(true);
    expect(Buffer.from(rest.indices.buffer).equals(Buffer.from(whole.indices.buffer))).toBe(true);
  });

  it('an empty batch leaves the initial maps; indices are −1 where nothing was evaluated', async () => {
    const got = await runMatch({ ...{ device: 'cpu' as const, target, targetShape: tile, template, templateShape: box, mask }, rotations: flat, rotationStart: 1, rotationEnd: 1 });
    expect(got.indices.every((v) => v === -1)).toBe(true);
    expect(got.scores.every((v) => v === -Infinity)).toBe(true);
    expect(got.stats.count).toBe(0);
  });

  it('a filter that passes every frequency changes nothing', async () => {
    const common = { device: 'cpu' as const, target: randomVolume(bigTile, 12), targetShape: bigTile, template: masked, templateShape: bigBox, mask: sphere, rotations: Float64Array.from(rots.flat()), score: 'flc' as const };
    const g: Shape = [12, 10, 14];
    const a = await runMatch({ ...common, filter: new Float32Array(g[0] * g[1] * (g[2] / 2 + 1)).fill(1), filterShape: g });
    const b = await runMatch(common);
    let scale = 0;
    for (const v of b.scores) scale = Math.max(scale, Math.abs(v));
    expect(maxAbsDiff(a.scores, b.scores) / scale).toBeLessThan(1e-5);
  });

  it('reports progress up to {done: total, total} and the timings', async () => {
    const seen: number[] = [];
    const got = await runMatch({ device: 'cpu', target, targetShape: tile, template, templateShape: box, mask, rotations: flat }, { onProgress: (p) => { seen.push(p.done); expect(p.total).toBe(3); } });
    expect(seen[seen.length - 1]).toBe(3);
    expect(got.timings.perRotationMs).toBeGreaterThan(0);
    expect(got.timings.loopMs).toBeGreaterThanOrEqual(got.timings.perRotationMs);
    expect(got.device).toContain('FFTW');
  });

  it('cubic (Catmull-Rom) equals linear on grid-aligned rotations and differs slightly otherwise', async () => {
    const common = { device: 'cpu' as const, target, targetShape: tile, template, templateShape: box, mask };
    const aligned = Float64Array.from([...axisAngle([0, 0, 1], 0), ...axisAngle([1, 0, 0], 90)]);
    const lin = await runMatch({ ...common, rotations: aligned, interpolation: 'linear' });
    const cub = await runMatch({ ...common, rotations: aligned, interpolation: 'cubic' });
    expect(maxAbsDiff(lin.scores, cub.scores)).toBeLessThan(1e-5);
    const off = Float64Array.from(axisAngle([1, 2, 3], 37));
    const lin2 = await runMatch({ ...common, rotations: off, interpolation: 'linear' });
    const cub2 = await runMatch({ ...common, rotations: off, interpolation: 'cubic' });
    const d = maxAbsDiff(lin2.scores, cub2.scores);
    expect(d).toBeGreaterThan(1e-4);
    expect(d).toBeLessThan(0.5);
  });
});

// The scoring pass writes the maps with masked stores (AVX-512) or behind a branch, picked per plane from how often
// the last plane found a new maximum (cpu_kernels.cc, MapWrites); TME_MAP_WRITES fixes the choice. Run in child
// processes (the addon reads it once) with one wisdom file, so that every run gets the same FFTW plans.
const avx512 = (() => {
  try {
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1]?.split(' ') ?? [];
    return flags.includes('avx512f') && flags.includes('avx512vl');
  } catch {
    return false;
  }
})();
(avx512 ? describe : describe.skip)('map writes (masked stores on a CPU with AVX-512)', () => {
  it.each<NativeScore>(['flc-sphere', 'flc', 'mcc'])('%s: masked, branch and the per-plane choice give the same maps, bit for bit', (score) => {
    const t: Shape = [24, 40, 48];
    // 40 rotations: a lane's chance of a new maximum falls from 1 to a few per cent, through both choices.
    const job = { ...noiseJob(t, [9, 9, 9], 61, 4, 40), score, outputRegion: { start: [3, 2, 5], shape: [18, 33, 37] } };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-map-writes-'));
    try {
      const wisdom = { TME_FFTW_WISDOM: path.join(dir, 'wisdom') };
      const runs = ['masked', 'branch', ''].map((mode) => runJobInChild('match', job, { ...wisdom, TME_MAP_WRITES: mode }));
      expect(runs[0]!.equals(runs[1]!)).toBe(true);
      expect(runs[2]!.equals(runs[1]!)).toBe(true);
      // Not a run of nothing: every voxel of the region (and none outside it, the maps are the tile's) has a rotation.
      const voxelCount = 24 * 40 * 48;
      const indices = new Int32Array(runs[0]!.buffer, runs[0]!.byteOffset + 4 * voxelCount, voxelCount);
      expect(indices.filter((k) => k >= 0).length).toBe(18 * 33 * 37);
      expect(new Set(indices).size).toBeGreaterThan(20);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pruned R2C (box ≤ tile/8 in z and y)', () => {
  it("gives the mcc maps of the full R2C (cpuTransforms 'full') to 1e-6 relative", async () => {
    const t64: Shape = [64, 64, 48];
    const b8: Shape = [8, 8, 7];
    const job = { ...noiseJob(t64, b8, 31, 3, 2), score: 'mcc' as const };
    const pruned = await runMatch(job);
    const full = await runMatch({ ...job, cpuTransforms: 'full' });
    let scale = 0;
    for (const v of full.scores) scale = Math.max(scale, Math.abs(v));
    const d = maxAbsDiff(pruned.scores, full.scores) / scale;
    expect(d).toBeLessThan(1e-6);
    expect(d).toBeGreaterThan(0); // two different computations (identical maps would mean one ran twice)
  });
});

// Every score runs through the slab correlator (1D passes over the box's rows, per-ky slabs, per-z planes);
// cpuTransforms 'full' runs the same job through FFTW's 3D transforms.
describe('slab correlator (cc, flc-sphere, flc, mcc on the CPU)', () => {
  const shapes: Array<[string, Shape, Shape]> = [
    ['even tile', [32, 36, 40], [9, 8, 7]],
    ['odd tile', [27, 25, 21], [6, 7, 5]],
  ];
  const rots = Float64Array.from(randomRotations(3, 41).flat());
  // A hard low-pass (zero past 0.22 cycles/voxel) of the template on its own grid.
  function lowPass(s: Shape, cutoff: number): Float32Array {
    const [nz, ny, nx] = s;
    const hx = Math.floor(nx / 2) + 1;
    const f = new Float32Array(nz * ny * hx);
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < hx; x++) {
          const fz = (z <= nz / 2 ? z : z - nz) / nz;
          const fy = (y <= ny / 2 ? y : y - ny) / ny;
          const r = Math.hypot(fz, fy, x / nx);
          f[(z * ny + y) * hx + x] = r <= cutoff ? 1 - r : 0;
        }
    return f;
  }
  const cases: Array<[NativeScore, 'real' | 'fourier', boolean]> = [
    ['cc', 'real', false], ['flc-sphere', 'real', false], ['flc-sphere', 'real', true], ['cc', 'real', true],
    ['flc-sphere', 'fourier', false], ['flc', 'real', false], ['flc', 'real', true], ['mcc', 'real', false],
    ['mcc', 'real', true],
  ];
  // mcc's target mask: 0 on three z planes and the last four x columns, 1 elsewhere (a box-sized window of ones
  // exists, so the maximum overlap is the rotated mask's sum and the slab path runs).
  const targetMaskOf = (s: Shape): Float32Array => Float32Array.from({ length: voxels(s) }, (_, i) => {
    const z = Math.floor(i / (s[1] * s[2]));
    return z < 3 || i % s[2] >= s[2] - 4 ? 0 : 1;
  });
  describe.each(shapes)('%s', (_name, t, b) => {
    // Real-space rotation: the z products both ways (transforms, direct sums over the box's z rows).
    const runs = cases.flatMap(([score, mode, lp]): Array<readonly [NativeScore, 'real' | 'fourier', boolean, CpuTransforms]> => (mode === 'real'
      ? (['pruned-spectral-z', 'pruned-direct-z'] as const).map((z) => [score, mode, lp, z] as const)
      : [[score, mode, lp, 'pruned'] as const]));
    it.each(runs)('%s, %s rotation, low-pass %s, %s: maps and statistics of the 3D path to 1e-5', async (score, mode, lp, z) => {
      const job = {
        device: 'cpu' as const, target: randomVolume(t, 51), targetShape: t, template: randomVolume(b, 52),
        templateShape: b, mask: sphereMask(b, 2.5), rotations: rots, score, rotationMode: mode,
        ...(lp ? { filter: lowPass(b, 0.22), filterShape: b } : {}), threads: 2,
        ...(score === 'mcc' ? { targetMask: targetMaskOf(t) } : {}),
      };
      const slab = await runMatch({ ...job, cpuTransforms: z });
      const full = await runMatch({ ...job, cpuTransforms: 'full' });
      let scale = 0;
      for (const v of full.scores) scale = Math.max(scale, Math.abs(v));
      expect(scale).toBeGreaterThan(0);
      const d = maxAbsDiff(slab.scores, full.scores) / scale;
      expect(d).toBeLessThan(1e-5);
      // Two different computations in real space (pruned vs full R2C): identical maps would mean one ran twice. In
      // Fourier mode both run the same 1D codelets in the same order and may agree to the last bit.
      if (mode === 'real') expect(d).toBeGreaterThan(0);
      let differ = 0;
      for (let i = 0; i < slab.indices.length; i++) if (slab.indices[i] !== full.indices[i]) differ++;
      expect(differ).toBeLessThan(slab.indices.length * 1e-3); // near ties only
      expect(Math.abs(slab.stats.sum - full.stats.sum)).toBeLessThan(1e-5 * scale * slab.stats.count);
      expect(Math.abs(slab.stats.sumSq - full.stats.sumSq)).toBeLessThan(1e-5 * full.stats.sumSq);
      expect(maxAbsDiff(slab.stats.perRotationMax, full.stats.perRotationMax) / scale).toBeLessThan(1e-5);
    });
  });

  // Spectra larger than a core's L2 (4 MiB and up: from about 96³) are written past the cache.
  it.each<[NativeScore, 'real' | 'fourier', CpuTransforms]>([
    ['flc', 'real', 'pruned-spectral-z'], ['flc', 'real', 'pruned-direct-z'], ['flc-sphere', 'fourier', 'pruned'],
  ])('a 96×100×98 tile, %s, %s rotation, %s: the maps of the 3D path to 1e-5', async (score, rotationMode, cpuTransforms) => {
    const t: Shape = [96, 100, 98];
    const b: Shape = [9, 8, 7];
    const job = { ...noiseJob(t, b, 55, 3, 2), score, rotationMode, threads: 2 };
    const slab = await runMatch({ ...job, cpuTransforms });
    const full = await runMatch({ ...job, cpuTransforms: 'full' });
    let scale = 0;
    for (const v of full.scores) scale = Math.max(scale, Math.abs(v));
    expect(scale).toBeGreaterThan(0);
    expect(maxAbsDiff(slab.scores, full.scores) / scale).toBeLessThan(1e-5);
  });

  // Where the z stage's two ways cost about the same (regionZ * box.z = 5.8 tile.z log2 tile.z), the CPU decides which
  // runs (directZPays: the sums on Intel's AVX-512, the transforms on Zen 4 and without AVX-512): the default gives
  // one of the two maps, and they agree to 1e-6 of the best score.
  it('flc on a 32³ tile with a 29³ box: the default is one of the two z paths, which agree to 1e-6', async () => {
    const t: Shape = [32, 32, 32];
    const b: Shape = [29, 29, 29];
    const job = { ...noiseJob(t, b, 58, 12, 2), score: 'flc' as const, threads: 2 };
    const auto = await runMatch(job);
    const direct = await runMatch({ ...job, cpuTransforms: 'pruned-direct-z' });
    const spectral = await runMatch({ ...job, cpuTransforms: 'pruned-spectral-z' });
    let scale = 0;
    for (const v of direct.scores) scale = Math.max(scale, Math.abs(v));
    expect(scale).toBeGreaterThan(0);
    const apart = maxAbsDiff(direct.scores, spectral.scores) / scale;
    expect(apart).toBeGreaterThan(0); // two computations
    expect(apart).toBeLessThan(1e-6);
    expect(Math.min(maxAbsDiff(auto.scores, direct.scores), maxAbsDiff(auto.scores, spectral.scores))).toBe(0);
  });

  it('scores 0 everywhere when the filter removes every frequency', async () => {
    const t: Shape = [16, 16, 16];
    const b: Shape = [5, 5, 5];
    const got = await runMatch({
      device: 'cpu', target: randomVolume(t, 61), targetShape: t, template: randomVolume(b, 62), templateShape: b,
      mask: sphereMask(b, 2), rotations: rots, filter: new Float32Array(5 * 5 * 3), filterShape: b, score: 'cc',
    });
    expect(maxAbsDiff(got.scores, new Float32Array(got.scores.length))).toBe(0);
    expect(got.indices.every((i) => i === 0)).toBe(true);
  });
});

// mcc's threshold (overlap ≥ 0.3 × its maximum over the tile) needs that maximum before any voxel is scored. The
// slab path takes it to be the rotated mask's sum, which holds only where the target mask is 1 on a whole
// support-sized window and the rotated mask is ≥ 0; elsewhere the job keeps the 3D transforms, and its maps are
// bitwise the full path's (the slab path's differ in the last bits, as above).
describe('mcc where the maximum overlap is not the mask sum', () => {
  const t: Shape = [24, 20, 18];
  const b: Shape = [7, 6, 5];
  const base = { ...noiseJob(t, b, 81, 2.5, 3), score: 'mcc' as const, threads: 2 };
  const stripes = Float32Array.from({ length: voxels(t) }, (_, i) => (i % 3 === 0 ? 0 : 1)); // no window of ones
  const ones = new Float32Array(voxels(t)).fill(1);
  it.each([
    ['a target mask with no box-sized window of ones', { targetMask: stripes }],
    ['Catmull-Rom interpolation (the rotated mask overshoots below 0)', { targetMask: ones, interpolation: 'cubic' as const }],
  ])('%s: the maps of the 3D path, bitwise', async (_name, extra) => {
    const pruned = await runMatch({ ...base, ...extra });
    const full = await runMatch({ ...base, ...extra, cpuTransforms: 'full' });
    expect(Math.max(...pruned.scores)).toBeGreaterThan(0);
    expect(maxAbsDiff(pruned.scores, full.scores)).toBe(0);
    expect(maxAbsDiff(pruned.indices, full.indices)).toBe(0);
  });
  it('with linear interpolation and the ones mask it runs the slab path (the maps differ in the last bits)', async () => {
    const pruned = await runMatch({ ...base, targetMask: ones });
    const full = await runMatch({ ...base, targetMask: ones, cpuTransforms: 'full' });
    let scale = 0;
    for (const v of full.scores) scale = Math.max(scale, Math.abs(v));
    const d = maxAbsDiff(pruned.scores, full.scores) / scale;
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(1e-5);
  });
});

describe('outputRegion (the voxels the caller reads)', () => {
  const t: Shape = [40, 36, 32];
  const b: Shape = [7, 7, 7];
  const region = { start: [3, 5, 4] as Shape, shape: [30, 20, 25] as Shape };
  const inside = (i: number): boolean => {
    const z = Math.floor(i / (t[1] * t[2]));
    const y = Math.floor(i / t[2]) % t[1];
    const x = i % t[2];
    return z >= 3 && z < 33 && y >= 5 && y < 25 && x >= 4 && x < 29;
  };
  const regionMask = Uint8Array.from({ length: voxels(t) }, (_, i) => (inside(i) ? 1 : 0));
  const job = { ...noiseJob(t, b, 71, 3, 4), threads: 2 };

  it.each<NativeScore>(['flc-sphere', 'cc', 'flc', 'mcc'])(
    '%s: inside it the maps of the whole tile; statistics of the region alone; the slab path skips the rest',
    async (score) => {
      const whole = await runMatch({ ...job, score, statsMask: regionMask });
      const part = await runMatch({ ...job, score, outputRegion: region });
      let scale = 0;
      for (const v of whole.scores) scale = Math.max(scale, Math.abs(v));
      let diff = 0;
      let differ = 0;
      let outside = 0;
      for (let i = 0; i < whole.scores.length; i++) {
        if (inside(i)) {
          diff = Math.max(diff, Math.abs(whole.scores[i]! - part.scores[i]!));
          if (whole.indices[i] !== part.indices[i]) differ++;
        } else if (part.indices[i] === -1) outside++;
      }
      expect(diff / scale).toBeLessThan(1e-6);
      expect(differ).toBe(0);
      expect(part.stats.count).toBe(30 * 20 * 25 * 4);
      expect(part.stats.count).toBe(whole.stats.count);
      expect(Math.abs(part.stats.sum - whole.stats.sum)).toBeLessThan(1e-6 * scale * whole.stats.count);
      expect(Math.abs(part.stats.sumSq - whole.stats.sumSq) / whole.stats.sumSq).toBeLessThan(1e-6);
      expect(maxAbsDiff(part.stats.perRotationMax, whole.stats.perRotationMax) / scale).toBeLessThan(1e-6);
      // The slab correlator (every score) never evaluates the voxels outside.
      expect(outside).toBe(voxels(t) - 30 * 20 * 25);
    },
  );

  // The z transforms keep only the region's planes (a region starting past plane 0 shifts every plane it keeps).
  it.each<[NativeScore, 'real' | 'fourier', CpuTransforms]>([
    ['flc', 'real', 'pruned-spectral-z'], ['mcc', 'real', 'pruned-spectral-z'], ['flc-sphere', 'fourier', 'pruned'],
  ])('%s, %s rotation, %s: inside it the maps of the 3D path to 1e-5', async (score, rotationMode, cpuTransforms) => {
    const extra = score === 'mcc' ? { targetMask: new Float32Array(voxels(t)).fill(1) } : {};
    const full = await runMatch({ ...job, ...extra, score, rotationMode, cpuTransforms: 'full' });
    const part = await runMatch({ ...job, ...extra, score, rotationMode, cpuTransforms, outputRegion: region });
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < full.scores.length; i++) {
      scale = Math.max(scale, Math.abs(full.scores[i]!));
      if (inside(i)) diff = Math.max(diff, Math.abs(full.scores[i]! - part.scores[i]!));
    }
    expect(scale).toBeGreaterThan(0);
    expect(diff / scale).toBeLessThan(1e-5);
    if (rotationMode === 'real') expect(diff).toBeGreaterThan(0); // two computations, not one run twice
  });

  it('refuses a region that is not inside the tile', async () => {
    await expect(runMatch({ ...job, outputRegion: { start: [20, 0, 0], shape: [21, 1, 1] } })).rejects.toMatchObject({
      code: 'ERR_TME_INVALID_OPTION',
    });
  });
});

describe('keepSetup (a tile run in batches of rotations)', () => {
  const t: Shape = [24, 20, 22];
  const b: Shape = [7, 7, 7];
  const rots = Float64Array.from(randomRotations(6, 71).flat());
  const base = {
    device: 'cpu' as const, targetShape: t, template: randomVolume(b, 72), templateShape: b, mask: sphereMask(b, 3),
    rotations: rots, score: 'flc-sphere' as const, threads: 2,
    outputRegion: { start: [3, 3, 3] as Shape, shape: [18, 14, 16] as Shape },
  };

  it.each(['cpu', 'vulkan'] as const)('on %s: batches reuse the set-up and give the maps of one call; a changed target is not matched against the old set-up', async (kind) => {
    const device = kind === 'cpu' ? 'cpu' : 0;
    if (kind === 'vulkan' && !(await import('../index')).listDevices().some((d) => d.api === 'vulkan')) return;
    const target = randomVolume(t, 73);
    const whole = await runMatch({ ...base, device, target });
    const first = await runMatch({ ...base, device, target, rotationEnd: 3, keepSetup: true });
    expect(first.setupReused).toBe(false);
    const second = await runMatch({
      ...base, device, target, rotationStart: 3, initialScores: first.scores, initialIndices: first.indices,
    });
    expect(second.setupReused).toBe(true);
    const differing = (a: Float32Array, c: Float32Array) => a.filter((v, i) => v !== c[i]).length;
    expect(differing(second.scores, whole.scores)).toBe(0);
    expect(second.indices).toEqual(whole.indices);
    expect(second.stats.count + first.stats.count).toBe(whole.stats.count);
    // Not kept by the last call: the next one prepares again.
    expect((await runMatch({ ...base, device, target, rotationEnd: 1 })).setupReused).toBe(false);

    // The same buffer, other contents: prepared again, and the maps are those of the new target.
    const old = await runMatch({ ...base, device, target, rotationEnd: 1, keepSetup: true });
    target[100] = (target[100] as number) + 5;
    const changed = await runMatch({ ...base, device, target, rotationEnd: 1 });
    expect(changed.setupReused).toBe(false);
    const fresh = await runMatch({ ...base, device, target: Float32Array.from(target), rotationEnd: 1 });
    expect(differing(changed.scores, fresh.scores)).toBe(0);
    expect(differing(changed.scores, old.scores)).toBeGreaterThan(0);
  });

  it.each(['cpu', 'vulkan'] as const)('on %s: another template of the same box and mask (one pass of several templates) reuses the set-up and gives its own maps; another mask prepares again', async (kind) => {
    const device = kind === 'cpu' ? 'cpu' : 0;
    const { listDevices, releaseKeptSetup } = await import('../index');
    if (kind === 'vulkan' && !listDevices().some((d) => d.api === 'vulkan')) return;
    const target = randomVolume(t, 75);
    const other = randomVolume(b, 76);
    const alone = await runMatch({ ...base, device, target, template: other });
    await runMatch({ ...base, device, target, keepSetup: true });
    const shared = await runMatch({ ...base, device, target, template: other, keepSetup: true });
    expect(shared.setupReused).toBe(true);
    expect(Buffer.from(shared.scores.buffer).equals(Buffer.from(alone.scores.buffer))).toBe(true);
    expect(shared.indices).toEqual(alone.indices);
    const masked = await runMatch({ ...base, device, target, template: other, mask: sphereMask(b, 2) });
    expect(masked.setupReused).toBe(false);
    releaseKeptSetup();
  });

  it('concurrent batches on two devices (a CPU job and a lavapipe job at once, or two CPU chains) each keep their set-up and give the sequential maps', async () => {
    const { listDevices, releaseKeptSetup } = await import('../index');
    const vk = listDevices().find((d) => d.api === 'vulkan')?.index;
    const target = randomVolume(t, 74);
    // A chain of two batches of one tile on a device, the first keeping its set-up.
    const chain = async (device: 'cpu' | number) => {
      const first = await runMatch({ ...base, device, target, rotationEnd: 3, keepSetup: true });
      const second = await runMatch({
        ...base, device, target, rotationStart: 3, initialScores: first.scores, initialIndices: first.indices, keepSetup: true,
      });
      return { first, second };
    };
    const devices: Array<'cpu' | number> = vk === undefined ? ['cpu', 'cpu'] : ['cpu', vk];
    const sequential = [];
    for (const d of devices) {
      sequential.push(await chain(d));
      releaseKeptSetup();
    }
    const concurrent = await Promise.all(devices.map(chain));
    for (let k = 0; k < devices.length; k++) {
      const c = concurrent[k]!;
      const s = sequential[k]!;
      // Each device's second batch found its own set-up: neither evicted the other's.
      expect(c.second.setupReused).toBe(true);
      expect(Buffer.from(c.second.scores.buffer).equals(Buffer.from(s.second.scores.buffer))).toBe(true);
      expect(Buffer.from(c.second.indices.buffer).equals(Buffer.from(s.second.indices.buffer))).toBe(true);
      expect(Array.from(c.second.stats.perRotationSum)).toEqual(Array.from(s.second.stats.perRotationSum));
    }
    // Freeing one device's set-up leaves the other's.
    if (vk !== undefined) {
      releaseKeptSetup('cpu');
      const [cpuNext, vkNext] = await Promise.all(['cpu' as const, vk].map((device) => runMatch({ ...base, device, target, rotationEnd: 1 })));
      expect(cpuNext!.setupReused).toBe(false);
      expect(vkNext!.setupReused).toBe(true);
    }
    releaseKeptSetup();
  });
});
