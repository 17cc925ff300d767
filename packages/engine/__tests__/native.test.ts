// The native addon against the reference backend: same job, same contract. Skips (with the reason in the test
// name) where native/build/Release/tme.node is not built.
import type { Zyx } from '@tme/formats';
import type { BackendMatchJob, BackendScore } from '../src/backend';
import { matchTemplate } from '../src/match';
import { NativeBackend, nativeAddonBuilt } from '../src/native-backend';
import { ReferenceBackend } from '../src/reference-backend';
import { sphereMask } from '../src/masks';
import { blobTemplate, gaussianNoise, maxAbsDiff, noiseVolume, rotationSet } from './helpers';

// Small volumes, but the machine is shared: generous time per test.
jest.setTimeout(60_000);

const built = nativeAddonBuilt();
const describeNative = built ? describe : describe.skip;
if (!built) {
  test.skip('native tests skipped: native/build/Release/tme.node is not built (pnpm --filter @tme/native build)', () => undefined);
}

const tile: Zyx = [12, 10, 14];
const box: Zyx = [5, 5, 5];
const f = gaussianNoise(tile[0] * tile[1] * tile[2], 21);
const template = blobTemplate(5);
const mask = sphereMask(box, 2, [1, 1, 1]);
const rotations = rotationSet([['z', 0], ['z', 37], ['x', 90], ['y', 200], ['x', -61]]);
const targetMask = new Float32Array(f.length).fill(1);
for (let i = 0; i < f.length; i += 5) targetMask[i] = 0;

function job(score: BackendScore, extra: Partial<BackendMatchJob> = {}): BackendMatchJob {
  return {
    device: 'cpu', threads: 1, target: f, targetShape: tile, template: template.data, templateShape: box, mask,
    targetMask: score === 'mcc' ? targetMask : undefined, rotations, rotationStart: 0, rotationEnd: 5, score,
    interpolation: 'linear', rotationMode: 'real', ...extra,
  };
}

/** Indices may differ only where two rotations score within rounding of each other. */
function indexAgreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

describeNative('native CPU path against the direct reference', () => {
  const nativeBackend = new NativeBackend();
  const reference = new ReferenceBackend();

  it.each([
    ['cc', 'linear'], ['flc-sphere', 'linear'], ['flc', 'linear'], ['mcc', 'linear'], ['flc-sphere', 'cubic'], ['flc', 'cubic'],
  ] as const)('%s (%s) to 1e-4', async (score, interpolation) => {
    const n = await nativeBackend.runMatch(job(score, { interpolation }));
    const r = await reference.runMatch(job(score, { interpolation }));
    const scale = score === 'cc' ? Math.max(...r.scores.map(Math.abs)) : 1;
    expect(maxAbsDiff(n.scores, r.scores) / scale).toBeLessThan(1e-4);
    expect(indexAgreement(n.indices, r.indices)).toBeGreaterThan(0.995);
    expect(n.stats.count).toBe(r.stats.count);
    expect(n.stats.sum / n.stats.count).toBeCloseTo(r.stats.sum / r.stats.count, 4);
    for (let k = 0; k < 5; k++) expect(Math.abs(n.stats.perRotationMax[k]! - r.stats.perRotationMax[k]!) / scale).toBeLessThan(1e-4);
  });

  it.each(['cc', 'flc-sphere', 'flc', 'mcc'] as const)('%s: a Fourier filter acts on the rotated template on its own grid, as the reference applies it', async (score) => {
    const g: Zyx = [6, 7, 8];
    const hx = Math.floor(g[2] / 2) + 1;
    const filter = new Float32Array(g[0] * g[1] * hx);
    for (let kz = 0; kz < g[0]; kz++) for (let ky = 0; ky < g[1]; ky++) for (let kx = 0; kx < hx; kx++) {
      const fz = (kz <= g[0] / 2 ? kz : kz - g[0]) / g[0];
      const fy = (ky <= g[1] / 2 ? ky : ky - g[1]) / g[1];
      // A missing wedge (|kz| > |kx| removed, DC kept) times a Gaussian low-pass.
      const wedge = kz + ky + kx === 0 || Math.abs(fz) <= kx / g[2] ? 1 : 0;
      filter[(kz * g[1] + ky) * hx + kx] = wedge * Math.exp(-(fz * fz + fy * fy + (kx / g[2]) ** 2) / 0.1);
    }
    const n = await nativeBackend.runMatch(job(score, { filter, filterShape: g, rotationEnd: 3 }));
    const r = await reference.runMatch(job(score, { filter, filterShape: g, rotationEnd: 3 }));
    const plain = await reference.runMatch(job(score, { rotationEnd: 3 }));
    const scale = score === 'cc' ? Math.max(...r.scores.map(Math.abs)) : 1;
    expect(maxAbsDiff(n.scores, r.scores) / scale).toBeLessThan(1e-4);
    expect(maxAbsDiff(plain.scores, r.scores) / scale).toBeGreaterThan(1e-2);
  });

  it('continues from initial maps exactly like one call', async () => {
    const whole = await nativeBackend.runMatch(job('flc'));
    const first = await nativeBackend.runMatch(job('flc', { rotationEnd: 2 }));
    const rest = await nativeBackend.runMatch(job('flc', { rotationStart: 2, initialScores: first.scores, initialIndices: first.indices }));
    expect(Buffer.from(rest.scores.buffer).equals(Buffer.from(whole.scores.buffer))).toBe(true);
    expect(Buffer.from(rest.indices.buffer).equals(Buffer.from(whole.indices.buffer))).toBe(true);
  });

  it('matchTemplate on native: tiled equals untiled to FFT rounding, and the reference to 1e-4', async () => {
    const target = noiseVolume([20, 18, 22], 8);
    const input = { target, template, rotations, maskRadius: 4, device: 'cpu' as const, threads: 1 };
    const untiled = await matchTemplate(input, { backend: nativeBackend });
    const tiled = await matchTemplate({ ...input, tile: [12, 11, 14] }, { backend: nativeBackend });
    const ref = await matchTemplate(input, { backend: reference });
    expect(tiled.tilePlan.tiles.length).toBeGreaterThan(1);
    expect(maxAbsDiff(tiled.scores.data, untiled.scores.data)).toBeLessThan(1e-5);
    expect(indexAgreement(tiled.indices, untiled.indices)).toBeGreaterThan(0.999);
    expect(maxAbsDiff(untiled.scores.data, ref.scores.data)).toBeLessThan(1e-4);
    // Statistics count exactly the target's voxels × rotations, on every path and tiling.
    expect(untiled.stats.scope).toBe('core');
    for (const s of [untiled.stats, tiled.stats]) {
      expect(s.count).toBe(20 * 18 * 22 * rotations.length / 9);
      expect(Math.abs(s.mean - ref.stats.mean)).toBeLessThan(1e-5);
      expect(Math.abs(s.std - ref.stats.std) / ref.stats.std).toBeLessThan(1e-4);
    }
    for (let r = 0; r < rotations.length / 9; r++) {
      expect(Math.abs((untiled.stats.perRotationMax[r] as number) - (ref.stats.perRotationMax[r] as number))).toBeLessThan(1e-4);
    }
  });
});

