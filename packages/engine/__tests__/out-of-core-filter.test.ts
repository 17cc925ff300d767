import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MrcRegionReader, createVolume, readMrc, writeMrc, type Volume, type Zyx } from '@tme/formats';
import { buildTargetFilter, whiteningProfile } from '@tme/template';
import { matchTemplate, matchTemplateOutOfCore, type MatchOptions } from '../src/match';
import { PROCESS_BASE_BYTES, ARRAY_OVERHEAD } from '../src/memory-model';
import { prepareJob, type PadMode } from '../src';
import { checkVolumeFilter, filterVolumeOutOfCore, planVolumeFilter } from '../src/volume-filter';
import { blobTemplate, gaussianNoise, plantedTarget, rotationSet, runOutOfCore } from './helpers';

const CENTRES = [[10, 12, 14], [25, 30, 20], [30, 10, 36]] as const;

/** Noise with three copies of the template, and (optionally) a constant slab without data along the x face. */
function target(shape: Zyx, withNoData: boolean): Float32Array {
  return plantedTarget(shape, CENTRES, withNoData);
}

const ROTATIONS = rotationSet([['z', 0], ['x', 30], ['y', 60], ['z', 90]]);

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}

/** The job's target filter: the binary wedge of ±60°, a band-pass and the whitening of the target. */
function targetFilterFor(volume: Volume): ReturnType<typeof buildTargetFilter> {
  return buildTargetFilter({
    wedge: { tiltRange: [-60, 60] }, bandPass: { lowpassAngstrom: 8, highpassAngstrom: 60 }, whitening: whiteningProfile(volume), applyWedgeToTarget: true,
  });
}

