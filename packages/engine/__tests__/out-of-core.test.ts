import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MrcRegionReader, createVolume, readMrc, writeMrc, type Zyx } from '@tme/formats';
import { matchTemplate, matchTemplateOutOfCore, type MatchOptions } from '../src/match';
import { blobTemplate, gaussianNoise, plantedTarget, rotationSet, runOutOfCore } from './helpers';

const SHAPE: Zyx = [40, 44, 48];

/** Noise with three copies of the template, and (optionally) a constant slab without data along one face. */
function target(withNoData: boolean): Float32Array {
  return plantedTarget(SHAPE, [[10, 12, 14], [25, 30, 20], [30, 10, 36]], withNoData);
}

const ROTATIONS = rotationSet([['z', 0], ['x', 30], ['y', 60], ['z', 90]]);

describe.each([
  ['flc-sphere', 'mean', true],
  ['flc', 'mirror', false],
] as const)('out of core (%s, padding %s, no-data slab %s)', (score, padTarget, withNoData) => {
  test('maps read and written tile by tile (tiled in z, y and x) equal the in-memory run bit for bit, header included; so do the statistics', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-ooc-'));
    const volume = createVolume(target(withNoData), SHAPE, 2);
    const file = path.join(dir, 'target.mrc');
    writeMrc(file, volume);
    // Tiles that split every axis: 3 × 2 × 2 cores.
    const common = { template: blobTemplate(12), rotations: ROTATIONS, score, padTarget, device: 'cpu' as const, tile: [26, 33, 35] as Zyx, threads: 1 };
    const inMemory = await matchTemplate({ ...common, target: readMrc(file) });
    expect(inMemory.tilePlan.splits).toEqual([3, 2, 2]);
    const reader = new MrcRegionReader(file);
    const outputs = { scores: path.join(dir, 'scores.mrc'), rotations: path.join(dir, 'rotations.mrc') };
    const ooc = await matchTemplateOutOfCore({ ...common, target: reader }, outputs);
    reader.close();
    expect(ooc.tilePlan.tiles).toEqual(inMemory.tilePlan.tiles);
    const scores = readMrc(outputs.scores);
    const rotations = readMrc(outputs.rotations);
    expect(scores.data).toEqual(inMemory.scores.data);
    expect(Array.from(rotations.data)).toEqual(Array.from(inMemory.indices));
    // Whole files: what writeMrc writes for the in-memory maps, byte for byte.
    writeMrc(path.join(dir, 'whole.mrc'), inMemory.scores);
    expect(fs.readFileSync(outputs.scores).equals(fs.readFileSync(path.join(dir, 'whole.mrc')))).toBe(true);
    if (withNoData) expect(Array.from(inMemory.indices).filter((i) => i === -1).length).toBeGreaterThan(0);
    expect(ooc.stats.mean).toBe(inMemory.stats.mean);
    expect(ooc.stats.std).toBe(inMemory.stats.std);
    expect(ooc.stats.voxelCount).toBe(inMemory.stats.voxelCount);
    expect(ooc.stats.perRotationMax).toEqual(inMemory.stats.perRotationMax);
    expect(ooc.outOfCore.bestScore).toBe(Math.max(...inMemory.scores.data));
    // The particles are found: the best rotation (identity) at each centre.
    for (const [z, y, x] of [[10, 12, 14], [25, 30, 20], [30, 10, 36]] as const) expect(inMemory.indices[(z * SHAPE[1] + y) * SHAPE[2] + x]).toBe(0);
    fs.rmSync(dir, { recursive: true });
  }, 120_000);
});

