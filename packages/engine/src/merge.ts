import * as fs from 'node:fs';
import * as path from 'node:path';
import { TmeError } from '@tme/formats';
import { rotationStatsMaps } from './background';
import { BACKGROUND_FILES, JOB_FILES, readBackgroundMap, readJob, type JobData } from './job-files';
import { mergeBest, scoreStatistics, type MatchResult } from './match';

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

/**
 * Merges the job folders of one search's shards (`rotationRange`s that together are the whole rotation set) into the
 * result one uninterrupted run gives, bit for bit: per voxel the higher score, an equal one keeping the lower
 * rotation index; each rotation's statistics from its shard, added in rotation order by the same function a run uses.
 * Refuses, in one line naming the shard and what differs, shards of different jobs (inputs, parameters, tile plan,
 * rotation set, tme version) and sets of shards that miss or repeat rotations.
 */
export function mergeShards(dirs: readonly string[]): MergedShards {
  if (dirs.length === 0) throw new TmeError('ERR_TME_INVALID_OPTION', 'no shards to merge');
  const jobs = dirs.map((dir) => ({ dir, job: readJob(dir), angles: fs.readFileSync(path.join(dir, JOB_FILES.angles), 'utf8') }));
  const first = jobs[0] as { dir: string; job: JobData; angles: string };
  const key = (j: JobData): Record<string, unknown> => ({
    tmeVersion: j.record.tmeVersion,
    parameters: { ...j.record.parameters, rotationRange: null, device: null, threads: null, memoryFraction: null, memoryLimitBytes: null },
    inputs: { ...j.record.inputs, command: null, shard: null },
    search: j.record.search === undefined ? null : wholeSearch(j.record.search),
    tilePlan: { splits: j.record.tilePlan.splits, fastShape: j.record.tilePlan.fastShape },
    scope: j.record.statistics.scope, voxelCount: j.record.statistics.voxelCount,
  });
  const reference = key(first.job);
  for (const { dir, job, angles } of jobs) {
    if (job.record.parameters.rotationRange === null || job.record.parameters.rotationRange === undefined) {
      throw new TmeError('ERR_TME_MISMATCH', 'is a whole search, not a shard (tme match --shard i/n)', { file: dir });
    }
    if (!job.record.statistics.perRotationSums) {
      throw new TmeError('ERR_TME_FORMAT', 'job.json has no per-rotation sums to merge (a shard of an older tme?)', { file: dir });
    }
    const k = key(job);
    for (const field of Object.keys(reference)) {
      const a = reference[field] as Record<string, unknown>;
      const b = k[field] as Record<string, unknown>;
      if (same(a, b)) continue;
      const detail = a !== null && typeof a === 'object' && b !== null && typeof b === 'object'
        ? Object.keys({ ...a, ...b }).filter((f) => !same(a[f], b[f])).map((f) => `${field}.${f}`).join(', ')
        : field;
      throw new TmeError('ERR_TME_MISMATCH', `is a shard of another search than ${first.dir}: ${detail} differ${detail.includes(',') ? '' : 's'}`, { file: dir });
    }
    if (angles !== first.angles) throw new TmeError('ERR_TME_MISMATCH', `searched another rotation set than ${first.dir} (angles.tsv differs)`, { file: dir });
  }

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

/** A shard's search as the whole search it is part of: no shard, and none of what each task may set for itself. */
function wholeSearch(search: Record<string, unknown>): Record<string, unknown> {
  const { shard: _shard, device: _device, threads: _threads, memoryLimitBytes: _memory, ...whole } = search;
  return whole;
}
