import * as fs from 'node:fs';
import * as path from 'node:path';
import { TmeError, type Volume } from '@tme/formats';
import { rotationStatsMaps } from './background';
import { BACKGROUND_FILES, JOB_FILES, readBackgroundMap, readJob, type JobData } from './job-files';
import { addTileSums, mergeBest, scoreStatistics, type MatchResult, type TileSums } from './match';
import type { Tile } from './tiling';

/** A search merged from the job folders of its shards, and what writeJob needs to write it as one job. */
export interface MergedShards {
  result: MatchResult;
  /** The shards' angles.tsv, verbatim (they are checked to be one table). */
  anglesTsv: string;
  inputs: Record<string, unknown>;
  /** The whole search the shards are parts of (job.json's `search`), when they stored one. */
  search?: Record<string, unknown>;
  tmeVersion: string;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

type Shard = { dir: string; job: JobData; angles: string };

/** Which part of the search a shard's job folder holds: rotations (--shard) or tiles (--shard-by tiles). */
const kindOf = (job: JobData): 'rotations' | 'tiles' | undefined => (job.record.parameters.tileRange
  ? 'tiles' : job.record.parameters.rotationRange ? 'rotations' : undefined);

/**
 * Merges the job folders of one search's shards into the result one uninterrupted run gives, bit for bit. Rotation
 * shards (`rotationRange`s that together are the whole rotation set): per voxel the higher score, an equal one keeping
 * the lower rotation index; each rotation's statistics from its shard, added in rotation order by the same function a
 * run uses. Tile shards (`tileRange`s that together are the tile plan): each voxel from the shard whose tile core
 * holds it, each rotation's sums added tile by tile in the order a run adds them.
 * Refuses, in one line naming the shard and what differs, shards of different jobs (inputs, parameters, tile plan,
 * rotation set, tme version), rotation and tile shards together, and sets of shards that miss or repeat a part.
 */
export function mergeShards(dirs: readonly string[]): MergedShards {
  if (dirs.length === 0) throw new TmeError('ERR_TME_INVALID_OPTION', 'no shards to merge');
  const jobs = dirs.map((dir) => ({ dir, job: readJob(dir), angles: fs.readFileSync(path.join(dir, JOB_FILES.angles), 'utf8') }));
  const first = jobs[0] as Shard;
  const key = (j: JobData): Record<string, unknown> => ({
    tmeVersion: j.record.tmeVersion,
    parameters: {
      ...j.record.parameters, rotationRange: null, tileShard: null, tileRange: null, device: null, threads: null, memoryFraction: null, memoryLimitBytes: null,
    },
    inputs: { ...j.record.inputs, command: null, shard: null },
    search: j.record.search === undefined ? null : wholeSearch(j.record.search),
    tilePlan: { splits: j.record.tilePlan.splits, fastShape: j.record.tilePlan.fastShape },
    scope: j.record.statistics.scope, voxelCount: j.record.statistics.voxelCount,
  });
  const reference = key(first.job);
  const kind = kindOf(first.job);
  for (const { dir, job, angles } of jobs) {
    const k = kindOf(job);
    if (k === undefined) throw new TmeError('ERR_TME_MISMATCH', 'is a whole search, not a shard (tme match --shard i/n)', { file: dir });
    if (k !== kind) {
      throw new TmeError('ERR_TME_MISMATCH', `is a shard of the ${k}, ${first.dir} one of the ${kind}: merge the shards of one split (--shard-by)`, { file: dir });
    }
    if (k === 'tiles' && !job.record.statistics.perTileRotationSums) {
      throw new TmeError('ERR_TME_FORMAT', 'job.json has no per-tile sums to merge', { file: dir });
    }
    if (k === 'rotations' && !job.record.statistics.perRotationSums) {
      throw new TmeError('ERR_TME_FORMAT', 'job.json has no per-rotation sums to merge (a shard of an older tme?)', { file: dir });
    }
    const other = key(job);
    for (const field of Object.keys(reference)) {
      const a = reference[field] as Record<string, unknown>;
      const b = other[field] as Record<string, unknown>;
      if (same(a, b)) continue;
      const detail = a !== null && typeof a === 'object' && b !== null && typeof b === 'object'
        ? Object.keys({ ...a, ...b }).filter((f) => !same(a[f], b[f])).map((f) => `${field}.${f}`).join(', ')
        : field;
      throw new TmeError('ERR_TME_MISMATCH', `is a shard of another search than ${first.dir}: ${detail} differ${detail.includes(',') ? '' : 's'}`, { file: dir });
    }
    if (angles !== first.angles) throw new TmeError('ERR_TME_MISMATCH', `searched another rotation set than ${first.dir} (angles.tsv differs)`, { file: dir });
  }

  if (kind === 'tiles') return mergeTileShards(jobs);

  // The shards' ranges must be the whole set, each rotation once.
  const nRot = first.job.record.statistics.rotationCount;
  const ranges = jobs.map(({ dir, job }) => ({ dir, range: job.record.parameters.rotationRange as [number, number] })).sort((a, b) => a.range[0] - b.range[0]);
  let at = 0;
  for (const { dir, range } of ranges) {
    if (range[0] > at) throw new TmeError('ERR_TME_MISMATCH', `rotations ${at}–${range[0] - 1} of ${nRot} are in no shard given`, { file: dir });
    if (range[0] < at) throw new TmeError('ERR_TME_MISMATCH', `its rotations ${range[0]}–${range[1] - 1} overlap another shard's (up to ${at - 1})`, { file: dir });
    at = range[1];
  }
  if (at !== nRot) throw new TmeError('ERR_TME_MISMATCH', `rotations ${at}–${nRot - 1} of ${nRot} are in no shard given`);

  const scores = Float32Array.from(first.job.scores.data);
  const indices = Int32Array.from(first.job.indices);
  const sums = { sum: new Float64Array(nRot), sumSq: new Float64Array(nRot), count: new Float64Array(nRot) };
  const perRotationMax = new Float32Array(nRot).fill(-Infinity);
  // rotation-stats: each shard's mean and σ over its R rotations give back its sums (R m, R (σ² + m²)), added in float64.
  const stats = first.job.record.background?.kind === 'rotation-stats';
  const voxelSum = stats ? new Float64Array(scores.length) : undefined;
  const voxelSumSq = stats ? new Float64Array(scores.length) : undefined;
  let totalMs = 0;
  let matchMs = 0;
  let prepareMs = 0;
  let checkpointMs = 0;
  for (const { job } of jobs) {
    if (job !== first.job) mergeBest(scores, indices, 0, job.scores.data, job.indices, 0, scores.length);
    const [start, end] = job.record.parameters.rotationRange as [number, number];
    if (voxelSum && voxelSumSq) {
      const dir = jobs.find((j) => j.job === job)?.dir as string;
      const mean = readBackgroundMap(dir, BACKGROUND_FILES.rotationMean, job.scores).data;
      const std = readBackgroundMap(dir, BACKGROUND_FILES.rotationStd, job.scores).data;
      const n = end - start;
      for (let i = 0; i < voxelSum.length; i++) {
        const m = mean[i] as number;
        const d = std[i] as number;
        voxelSum[i] = (voxelSum[i] as number) + n * m;
        voxelSumSq[i] = (voxelSumSq[i] as number) + n * (d * d + m * m);
      }
    }
    const s = job.record.statistics;
    const shardSums = s.perRotationSums as { sum: number[]; sumSq: number[]; count: number[] };
    for (let r = start; r < end; r++) {
      sums.sum[r] = shardSums.sum[r] as number;
      sums.sumSq[r] = shardSums.sumSq[r] as number;
      sums.count[r] = shardSums.count[r] as number;
      perRotationMax[r] = s.perRotationMax[r] as number;
    }
    totalMs += job.record.timings.totalMs;
    matchMs += job.record.timings.matchMs;
    prepareMs += job.record.timings.prepareMs;
    checkpointMs += job.record.timings.checkpointMs;
  }
  const r = first.job.record;
  const best = { ...first.job.scores, data: scores };
  const background = voxelSum && voxelSumSq
    ? rotationStatsMaps(best, Float32Array.from(voxelSum), Float32Array.from(voxelSumSq), nRot) : undefined;
  const statistics = scoreStatistics(sums, perRotationMax, { sum: 0, sumSq: 0, count: 0 }, r.statistics.voxelCount, r.statistics.scope);
  const devices = jobs.flatMap(({ job }) => job.record.devices ?? [job.record.device]).map((d) => ({ index: d.index, name: d.name, kind: d.kind as 'gpu' | 'cpu', memoryBytes: 0 }));
  return {
    result: {
      scores: best,
      indices,
      rotations: first.job.rotations,
      stats: statistics,
      ...(background ? { background } : {}),
      tilePlan: r.tilePlan,
      device: { ...r.device, kind: r.device.kind as 'gpu' | 'cpu', memoryBytes: 0 },
      devices,
      timings: { totalMs, prepareMs, matchMs, checkpointMs, rotationsPerSecond: matchMs > 0 ? (1000 * nRot) / matchMs / r.tilePlan.tiles.length : 0 },
      parameters: { ...r.parameters, rotationRange: null },
      resumed: jobs.some(({ job }) => job.record.resumed),
    },
    anglesTsv: first.angles,
    inputs: { ...r.inputs, shard: null, shards: jobs.map(({ dir }) => path.resolve(dir)) },
    ...(r.search === undefined ? {} : { search: wholeSearch(r.search) }),
    tmeVersion: r.tmeVersion,
  };
}

/** Tile shards (checked to be of one search) → the whole search: each voxel from its tile's shard. */
function mergeTileShards(jobs: readonly Shard[]): MergedShards {
  const first = jobs[0] as Shard;
  const r = first.job.record;
  const tiles = r.tilePlan.tiles;
  const nRot = r.statistics.rotationCount;
  // The shards' tile ranges must be the whole plan, each tile once.
  const ranges = jobs.map((s) => ({ ...s, range: s.job.record.parameters.tileRange as [number, number] })).sort((a, b) => a.range[0] - b.range[0]);
  let at = 0;
  for (const { dir, range } of ranges) {
    if (range[0] > at) throw new TmeError('ERR_TME_MISMATCH', `tiles ${at}–${range[0] - 1} of ${tiles.length} are in no shard given`, { file: dir });
    if (range[0] < at) throw new TmeError('ERR_TME_MISMATCH', `its tiles ${range[0]}–${range[1] - 1} overlap another shard's (up to ${at - 1})`, { file: dir });
    at = range[1];
  }
  if (at !== tiles.length) throw new TmeError('ERR_TME_MISMATCH', `tiles ${at}–${tiles.length - 1} of ${tiles.length} are in no shard given`);

  const shape = r.parameters.targetShape;
  const scores = new Float32Array(first.job.scores.data.length);
  const indices = new Int32Array(scores.length);
  const stats = r.background?.kind === 'rotation-stats';
  const maps = stats ? { rotationMean: new Float32Array(scores.length), rotationStd: new Float32Array(scores.length), normalised: new Float32Array(scores.length) } : undefined;
  const perRotationMax = new Float32Array(nRot).fill(-Infinity);
  const tileSums: TileSums[] = [];
  const timings = { totalMs: 0, prepareMs: 0, matchMs: 0, checkpointMs: 0 };
  for (const { dir, job, range } of ranges) {
    const own = tiles.slice(range[0], range[1]);
    copyCores(own, shape, job.scores.data, scores);
    copyCores(own, shape, job.indices, indices);
    if (maps) {
      for (const name of ['rotationMean', 'rotationStd', 'normalised'] as const) {
        copyCores(own, shape, readBackgroundMap(dir, BACKGROUND_FILES[name], job.scores).data, maps[name]);
      }
    }
    const s = job.record.statistics;
    for (let k = 0; k < nRot; k++) if ((s.perRotationMax[k] as number) > (perRotationMax[k] as number)) perRotationMax[k] = s.perRotationMax[k] as number;
    for (const t of s.perTileRotationSums ?? []) {
      tileSums.push({ tile: t.tile, sum: Float64Array.from(t.sum), sumSq: Float64Array.from(t.sumSq), count: Float64Array.from(t.count) });
    }
    for (const k of Object.keys(timings) as Array<keyof typeof timings>) timings[k] += job.record.timings[k];
  }
  const best = { ...first.job.scores, data: scores };
  const like = (data: Float32Array): Volume => ({ ...best, data });
  const statistics = scoreStatistics(addTileSums(tileSums, nRot), perRotationMax, { sum: 0, sumSq: 0, count: 0 }, r.statistics.voxelCount, r.statistics.scope);
  const devices = jobs.flatMap(({ job }) => job.record.devices ?? [job.record.device]).map((d) => ({ index: d.index, name: d.name, kind: d.kind as 'gpu' | 'cpu', memoryBytes: 0 }));
  const { tileShard: _shard, tileRange: _range, ...parameters } = r.parameters;
  return {
    result: {
      scores: best, indices, rotations: first.job.rotations, stats: statistics,
      ...(maps ? { background: { kind: 'rotation-stats' as const, rotationMean: like(maps.rotationMean), rotationStd: like(maps.rotationStd), normalised: like(maps.normalised) } } : {}),
      tilePlan: r.tilePlan,
      device: { ...r.device, kind: r.device.kind as 'gpu' | 'cpu', memoryBytes: 0 },
      devices,
      timings: { ...timings, rotationsPerSecond: timings.matchMs > 0 ? (1000 * nRot) / timings.matchMs / tiles.length : 0 },
      parameters: { ...parameters, rotationRange: null },
      resumed: jobs.some(({ job }) => job.record.resumed),
    },
    anglesTsv: first.angles,
    inputs: { ...r.inputs, shard: null, shards: jobs.map(({ dir }) => path.resolve(dir)) },
    ...(r.search === undefined ? {} : { search: wholeSearch(r.search) }),
    tmeVersion: r.tmeVersion,
  };
}

/** Copies the voxels of the tiles' cores (a tile's core is the part of the target its shard scored) from → to. */
function copyCores(tiles: readonly Tile[], shape: readonly number[], from: Float32Array | Int32Array, to: Float32Array | Int32Array): void {
  const [, ny, nx] = shape as [number, number, number];
  for (const tile of tiles) {
    const [cz, cy, cx] = tile.coreShape;
    for (let z = 0; z < cz; z++) {
      for (let y = 0; y < cy; y++) {
        const at = ((tile.coreStart[0] + z) * ny + tile.coreStart[1] + y) * nx + tile.coreStart[2];
        to.set(from.subarray(at, at + cx), at);
      }
    }
  }
}

/** A shard's search as the whole search it is part of: no shard, and none of what each task may set for itself. */
function wholeSearch(search: Record<string, unknown>): Record<string, unknown> {
  const { shard: _shard, device: _device, threads: _threads, memoryLimitBytes: _memory, ...whole } = search;
  // A whole search splits nothing: its shardBy is the default (one run's job.json says 'rotations').
  return whole.shardBy === undefined ? whole : { ...whole, shardBy: 'rotations' };
}