test('out of core refuses what needs the whole target in one line each', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-ooc-'));
  const file = path.join(dir, 'target.mrc');
  writeMrc(file, createVolume(target(false), SHAPE, 2));
  const reader = new MrcRegionReader(file);
  const outputs = { scores: path.join(dir, 'scores.mrc'), rotations: path.join(dir, 'rotations.mrc') };
  const job = { target: reader, template: blobTemplate(12), rotations: ROTATIONS, device: 'cpu' as const };
  await expect(matchTemplateOutOfCore({ ...job, score: 'lcc' }, outputs)).rejects.toThrow(/^score lcc is not available for a tomogram matched out of core/);
  await expect(matchTemplateOutOfCore({ ...job, targetFilter: (s) => new Float32Array(s[0] * s[1] * (Math.floor(s[2] / 2) + 1)).fill(1) }, outputs))
    .rejects.toThrow(/targetFilter is not available/);
  // Not built out of core: several templates in one pass, priors per position, tile shards.
  await expect(matchTemplateOutOfCore({ ...job, moreTemplates: [{ template: blobTemplate(10), rotations: ROTATIONS }] }, outputs))
    .rejects.toThrow(/^moreTemplates is not available for a tomogram matched out of core/);
  const priors = { positions: Float64Array.from([20, 22, 24]), directions: Float64Array.from([1, 0, 0]), coneAngle: 20, radius: 10 };
  await expect(matchTemplateOutOfCore({ ...job, priors }, outputs)).rejects.toThrow(/^priors is not available for a tomogram matched out of core/);
  await expect(matchTemplateOutOfCore({ ...job, tileShard: { index: 0, count: 2 } }, outputs)).rejects.toThrow(/^tileShard is not available for a tomogram matched out of core/);
  // Fourier-space rotation with a template filter filters the whole target by it first.
  const allPass = (s: readonly number[]): Float32Array => new Float32Array(s[0]! * s[1]! * (Math.floor(s[2]! / 2) + 1)).fill(1);
  await expect(matchTemplateOutOfCore({ ...job, rotationMode: 'fourier', filter: allPass }, outputs))
    .rejects.toThrow(/^rotationMode fourier with a template filter is not available for a tomogram matched out of core/);
  await expect(matchTemplate(job)).rejects.toThrow(/is a target on disk: match it with matchTemplateOutOfCore/);
  reader.close();
  // Nothing was written.
  expect(fs.readdirSync(dir)).toEqual(['target.mrc']);
  fs.rmSync(dir, { recursive: true });
});

test('cancelled after two of twelve tiles: the checkpoint and partial maps are kept, and a resume gives the uninterrupted maps bit for bit', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-ooc-'));
  const file = path.join(dir, 'target.mrc');
  writeMrc(file, createVolume(target(true), SHAPE, 2));
  const common = { template: blobTemplate(12), rotations: ROTATIONS, device: 'cpu' as const, tile: [26, 33, 35] as Zyx, threads: 1, batchRotations: 1 };
  const run = (out: string, options: MatchOptions = {}): ReturnType<typeof runOutOfCore> => runOutOfCore(file, common, dir, out, options);
  const whole = await run('whole');
  const job = path.join(dir, 'job');
  const stop = new AbortController();
  await expect(run('job', {
    checkpoint: { dir: job }, signal: stop.signal,
    // Mid-way through the third tile: two tiles are on the disk and in the checkpoint.
    onProgress: (p) => { if (p.tile === 2 && p.rotationsDone >= 2) stop.abort(); },
  })).rejects.toThrow(/cancelled/);
  expect(fs.readdirSync(job).sort()).toEqual(['checkpoint.bin', 'rotations.mrc.part', 'scores.mrc.part']);
  // Another job's parameters, or the in-memory path, are refused by the checkpoint.
  const reader = new MrcRegionReader(file);
  await expect(matchTemplateOutOfCore({ ...common, rotations: ROTATIONS.subarray(0, 27), target: reader }, { scores: path.join(job, 'x.mrc'), rotations: path.join(job, 'y.mrc') }, { checkpoint: { dir: job, resume: true } }))
    .rejects.toThrow(/the checkpoint was written by a job with other inputs or parameters/);
  reader.close();
  await expect(matchTemplate({ ...common, target: readMrc(file) }, { checkpoint: { dir: job, resume: true } })).rejects.toThrow(/the checkpoint is of a search out of core but this run matches in memory/);
  expect(fs.readdirSync(job).sort()).toEqual(['checkpoint.bin', 'rotations.mrc.part', 'scores.mrc.part']);
  const tiles: number[] = [];
  const resumed = await run('job', { checkpoint: { dir: job, resume: true }, onProgress: (p) => { if (!tiles.includes(p.tile)) tiles.push(p.tile); } });
  expect(resumed.resumed).toBe(true);
  expect(tiles[0]).toBe(2);
  for (const map of ['scores.mrc', 'rotations.mrc']) expect(fs.readFileSync(path.join(job, map)).equals(fs.readFileSync(path.join(dir, 'whole', map)))).toBe(true);
  expect(resumed.stats).toEqual(whole.stats);
  expect(resumed.outOfCore.bestScore).toBe(whole.outOfCore.bestScore);
  // The checkpoint stays until the job is written (writeJob removes it); the partial maps are the maps now.
  expect(fs.readdirSync(job).sort()).toEqual(['checkpoint.bin', 'rotations.mrc', 'scores.mrc']);
  fs.rmSync(dir, { recursive: true });
}, 120_000);
