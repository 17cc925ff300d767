// Axes one tile spans pad by half the support (tiling.ts): the maps equal those of today's full padding
// (core + support − 1 on every axis), for every score, on odd and even shapes, in one tile and split on one axis.
import { createVolume, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import { matchTemplate, type MatchResult } from '../src/match';
import { NativeBackend, nativeAddonBuilt } from '../src/native-backend';
import type { TileCostModel } from '../src/backend';
import { fftwPairCost } from '../src/fft-cost';
import { planTiles, type PlanTilesInput } from '../src/tiling';
import { nextSmoothSize } from '../src/fast-size';
import { blobTemplate, halfSpectrumFilter, maxAbsDiff, noiseVolume, rotationSet } from './helpers';

jest.setTimeout(300_000);

describe('planTiles with halfPad', () => {
  const input = (targetShape: Zyx, support: Zyx, more: Partial<PlanTilesInput> = {}): PlanTilesInput => ({
    targetShape, templateShape: support, budgetBytes: Infinity, halfPad: [true, true, true],
    nextFastShape: (s) => s.map(nextSmoothSize) as unknown as Zyx, bytesFor: (f) => 4 * f[0] * f[1] * f[2], ...more,
  });

  it('pads one whole-axis tile by c = floor(b/2): the peer jobs\' shapes with a 15³ support', () => {
    expect(planTiles(input([128, 128, 128], [15, 15, 15])).fastShape).toEqual([135, 135, 135]);
    expect(planTiles(input([100, 200, 200], [15, 15, 15])).fastShape).toEqual([108, 210, 210]);
    expect(planTiles(input([200, 512, 512], [15, 15, 15])).fastShape).toEqual([210, 525, 525]);
    // Without halfPad: core + support − 1, as before.
    expect(planTiles(input([128, 128, 128], [15, 15, 15], { halfPad: [false, false, false] })).fastShape).toEqual([144, 144, 144]);
    // Even supports: c = b/2 leads, b/2 − 1 trails.
    expect(planTiles(input([97, 97, 97], [16, 17, 4])).fastShape).toEqual([nextSmoothSize(105), nextSmoothSize(105), nextSmoothSize(99)]);
  });

  it('keeps core + support − 1 on split axes (memory or CTF zones) and pads half on the others', () => {
    const zoned = planTiles(input([60, 61, 62], [15, 15, 15], { zoneSplits: [2, 1, 1] }));
    expect(zoned.splits).toEqual([2, 1, 1]);
    expect(zoned.fastShape).toEqual([nextSmoothSize(30 + 14), nextSmoothSize(61 + 7), nextSmoothSize(62 + 7)]);
    const full = planTiles(input([200, 200, 200], [15, 15, 15], { halfPad: [false, false, false] }));
    const budget = 4 * 140 * 216 * 216;
    const split = planTiles(input([200, 200, 200], [15, 15, 15], { budgetBytes: budget }));
    expect(split.reason).toBe('memory');
    for (let a = 0; a < 3; a++) {
      const core = Math.ceil(200 / split.splits[a]!);
      expect(split.fastShape[a]).toBe(nextSmoothSize(split.splits[a] === 1 ? core + 7 : core + 14));
    }
    expect(full.fastShape).toEqual([216, 216, 216]);
  });

  it('reads at least the support on a thin axis (the support must not wrap onto itself)', () => {
    const plan = planTiles(input([2, 40, 40], [15, 15, 15]));
    expect(plan.fastShape[0]).toBe(15);
    expect(plan.tiles[0]!.readStart).toEqual([-7, -7, -7]);
  });

  it('a user tile sets the core; an axis it spans whole then reads half the padding', () => {
    const plan = planTiles(input([40, 50, 60], [9, 9, 9], { tileShape: [28, 58, 68] }));
    expect(plan.splits).toEqual([2, 1, 1]);
    expect(plan.fastShape).toEqual([nextSmoothSize(20 + 8), nextSmoothSize(50 + 4), nextSmoothSize(60 + 4)]);
  });
});

describe('planTiles with a cost model', () => {
  // Powers of two cheap, a factor 7 dear, the rest in between (per element, any unit); 64 unknown.
  const perElement = (n: number): number => (n % 7 === 0 ? 3 : Number.isInteger(Math.log2(n)) ? 1 : 2);
  const costModel: TileCostModel = {
    cost: (s) => (s.includes(64) ? undefined : s[0] * s[1] * s[2] * (perElement(s[0]) + perElement(s[1]) + perElement(s[2]))),
  };
  const input = (targetShape: Zyx, more: Partial<PlanTilesInput> = {}): PlanTilesInput => ({
    targetShape, templateShape: [9, 9, 9], budgetBytes: Infinity, halfPad: [true, true, true], costModel,
    nextFastShape: (s) => s.map(nextSmoothSize) as unknown as Zyx, bytesFor: (f) => 4 * f[0] * f[1] * f[2], ...more,
  });

  it('pads by half the support where that shape is predicted cheaper, and says by how much', () => {
    // 24 + 4 = 28 (a factor 7) against 24 + 8 = 32 (a power of two): support − 1, though more voxels.
    const dear = planTiles(input([24, 24, 24]));
    expect(dear.fastShape).toEqual([32, 32, 32]);
    expect(dear.halfPadded).toEqual([false, false, false]);
    expect(dear.model).toEqual({ alternative: [28, 28, 28], relativeCost: (32 ** 3 * 3) / (28 ** 3 * 9) });
    // 28 + 4 = 32 against 28 + 8 = 36: half the support.
    const cheap = planTiles(input([28, 28, 28]));
    expect(cheap.fastShape).toEqual([32, 32, 32]);
    expect(cheap.halfPadded).toEqual([true, true, true]);
    expect(cheap.model?.alternative).toEqual([36, 36, 36]);
    expect(cheap.model?.relativeCost).toBeLessThan(1);
    // The core starts c voxels in either way.
    expect(dear.tiles[0]!.readStart).toEqual([-4, -4, -4]);
  });

  it('keeps half the support where the cheaper shape does not fit the budget, or the model does not know a length', () => {
    expect(planTiles(input([24, 24, 24], { budgetBytes: 4 * 30 * 30 * 30 })).fastShape).toEqual([28, 28, 28]);
    const unknown = planTiles(input([56, 56, 56]));
    expect(unknown.fastShape).toEqual([60, 60, 60]);
    expect(unknown.halfPadded).toEqual([true, true, true]);
    expect(unknown.model).toBeUndefined();
  });

  it('FFTW\'s measured table ranks the fast shapes as tme match\'s CPU path runs them (per rotation, flc-sphere)', () => {
    // Measured on this machine (tme's CPU path, one thread, 15³ support): 144³ 11.4 ms, 144×144×140 13.1 ms,
    // 140×135×135 15.1 ms; 216×216×128 21.5 ms, 216×216×120 24.2 ms, 210×210×108 31.2 ms (x×y×z).
    const order = (shapes: Zyx[], core: Zyx): Zyx[] => [...shapes].sort((a, b) => fftwPairCost(a, core)! - fftwPairCost(b, core)!);
    expect(order([[135, 135, 140], [144, 144, 140], [144, 144, 144]], [128, 128, 128])).toEqual([[144, 144, 144], [144, 144, 140], [135, 135, 140]]);
    expect(order([[108, 210, 210], [120, 216, 216], [128, 216, 216]], [100, 200, 200])).toEqual([[128, 216, 216], [120, 216, 216], [108, 210, 210]]);
  });
});

const built = nativeAddonBuilt();
const describeNative = built ? describe : describe.skip;
const vulkan: number[] = built ? native.listDevices().filter((d) => d.api === 'vulkan').map((d) => d.index as number) : [];

describeNative('maps with half padding equal maps with full padding', () => {
  const template = blobTemplate(16);
  const rotations = rotationSet([['z', 0], ['x', 33], ['y', 71], ['z', -140], ['x', -95]]);
  const lowPassWedge = (shape: Zyx): Float32Array => halfSpectrumFilter(shape, (fz, fy, fx) =>
    ((fz === 0 && fy === 0 && fx === 0) || Math.abs(fz) <= 1.7 * fx ? Math.exp(-(fz * fz + fy * fy + fx * fx) / 0.08) : 0));

  type Job = Parameters<typeof matchTemplate>[0];
  // A target mask of ones with zeros scattered over the voxels farther than `margin` from every face.
  function holes(shape: Zyx, margin: number, facesToo: 'none' | 'z' = 'none') {
    const [nz, ny, nx] = shape;
    const m = new Float32Array(nz * ny * nx).fill(1);
    const inside = (i: number, n: number): boolean => i >= margin && i < n - margin;
    for (let z = 0, i = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++, i++) {
      const deep = inside(z, nz) && inside(y, ny) && inside(x, nx);
      if ((deep || (facesToo === 'z' && z === 0 && inside(y, ny) && inside(x, nx))) && i % 5 === 0) m[i] = 0;
    }
    return createVolume(m, shape, 2);
  }
  // The next fast shape of core + c (no cost model, which may choose longer axes): the least padding.
  const plain = Object.assign(Object.create(new NativeBackend()) as NativeBackend, { costModel: () => undefined });
  async function both(job: Job): Promise<{ half: MatchResult; full: MatchResult }> {
    const half = await matchTemplate(job, { backend: plain });
    const full = await matchTemplate(job, { fullPadding: true });
    return { half, full };
  }
  function expectSame({ half, full }: { half: MatchResult; full: MatchResult }): void {
    const best = Math.max(...full.scores.data.map(Math.abs));
    expect(best).toBeGreaterThan(0.1);
    expect(maxAbsDiff(half.scores.data, full.scores.data)).toBeLessThan(1e-6 * Math.max(1, best));
    const h = half.indices, f = full.indices;
    let differ = 0;
    for (let i = 0; i < h.length; i++) if (h[i] !== f[i]) differ++;
    // Ties only: two rotations within rounding of each other.
    expect(differ / h.length).toBeLessThan(0.002);
  }

  const cases: Array<[string, Zyx, Partial<Job>]> = [
    ['cc, odd shape', [17, 23, 21], { score: 'cc' }],
    ['flc-sphere, even shape', [18, 24, 22], { score: 'flc-sphere', maskRadius: 4 }],
    ['flc-sphere, filtered template (wedge + low-pass)', [17, 24, 21], { score: 'flc-sphere', maskRadius: 4, filter: lowPassWedge }],
    ['flc, odd shape', [19, 21, 23], { score: 'flc', maskRadius: 4 }],
    ['mcc, a target mask of ones', [18, 23, 22], { score: 'mcc', maskRadius: 4, targetMask: createVolume(new Float32Array(18 * 23 * 22).fill(1), [18, 23, 22], 2) }],
    ['mcc, a target mask with holes inside (one value at the faces)', [17, 24, 23], { score: 'mcc', maskRadius: 4, targetMask: holes([17, 24, 23], 6) }],
    ['flc-sphere, zero padding', [17, 22, 23], { score: 'flc-sphere', maskRadius: 4, padTarget: 'zero' }],
  ];

  it.each(cases)('%s: one tile', async (_name, shape, extra) => {
    const r = await both({ target: noiseVolume(shape, 3), template, rotations, device: 'cpu', threads: 2, ...extra } as Job);
    // The half plan actually reads less on every axis.
    for (let a = 0; a < 3; a++) expect(r.half.tilePlan.fastShape[a]).toBeLessThanOrEqual(r.full.tilePlan.fastShape[a]!);
    expect(r.half.tilePlan.fastShape.reduce((x, y) => x * y)).toBeLessThan(r.full.tilePlan.fastShape.reduce((x, y) => x * y));
    expectSame(r);
  });

  it.each(cases.slice(1, 4))('%s: split on z only', async (_name, shape, extra) => {
    // A core of 17 − support + 1 (7 or 9) in z and every other axis whole.
    const r = await both({ target: noiseVolume(shape, 4), template, rotations, device: 'cpu', threads: 2, tile: [17, 100, 100], ...extra } as Job);
    expect(r.half.tilePlan.splits[0]).toBeGreaterThan(1);
    expect(r.half.tilePlan.splits.slice(1)).toEqual([1, 1]);
    expect(r.half.tilePlan.fastShape[1]).toBeLessThan(r.full.tilePlan.fastShape[1]!);
    expectSame(r);
  });

  it.each(vulkan)('Vulkan device %s: flc-sphere and mcc equal with half padding', async (device) => {
    for (const extra of cases.filter(([name]) => name.startsWith('flc-sphere, even') || name.startsWith('mcc, a target mask with holes'))) {
      const r = await both({ target: noiseVolume(extra[1], 8), template, rotations, device, ...extra[2] } as Job);
      expect(r.half.device.index).toBe(device);
      expectSame(r);
    }
  });

  it.each([
    ['mirror padding', { score: 'flc-sphere', maskRadius: 4, padTarget: 'mirror' }],
    ['Fourier-space rotation', { score: 'flc-sphere', maskRadius: 4, rotationMode: 'fourier' }],
  ] as Array<[string, Partial<Job>]>)('%s keeps the full padding', async (_name, extra) => {
    const r = await both({ target: noiseVolume([17, 22, 20], 5), template, rotations, device: 'cpu', threads: 2, ...extra } as Job);
    expect(r.half.tilePlan.fastShape).toEqual(r.full.tilePlan.fastShape);
    expect(maxAbsDiff(r.half.scores.data, r.full.scores.data)).toBe(0);
  });

  it('mcc: an axis where the target mask varies within half the support of a face keeps the full padding', async () => {
    const shape: Zyx = [18, 21, 20];
    const r = await both({
      target: noiseVolume(shape, 6), template, rotations, device: 'cpu', threads: 2, score: 'mcc', maskRadius: 4,
      targetMask: holes(shape, 6, 'z'),
    } as Job);
    expect(r.half.tilePlan.fastShape[0]).toBe(r.full.tilePlan.fastShape[0]);
    expect(r.half.tilePlan.fastShape[1]).toBeLessThan(r.full.tilePlan.fastShape[1]!);
    expectSame(r);
  });
});