describe.each([
  ['even', [40, 44, 48], 'mean', true],
  ['even', [40, 44, 48], 'mirror', false],
  ['odd', [39, 45, 47], 'zero', false],
  ['odd', [39, 45, 47], 'mirror', true],
] as const)('the target filter out of core (%s shape %j, padding %s, no-data slab %s)', (_parity, shapeIn, padTarget, withNoData) => {
  const shape: Zyx = [shapeIn[0], shapeIn[1], shapeIn[2]];

  test('the filtered target equals filterTarget\'s to 1e-5 of its largest value, in slabs and blocks of a small budget; so do its moments', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-oocf-'));
    const volume = createVolume(target(shape, withNoData), shape, 2);
    const file = path.join(dir, 'target.mrc');
    writeMrc(file, volume);
    const filter = targetFilterFor(volume);
    const template = blobTemplate(12);
    const job = { template, rotations: ROTATIONS, padTarget: padTarget as PadMode, targetFilter: filter, device: 'cpu' as const };
    const whole = prepareJob({ ...job, target: volume });
    const reader = new MrcRegionReader(file);
    const p = prepareJob({ ...job, target: reader });
    const d = p.diskFilter;
    if (!d) throw new Error('no disk filter');
    expect(d.anyNoData).toBe(withNoData);
    // A budget of a few planes and rows: several slabs and blocks in every pass.
    const budgetBytes = 400_000;
    const plan = planVolumeFilter(shape, template.shape, budgetBytes);
    expect(plan.slabPlanes).toBeLessThan(plan.grid[0] / 3);
    expect(plan.blockRows).toBeLessThan(plan.grid[1] / 2);
    const passes: number[] = [];
    const filtered = await filterVolumeOutOfCore({
      source: reader, box: template.shape, filter, padMode: padTarget, noDataFill: d.noDataFill, anyNoData: d.anyNoData, padFill: d.padFill, dir,
      budgetBytes, threads: 1, onProgress: (q) => passes.push(q.pass),
    });
    expect(new Set(passes)).toEqual(new Set([1, 2, 3]));
    // The temporary files are named as atomic writes' are (the stale-temporary cleanup's pattern).
    expect(fs.readdirSync(dir).filter((n) => n !== 'target.mrc').every((n) => /^\..+\.\d+\.\d+\.tmp$/.test(n))).toBe(true);
    const out = filtered.source.readRegion([0, 0, 0], shape);
    const scale = maxAbs(whole.target);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs((out[i] as number) - (whole.target[i] as number)));
    if (process.env['TME_REPORT']) process.stdout.write(`filtered: max |Δ| ${(worst / scale).toExponential(2)} of max\n`);
    expect(worst).toBeLessThanOrEqual(1e-5 * scale);
    expect(Math.abs(filtered.mean - whole.targetMean)).toBeLessThanOrEqual(1e-5 * scale);
    expect(Math.abs(filtered.variance / whole.targetVariance - 1)).toBeLessThanOrEqual(1e-5);
    filtered.release();
    reader.close();
    expect(fs.readdirSync(dir).sort()).toEqual(['target.mrc']);
    fs.rmSync(dir, { recursive: true });
  }, 120_000);

  test('maps matched out of core under a tiny memory limit (3×2×2 tiles) equal the in-memory run\'s to 1e-5 of the best score; rotations equal', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-oocf-'));
    const volume = createVolume(target(shape, withNoData), shape, 2);
    const file = path.join(dir, 'target.mrc');
    writeMrc(file, volume);
    const common = {
      template: blobTemplate(12), rotations: ROTATIONS, padTarget: padTarget as PadMode, targetFilter: targetFilterFor(volume),
      device: 'cpu' as const, tile: [26, 33, 35] as Zyx, threads: 1,
    };
    const inMemory = await matchTemplate({ ...common, target: volume });
    expect(inMemory.tilePlan.splits).toEqual([3, 2, 2]);
    const reader = new MrcRegionReader(file);
    const outputs = { scores: path.join(dir, 'scores.mrc'), rotations: path.join(dir, 'rotations.mrc') };
    const steps = [0, 0, 0, 0];
    // 3 MiB beyond tme itself, about what the tiles need.
    const memoryLimitBytes = PROCESS_BASE_BYTES + ARRAY_OVERHEAD * 3 * 2 ** 20;
    const ooc = await matchTemplateOutOfCore({ ...common, target: reader, memoryLimitBytes }, outputs, {
      onFilterProgress: (q) => { steps[q.pass] = (steps[q.pass] as number) + 1; },
    });
    reader.close();
    // Pass 1 in more than one slab (its first report comes before any), passes 2 and 3 run.
    expect(steps[1]).toBeGreaterThan(2);
    expect(Math.min(steps[2] as number, steps[3] as number)).toBeGreaterThan(0);
    expect(ooc.tilePlan.tiles).toEqual(inMemory.tilePlan.tiles);
    const scores = readMrc(outputs.scores).data;
    const rotations = readMrc(outputs.rotations).data;
    const best = maxAbs(inMemory.scores.data);
    let worst = 0;
    let differ = 0;
    for (let i = 0; i < scores.length; i++) {
      worst = Math.max(worst, Math.abs((scores[i] as number) - (inMemory.scores.data[i] as number)));
      if (rotations[i] !== inMemory.indices[i]) differ++;
    }
    expect(worst).toBeLessThanOrEqual(1e-5 * best);
    expect(differ).toBe(0);
    if (withNoData) expect(Array.from(rotations).filter((r) => r === -1).length).toBe(Array.from(inMemory.indices).filter((r) => r === -1).length);
    if (process.env['TME_REPORT']) process.stdout.write(`maps: max |Δ| ${worst.toExponential(2)} of best ${best.toFixed(4)}\n`);
    // Only the maps and the tomogram are left: the temporary files are gone.
    expect(fs.readdirSync(dir).sort()).toEqual(['rotations.mrc', 'scores.mrc', 'target.mrc']);
    fs.rmSync(dir, { recursive: true });
  }, 120_000);
});