describeNative('native through matchTemplate: determinism and ground truth', () => {
  const nativeBackend = new NativeBackend();
  const target = noiseVolume([20, 18, 22], 9);
  const input = { target, template, rotations, maskRadius: 4, device: 'cpu' as const, score: 'flc' };

  it('batch sizes, thread counts and cancel + resume give bitwise the same maps', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const one = await matchTemplate({ ...input, threads: 1 }, { backend: nativeBackend, batchRotations: 1 });
    const all = await matchTemplate({ ...input, threads: 1 }, { backend: nativeBackend, batchRotations: 5 });
    const two = await matchTemplate({ ...input, threads: 2 }, { backend: nativeBackend, batchRotations: 2 });
    for (const other of [all, two]) {
      expect(Buffer.from(other.scores.data.buffer).equals(Buffer.from(one.scores.data.buffer))).toBe(true);
      expect(Buffer.from(other.indices.buffer).equals(Buffer.from(one.indices.buffer))).toBe(true);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-native-resume-'));
    try {
      const controller = new AbortController();
      await expect(matchTemplate({ ...input, threads: 1, tile: [12, 11, 14] }, {
        backend: nativeBackend, batchRotations: 2, signal: controller.signal, checkpoint: { dir, intervalSeconds: 0 },
        onProgress: (p) => { if (p.done >= 12) controller.abort(); },
      })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
      const resumed = await matchTemplate({ ...input, threads: 1, tile: [12, 11, 14] }, {
        backend: nativeBackend, batchRotations: 3, checkpoint: { dir, resume: true },
      });
      const whole = await matchTemplate({ ...input, threads: 1, tile: [12, 11, 14] }, { backend: nativeBackend });
      expect(resumed.resumed).toBe(true);
      expect(Buffer.from(resumed.scores.data.buffer).equals(Buffer.from(whole.scores.data.buffer))).toBe(true);
      expect(Buffer.from(resumed.indices.buffer).equals(Buffer.from(whole.indices.buffer))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds templates placed at arbitrary rotations: position exact, angular error ≤ the step', async () => {
    const { sampleRotations, angleBetween, quaternionToMatrix } = await import('@tme/rotations');
    const { rotateBox } = await import('../src/rotate');
    const { createVolume } = await import('@tme/formats');
    const step = 15;
    const set = sampleRotations({ angularStep: step, measure: false });
    const shape: Zyx = [32, 30, 28];
    const data = gaussianNoise(shape[0] * shape[1] * shape[2], 77, 0.1);
    const t = blobTemplate(9);
    const placed: Array<{ at: Zyx; q: [number, number, number, number] }> = [
      { at: [8, 9, 8], q: [0.9, 0.3, -0.2, 0.25] },
      { at: [23, 20, 19], q: [0.2, -0.7, 0.5, 0.45] },
      { at: [9, 22, 20], q: [-0.4, 0.1, 0.8, -0.3] },
    ];
    const matrices = placed.map(({ q }) => {
      const n = Math.hypot(...q);
      return quaternionToMatrix([q[0] / n, q[1] / n, q[2] / n, q[3] / n]);
    });
    placed.forEach(({ at }, k) => {
      const tR = rotateBox(t.data, [9, 9, 9], matrices[k]!, 'cubic');
      for (let z = 0; z < 9; z++) for (let y = 0; y < 9; y++) for (let x = 0; x < 9; x++) {
        const i = ((at[0] + z - 4) * shape[1] + at[1] + y - 4) * shape[2] + at[2] + x - 4;
        data[i] = data[i]! + tR[(z * 9 + y) * 9 + x]!;
      }
    });
    const result = await matchTemplate({
      target: createVolume(data, shape, 2), template: t, rotations: set.matrices, maskRadius: 8, device: 'cpu', threads: 1,
    }, { backend: nativeBackend });
    const nearest = matrices.map((m) => {
      let a = Infinity;
      for (let r = 0; r < set.count; r++) a = Math.min(a, angleBetween(set.matrices.slice(9 * r, 9 * r + 9), m));
      return a;
    });
    placed.forEach(({ at }, k) => {
      // The best voxel within 3 voxels of the placement is the placement itself.
      let best = -1;
      let bestScore = -Infinity;
      for (let z = at[0] - 3; z <= at[0] + 3; z++) for (let y = at[1] - 3; y <= at[1] + 3; y++) for (let x = at[2] - 3; x <= at[2] + 3; x++) {
        const i = (z * shape[1] + y) * shape[2] + x;
        if (result.scores.data[i]! > bestScore) { bestScore = result.scores.data[i]!; best = i; }
      }
      expect(best).toBe((at[0] * shape[1] + at[1]) * shape[2] + at[2]);
      const r = result.indices[best]!;
      const err = angleBetween(set.matrices.slice(9 * r, 9 * r + 9), matrices[k]!);
      // The covering guarantees a member within the step; the search picks one at least that close.
      expect(nearest[k]!).toBeLessThanOrEqual(step);
      expect(err).toBeLessThanOrEqual(step);
    });
  });

  it('Fourier-space rotation agrees with real-space rotation to its interpolation error (9³ template)', async () => {
    const size: Zyx = [9, 9, 9];
    const big = blobTemplate(9).data;
    const bigMask = sphereMask(size, 4, [1, 1, 1]);
    const grid: Zyx = [24, 24, 24];
    const target = gaussianNoise(24 ** 3, 31);
    const run = (rotationMode: 'real' | 'fourier', backend: NativeBackend | ReferenceBackend = nativeBackend) => backend.runMatch({
      device: 'cpu', threads: 1, target, targetShape: grid, template: big, templateShape: size, mask: bigMask, rotations,
      rotationStart: 0, rotationEnd: 5, score: 'flc-sphere', interpolation: 'linear', rotationMode,
    });
    const [real, fourier] = [await run('real'), await run('fourier')];
    const ref = await run('real', new ReferenceBackend());
    expect(maxAbsDiff(real.scores, ref.scores)).toBeLessThan(1e-4);
    // Measured on this template: ≤ 0.06 per rotation (trilinear gather from a 2× oversampled spectrum).
    expect(maxAbsDiff(fourier.scores, ref.scores)).toBeLessThan(0.1);
    expect(indexAgreement(fourier.indices, ref.indices)).toBeGreaterThan(0.5);
  });
});

describeNative('native memory estimates drive the tile plan', () => {
  it('a budget below one whole-target tile splits the target, and the maps still match', async () => {
    const { estimateJob } = await import('../src/estimate');
    const nativeBackend = new NativeBackend();
    const target = noiseVolume([30, 26, 28], 12);
    const input = { target, template, rotations, maskRadius: 4, device: 'cpu' as const, threads: 1 };
    const whole = await estimateJob(input, { backend: nativeBackend });
    const cpu = whole.devices.find((d) => d.device.index === 'cpu');
    expect(cpu?.fits).toBe(true);
    expect(cpu?.tilePlan?.tiles).toHaveLength(1);
    const memory = cpu!.device.memoryBytes;
    const memoryFraction = (0.7 * cpu!.bytesPerTile!) / memory;
    const split = await estimateJob({ ...input, memoryFraction }, { backend: nativeBackend });
    const plan = split.devices.find((d) => d.device.index === 'cpu')?.tilePlan;
    expect(plan?.tiles.length).toBeGreaterThan(1);
    expect(plan!.bytesPerTile).toBeLessThanOrEqual(0.7 * cpu!.bytesPerTile! + 1);
    const [a, b] = [await matchTemplate(input, { backend: nativeBackend }), await matchTemplate({ ...input, memoryFraction }, { backend: nativeBackend })];
    expect(b.tilePlan.reason).toBe('memory');
    expect(maxAbsDiff(a.scores.data, b.scores.data)).toBeLessThan(1e-5);
  });
});