test('a cancel during the filter\'s passes deletes its temporary files; a disk too small or a budget below one plane is refused in one line', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-oocf-'));
  const shape: Zyx = [40, 44, 48];
  const volume = createVolume(target(shape, false), shape, 2);
  const file = path.join(dir, 'target.mrc');
  writeMrc(file, volume);
  const reader = new MrcRegionReader(file);
  const outputs = { scores: path.join(dir, 'scores.mrc'), rotations: path.join(dir, 'rotations.mrc') };
  const controller = new AbortController();
  let seen = 0;
  const job = { target: reader, template: blobTemplate(12), rotations: ROTATIONS, targetFilter: targetFilterFor(volume), device: 'cpu' as const, threads: 1 };
  await expect(matchTemplateOutOfCore(job, outputs, {
    signal: controller.signal,
    onFilterProgress: (q) => {
      // Mid-way: the spectrum file is there, the filtered one too.
      if (q.pass === 2) { seen = fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')).length; controller.abort(); }
    },
  })).rejects.toThrow(/^matching was cancelled$/);
  expect(seen).toBe(2);
  expect(fs.readdirSync(dir)).toEqual(['target.mrc']);
  // Below one plane of the grid (and one row of every plane): refused before the tomogram is read.
  await expect(matchTemplateOutOfCore({ ...job, memoryLimitBytes: PROCESS_BASE_BYTES + 20_000 }, outputs))
    .rejects.toThrow(/^the target's filter out of core needs 0\.\d MiB \(one 70×72 plane of its FFT grid, or one row of every plane\) but 0\.0 MiB is available; allow it more \(--memory\)$/);
  reader.close();
  // 20000³ voxels: 30 TiB of temporary files.
  expect(() => checkVolumeFilter([20_000, 20_000, 20_000], [10, 10, 10], Infinity, dir))
    .toThrow(/^the target's filter out of core needs [\d.]+ GiB of temporary disk space here \(the filter's spectrum and the filtered tomogram\) but [\d.]+ (GiB|MiB) is free; free some, or bin or crop the tomogram$/);
  expect(fs.readdirSync(dir)).toEqual(['target.mrc']);
  fs.rmSync(dir, { recursive: true });
}, 120_000);

test('with the target filter, cancelled after two tiles and resumed: the filter runs again, the maps are the uninterrupted run\'s bit for bit', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-oocf-'));
  const shape: Zyx = [40, 44, 48];
  const volume = createVolume(target(shape, true), shape, 2);
  const file = path.join(dir, 'target.mrc');
  writeMrc(file, volume);
  const common = {
    template: blobTemplate(12), rotations: ROTATIONS, targetFilter: targetFilterFor(volume), device: 'cpu' as const, tile: [26, 33, 35] as Zyx,
    threads: 1, batchRotations: 1,
  };
  const run = (out: string, options: MatchOptions = {}): ReturnType<typeof runOutOfCore> => runOutOfCore(file, common, dir, out, options);
  const whole = await run('whole');
  const job = path.join(dir, 'job');
  const stop = new AbortController();
  await expect(run('job', {
    checkpoint: { dir: job }, signal: stop.signal,
    onProgress: (p) => { if (p.tile === 2 && p.rotationsDone >= 2) stop.abort(); },
  })).rejects.toThrow(/cancelled/);
  // The filter's temporary files went with the run; the checkpoint and partial maps stay.
  expect(fs.readdirSync(job).sort()).toEqual(['checkpoint.bin', 'rotations.mrc.part', 'scores.mrc.part']);
  let filtering = 0;
  const tiles: number[] = [];
  const resumed = await run('job', {
    checkpoint: { dir: job, resume: true }, onFilterProgress: () => { filtering++; }, onProgress: (p) => { if (!tiles.includes(p.tile)) tiles.push(p.tile); },
  });
  expect(resumed.resumed).toBe(true);
  expect(filtering).toBeGreaterThan(0);
  expect(tiles[0]).toBe(2);
  for (const map of ['scores.mrc', 'rotations.mrc']) expect(fs.readFileSync(path.join(job, map)).equals(fs.readFileSync(path.join(dir, 'whole', map)))).toBe(true);
  expect(resumed.stats).toEqual(whole.stats);
  expect(fs.readdirSync(job).sort()).toEqual(['checkpoint.bin', 'rotations.mrc', 'scores.mrc']);
  fs.rmSync(dir, { recursive: true });
}, 120_000);
