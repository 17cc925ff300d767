import * as fs from 'node:fs';
import * as path from 'node:path';
import { MrcRegionReader, MrcRegionWriter, TmeError, type Volume, type Zyx } from '@tme/formats';
import { rotationStatsMaps } from './background';
import { BACKGROUND_FILES, JOB_FILES, openJob, readBackgroundMap, readJob, type BackgroundRecord, type JobData, type JobRecord } from './job-files';
import { addTileSums, mergeBest, scoreStatistics, type MatchResult, type OutOfCoreMatchResult, type TileSums } from './match';
import type { Tile } from './tiling';
import { collectGarbage } from './volume-filter';

/** A search merged from the job folders of its shards, and what writeJob needs to write it as one job. */
export interface MergedShards {
  result: MatchResult | OutOfCoreMatchResult;
  /** The shards' angles.tsv, verbatim (they are checked to be one table). */
  anglesTsv: string;
  inputs: Record<string, unknown>;
  /** The whole search the shards are parts of (job.json's `search`), when they stored one. */
  search?: Record<string, unknown>;
  tmeVersion: string;
  /** The shards read their target out of core (job.json's outOfCore). */
  outOfCore: boolean;
  /** mergeShardsBySlabs: the background maps it wrote into the job folder (writeJob's `background`). */
  background?: BackgroundRecord;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

type Shard = { dir: string; job: JobData; angles: string };
/** A shard as its job.json and angles.tsv give it, its maps not read. */
type ShardHead = { dir: string; record: JobRecord; angles: string };

/** Which part of the search a shard's job folder holds: rotations (--shard) or tiles (--shard-by tiles). */
const kindOf = (record: JobRecord): 'rotations' | 'tiles' | undefined => (record.parameters.tileRange
  ? 'tiles' : record.parameters.rotationRange ? 'rotations' : undefined);

function readShardHead(dir: string): ShardHead {
  return { dir, record: openJob(dir).record, angles: fs.readFileSync(path.join(dir, JOB_FILES.angles), 'utf8') };
}

/** Checks the shards are parts of one search (see mergeShards), rotation shards that the whole set; returns their kind. */
function checkShards(jobs: readonly ShardHead[]): 'rotations' | 'tiles' {
  if (jobs.length === 0) throw new TmeError('ERR_TME_INVALID_OPTION', 'no shards to merge');
  const first = jobs[0] as ShardHead;
  const key = (r: JobRecord): Record<string, unknown> => ({
    tmeVersion: r.tmeVersion,
    parameters: {
      ...r.parameters, rotationRange: null, tileShard: null, tileRange: null, device: null, threads: null, memoryFraction: null, memoryLimitBytes: null,
    },
    inputs: { ...r.inputs, command: null, shard: null },
    search: r.search === undefined ? null : wholeSearch(r.search),
    tilePlan: { splits: r.tilePlan.splits, fastShape: r.tilePlan.fastShape },
    scope: r.statistics.scope, voxelCount: r.statistics.voxelCount,
  });
  const reference = key(first.record);
  const kind = kindOf(first.record);
  for (const { dir, record, angles } of jobs) {
    const k = kindOf(record);
    if (k === undefined) throw new TmeError('ERR_TME_MISMATCH', 'is a whole search, not a shard (tme match --shard i/n)', { file: dir });
    if (k !== kind) {
      throw new TmeError('ERR_TME_MISMATCH', `is a shard of the ${k}, ${first.dir} one of the ${kind}: merge the shards of one split (--shard-by)`, { file: dir });
    }
    if (k === 'tiles' && !record.statistics.perTileRotationSums) {
      throw new TmeError('ERR_TME_FORMAT', 'job.json has no per-tile sums to merge', { file: dir });
    }
    if (k === 'rotations' && !record.statistics.perRotationSums) {
      throw new TmeError('ERR_TME_FORMAT', 'job.json has no per-rotation sums to merge (a shard of an older tme?)', { file: dir });
    }
    const other = key(record);
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
  if (kind === 'tiles') {
    // The shards' tile ranges must be the whole plan, each tile once.
    const tiles = first.record.tilePlan.tiles;
    const ranges = jobs.map(({ dir, record }) => ({ dir, range: record.parameters.tileRange as [number, number] })).sort((a, b) => a.range[0] - b.range[0]);
    let at = 0;
    for (const { dir, range } of ranges) {
      if (range[0] > at) throw new TmeError('ERR_TME_MISMATCH', `tiles ${at}–${range[0] - 1} of ${tiles.length} are in no shard given`, { file: dir });
      if (range[0] < at) throw new TmeError('ERR_TME_MISMATCH', `its tiles ${range[0]}–${range[1] - 1} overlap another shard's (up to ${at - 1})`, { file: dir });
      at = range[1];
    }
    if (at !== tiles.length) throw new TmeError('ERR_TME_MISMATCH', `tiles ${at}–${tiles.length - 1} of ${tiles.length} are in no shard given`);
    return kind;
  }
  // The shards' ranges must be the whole set, each rotation once.
  const nRot = first.record.statistics.rotationCount;
  const ranges = jobs.map(({ dir, record }) => ({ dir, range: record.parameters.rotationRange as [number, number] })).sort((a, b) => a.range[0] - b.range[0]);
  let at = 0;
  for (const { dir, range } of ranges) {
    if (range[0] > at) throw new TmeError('ERR_TME_MISMATCH', `rotations ${at}–${range[0] - 1} of ${nRot} are in no shard given`, { file: dir });
    if (range[0] < at) throw new TmeError('ERR_TME_MISMATCH', `its rotations ${range[0]}–${range[1] - 1} overlap another shard's (up to ${at - 1})`, { file: dir });
    at = range[1];
  }
  if (at !== nRot) throw new TmeError('ERR_TME_MISMATCH', `rotations ${at}–${nRot - 1} of ${nRot} are in no shard given`);
  return 'rotations';
}

/**
 * Merges the job folders of one search's shards into the result one uninterrupted run gives, bit for bit. Rotation
 * shards (`rotationRange`s that together are the whole rotation set): per voxel the higher score, an equal one keeping
 * the lower rotation index; each rotation's statistics from its shard, added in rotation order by the same function a
 * run uses. Tile shards (`tileRange`s that together are the tile plan): each voxel from the shard whose tile core
 * holds it, each rotation's sums added tile by tile in the order a run adds them.
 * Refuses, in one line naming the shard and what differs, shards of different jobs (inputs, parameters, tile plan,
 * rotation set, tme version), rotation and tile shards together, and sets of shards that miss or repeat a part.
 * Every shard's maps are held at once (mergeShardsBytes); mergeShardsBySlabs merges rotation shards within a
 * memory budget.
 */
export function mergeShards(dirs: readonly string[]): MergedShards {
  const heads = dirs.map(readShardHead);
  const kind = checkShards(heads);
  const jobs: Shard[] = heads.map(({ dir, angles }) => ({ dir, job: readJob(dir), angles }));
  const first = jobs[0] as Shard;
  if (kind === 'tiles') return mergeTileShards(jobs);
  const nRot = first.job.record.statistics.rotationCount;

  const scores = Float32Array.from(first.job.scores.data);
  const indices = Int32Array.from(first.job.indices);
  // rotation-stats: each shard's mean and σ over its R rotations give back its sums (R m, R (σ² + m²)), added in float64.
  const stats = first.job.record.background?.kind === 'rotation-stats';
  const voxelSum = stats ? new Float64Array(scores.length) : undefined;
  const voxelSumSq = stats ? new Float64Array(scores.length) : undefined;
  for (const { dir, job } of jobs) {
    if (job !== first.job) mergeBest(scores, indices, 0, job.scores.data, job.indices, 0, scores.length);
    const [start, end] = job.record.parameters.rotationRange as [number, number];
    if (voxelSum && voxelSumSq) {
      addRotationSums(voxelSum, voxelSumSq, end - start, readBackgroundMap(dir, BACKGROUND_FILES.rotationMean, job.scores).data,
        readBackgroundMap(dir, BACKGROUND_FILES.rotationStd, job.scores).data);
    }
  }
  const best = { ...first.job.scores, data: scores };
  const background = voxelSum && voxelSumSq
    ? rotationStatsMaps(best, Float32Array.from(voxelSum), Float32Array.from(voxelSumSq), nRot) : undefined;
  const { summary, ...rest } = rotationShardsSummary(heads);
  return { result: { ...summary, scores: best, indices, rotations: first.job.rotations, ...(background ? { background } : {}) }, ...rest };
}

/** What a merge of rotation shards takes from their job.json: every rotation's sums and maximum from its shard,
 *  timings added, the whole search's parameters and inputs. */
function rotationShardsSummary(heads: readonly ShardHead[]): Omit<MergedShards, 'result'> & {
  summary: Omit<MatchResult, 'scores' | 'indices' | 'rotations' | 'background'>;
} {
  const first = heads[0] as ShardHead;
  const r = first.record;
  const nRot = r.statistics.rotationCount;
  const sums = { sum: new Float64Array(nRot), sumSq: new Float64Array(nRot), count: new Float64Array(nRot) };
  const perRotationMax = new Float32Array(nRot).fill(-Infinity);
  let totalMs = 0;
  let matchMs = 0;
  let prepareMs = 0;
  let checkpointMs = 0;
  for (const { record } of heads) {
    const [start, end] = record.parameters.rotationRange as [number, number];
    const s = record.statistics;
    const shardSums = s.perRotationSums as { sum: number[]; sumSq: number[]; count: number[] };
    for (let k = start; k < end; k++) {
      sums.sum[k] = shardSums.sum[k] as number;
      sums.sumSq[k] = shardSums.sumSq[k] as number;
      sums.count[k] = shardSums.count[k] as number;
      perRotationMax[k] = s.perRotationMax[k] as number;
    }
    totalMs += record.timings.totalMs;
    matchMs += record.timings.matchMs;
    prepareMs += record.timings.prepareMs;
    checkpointMs += record.timings.checkpointMs;
  }
  const statistics = scoreStatistics(sums, perRotationMax, { sum: 0, sumSq: 0, count: 0 }, r.statistics.voxelCount, r.statistics.scope);
  const devices = heads.flatMap(({ record }) => record.devices ?? [record.device]).map((d) => ({ index: d.index, name: d.name, kind: d.kind as 'gpu' | 'cpu', memoryBytes: 0 }));
  return {
    summary: {
      stats: statistics,
      tilePlan: r.tilePlan,
      device: { ...r.device, kind: r.device.kind as 'gpu' | 'cpu', memoryBytes: 0 },
      devices,
      timings: { totalMs, prepareMs, matchMs, checkpointMs, rotationsPerSecond: matchMs > 0 ? (1000 * nRot) / matchMs / r.tilePlan.tiles.length : 0 },
      parameters: { ...r.parameters, rotationRange: null },
      resumed: heads.some(({ record }) => record.resumed),
    },
    anglesTsv: first.angles,
    inputs: { ...r.inputs, shard: null, shards: heads.map(({ dir }) => path.resolve(dir)) },
    ...(r.search === undefined ? {} : { search: wholeSearch(r.search) }),
    tmeVersion: r.tmeVersion,
    outOfCore: r.outOfCore === true,
  };
}

/** A rotation shard's part of the rotation-stats sums: its mean m and σ over its n rotations give back its sums
 *  (n m, n (σ² + m²)), added in float64. */
function addRotationSums(sum: Float64Array, sumSq: Float64Array, n: number, mean: Float32Array, std: Float32Array): void {
  for (let i = 0; i < sum.length; i++) {
    const m = mean[i] as number;
    const d = std[i] as number;
    sum[i] = (sum[i] as number) + n * m;
    sumSq[i] = (sumSq[i] as number) + n * (d * d + m * m);
  }
}

/** Bytes mergeShards holds at most for `dirs`: every shard's score and rotation maps (and a background's), the
 *  merged maps, and what writeJob converts; from the maps' headers. */
export function mergeShardsBytes(dirs: readonly string[]): number {
  if (dirs.length === 0) return 0;
  const job = openJob(dirs[0] as string);
  const voxels = job.shape[0] * job.shape[1] * job.shape[2];
  // Per shard: scores (4) and indices (4; rotations.mrc's float32 read is let go); merged: 8; written: 4 more.
  // Measured: three shards of 512×512×200, 1.76 GiB by this against a 1.69 GiB peak RSS of tme merge.
  const perVoxel = 8 * dirs.length + 12 + (job.record.background?.kind === 'rotation-stats' ? 8 + 16 + 12 : 0);
  return perVoxel * voxels;
}

/**
 * mergeShards within `maxBytes`, for shards of one template: the merged maps are assembled in `dir`'s scores.mrc and
 * rotations.mrc (and a rotation-stats search's three maps) slab by slab, each shard's maps read by region, whole
 * sections: rotation shards compared and their rotation sums added in the same order, tile shards' cores copied, so
 * the files equal mergeShards' bit for bit. The result is an out-of-core one: writeJob then writes the rest of the job
 * folder (given `background`). Throws (TmeError ERR_TME_UNSUPPORTED, in words for a user) for several templates.
 */
export function mergeShardsBySlabs(dirs: readonly string[], dir: string, maxBytes: number): MergedShards & { result: OutOfCoreMatchResult } {
  const heads = dirs.map(readShardHead);
  const kind = checkShards(heads);
  const first = heads[0] as ShardHead;
  const r = first.record;
  if ((r.parameters.templates?.length ?? 1) > 1) {
    throw new TmeError('ERR_TME_UNSUPPORTED', 'merging shards of several templates holds every shard\'s maps at once, and they do not fit memory');
  }
  if (r.background && r.background.kind !== 'rotation-stats') {
    throw new TmeError('ERR_TME_UNSUPPORTED', `merging a --background ${r.background.kind} search's shards holds every shard's maps at once, and they do not fit memory`);
  }
  const stats = r.background?.kind === 'rotation-stats';
  const nRot = r.statistics.rotationCount;
  const opened = heads.map((h) => openJob(h.dir));
  const { shape, voxelSize, origin } = opened[0] as ReturnType<typeof openJob>;
  const [nz, ny, nx] = shape;
  const section = ny * nx;
  // Each voxel of a slab: the merged pair and one shard's pair as read (float32 rotations and their int32 copies), and
  // the writer's copy: 32 bytes; with rotation-stats 48 more (the float64 sums, a shard's two maps, the three made);
  // the slab's arrays are collected before the next (V8 frees them only when its heap asks).
  const perRead = Math.max(1, Math.floor(maxBytes / ((stats ? 80 : 32) * section)));
  const geometry = { shape, voxelSize, origin };
  const outputs = { scores: path.join(dir, JOB_FILES.scores), rotations: path.join(dir, JOB_FILES.rotations) };
  const tiles = r.tilePlan.tiles;
  const statsMaps = ['rotationMean', 'rotationStd', 'normalised'] as const;
  type StatsMap = (typeof statsMaps)[number];
  const writers: MrcRegionWriter[] = [];
  const opens: MrcRegionReader[] = [];
  const open = (file: string): MrcRegionReader => {
    const reader = new MrcRegionReader(file);
    opens.push(reader);
    return reader;
  };
  const readers: Array<{ scores: MrcRegionReader; rotations: MrcRegionReader; own: readonly Tile[]; n: number; maps?: Record<StatsMap, MrcRegionReader> }> = [];
  let bestScore = -Infinity;
  try {
    const write = (file: string): MrcRegionWriter => {
      const w = new MrcRegionWriter(path.join(dir, file), geometry);
      writers.push(w);
      return w;
    };
    const scoresOut = write(JOB_FILES.scores);
    const rotationsOut = write(JOB_FILES.rotations);
    const mapsOut = stats ? Object.fromEntries(statsMaps.map((m) => [m, write(BACKGROUND_FILES[m])])) as Record<StatsMap, MrcRegionWriter> : undefined;
    for (const [k, j] of opened.entries()) {
      const p = (heads[k] as ShardHead).record.parameters;
      const shardDir = (heads[k] as ShardHead).dir;
      readers.push({
        scores: open(j.files.scores), rotations: open(j.files.rotations),
        own: kind === 'tiles' && p.tileRange ? tiles.slice(p.tileRange[0], p.tileRange[1]) : [],
        n: p.rotationRange ? p.rotationRange[1] - p.rotationRange[0] : 0,
        ...(stats ? { maps: Object.fromEntries(statsMaps.map((m) => [m, open(path.join(shardDir, BACKGROUND_FILES[m]))])) as Record<StatsMap, MrcRegionReader> } : {}),
      });
    }
    for (let z0 = 0; z0 < nz; z0 += perRead) {
      const box: Zyx = [Math.min(perRead, nz - z0), ny, nx];
      const at: Zyx = [z0, 0, 0];
      let scores: Float32Array;
      let indices: Int32Array;
      if (kind === 'rotations') {
        const [head, ...others] = readers as [(typeof readers)[number], ...typeof readers];
        scores = head.scores.readRegion(at, box);
        indices = Int32Array.from(head.rotations.readRegion(at, box));
        for (const other of others) {
          mergeBest(scores, indices, 0, other.scores.readRegion(at, box), Int32Array.from(other.rotations.readRegion(at, box)), 0, scores.length);
        }
        if (mapsOut) {
          // In the order mergeShards adds them.
          const voxelSum = new Float64Array(scores.length);
          const voxelSumSq = new Float64Array(scores.length);
          for (const shard of readers) {
            const maps = shard.maps as Record<StatsMap, MrcRegionReader>;
            addRotationSums(voxelSum, voxelSumSq, shard.n, maps.rotationMean.readRegion(at, box), maps.rotationStd.readRegion(at, box));
          }
          const made = rotationStatsMaps({ data: scores, shape: box, voxelSize, origin }, Float32Array.from(voxelSum), Float32Array.from(voxelSumSq), nRot);
          for (const m of statsMaps) mapsOut[m].writeRegion(at, box, made[m].data);
        }
      } else {
        scores = new Float32Array(box[0] * section);
        indices = new Int32Array(scores.length);
        const made = mapsOut ? Object.fromEntries(statsMaps.map((m) => [m, new Float32Array(scores.length)])) as Record<StatsMap, Float32Array> : undefined;
        for (const shard of readers) {
          const cut = shard.own.filter((t) => t.coreStart[0] < z0 + box[0] && t.coreStart[0] + t.coreShape[0] > z0);
          if (cut.length === 0) continue;
          copyCores(cut, shape, shard.scores.readRegion(at, box), scores, z0);
          copyCores(cut, shape, Int32Array.from(shard.rotations.readRegion(at, box)), indices, z0);
          if (made && shard.maps) for (const m of statsMaps) copyCores(cut, shape, shard.maps[m].readRegion(at, box), made[m], z0);
        }
        if (made && mapsOut) for (const m of statsMaps) mapsOut[m].writeRegion(at, box, made[m]);
      }
      for (let i = 0; i < scores.length; i++) if ((scores[i] as number) > bestScore) bestScore = scores[i] as number;
      scoresOut.writeRegion(at, box, scores);
      rotationsOut.writeRegion(at, box, indices);
      collectGarbage();
    }
    for (const w of writers) w.commit();
  } catch (err) {
    for (const w of writers) w.abort();
    throw err;
  } finally {
    for (const x of opens) x.close();
  }
  const { summary, ...rest } = kind === 'rotations' ? rotationShardsSummary(heads) : tileShardsSummary(heads);
  const rotations = (opened[0] as ReturnType<typeof openJob>).rotations;
  const background: BackgroundRecord | undefined = stats ? {
    kind: 'rotation-stats', peakMap: BACKGROUND_FILES.normalised,
    files: { rotationMean: BACKGROUND_FILES.rotationMean, rotationStd: BACKGROUND_FILES.rotationStd, normalised: BACKGROUND_FILES.normalised },
  } : undefined;
  return { result: { ...summary, rotations, outOfCore: { ...outputs, bestScore, ...geometry } }, ...rest, ...(background ? { background } : {}) };
}

/** Tile shards (checked to be of one search) → the whole search: each voxel from its tile's shard. */
function mergeTileShards(jobs: readonly Shard[]): MergedShards {
  const first = jobs[0] as Shard;
  const r = first.job.record;
  const tiles = r.tilePlan.tiles;
  const shape = r.parameters.targetShape;
  const scores = new Float32Array(first.job.scores.data.length);
  const indices = new Int32Array(scores.length);
  const stats = r.background?.kind === 'rotation-stats';
  const maps = stats ? { rotationMean: new Float32Array(scores.length), rotationStd: new Float32Array(scores.length), normalised: new Float32Array(scores.length) } : undefined;
  for (const { dir, job } of jobs) {
    const range = job.record.parameters.tileRange as [number, number];
    const own = tiles.slice(range[0], range[1]);
    copyCores(own, shape, job.scores.data, scores);
    copyCores(own, shape, job.indices, indices);
    if (maps) {
      for (const name of ['rotationMean', 'rotationStd', 'normalised'] as const) {
        copyCores(own, shape, readBackgroundMap(dir, BACKGROUND_FILES[name], job.scores).data, maps[name]);
      }
    }
  }
  const best = { ...first.job.scores, data: scores };
  const like = (data: Float32Array): Volume => ({ ...best, data });
  const { summary, ...rest } = tileShardsSummary(jobs.map(({ dir, job, angles }) => ({ dir, record: job.record, angles })));
  return {
    result: {
      ...summary, scores: best, indices, rotations: first.job.rotations,
      ...(maps ? { background: { kind: 'rotation-stats' as const, rotationMean: like(maps.rotationMean), rotationStd: like(maps.rotationStd), normalised: like(maps.normalised) } } : {}),
    },
    ...rest,
  };
}

/** What a merge of tile shards takes from their job.json: each rotation's sums added tile by tile, the maxima, timings. */
function tileShardsSummary(heads: readonly ShardHead[]): Omit<MergedShards, 'result'> & {
  summary: Omit<MatchResult, 'scores' | 'indices' | 'rotations' | 'background'>;
} {
  const first = heads[0] as ShardHead;
  const r = first.record;
  const tiles = r.tilePlan.tiles;
  const nRot = r.statistics.rotationCount;
  const ranges = [...heads].sort((x, y) => (x.record.parameters.tileRange as [number, number])[0] - (y.record.parameters.tileRange as [number, number])[0]);
  const perRotationMax = new Float32Array(nRot).fill(-Infinity);
  const tileSums: TileSums[] = [];
  const timings = { totalMs: 0, prepareMs: 0, matchMs: 0, checkpointMs: 0 };
  for (const { record } of ranges) {
    const s = record.statistics;
    for (let k = 0; k < nRot; k++) if ((s.perRotationMax[k] as number) > (perRotationMax[k] as number)) perRotationMax[k] = s.perRotationMax[k] as number;
    for (const t of s.perTileRotationSums ?? []) {
      tileSums.push({ tile: t.tile, sum: Float64Array.from(t.sum), sumSq: Float64Array.from(t.sumSq), count: Float64Array.from(t.count) });
    }
    for (const k of Object.keys(timings) as Array<keyof typeof timings>) timings[k] += record.timings[k];
  }
  const statistics = scoreStatistics(addTileSums(tileSums, nRot), perRotationMax, { sum: 0, sumSq: 0, count: 0 }, r.statistics.voxelCount, r.statistics.scope);
  const devices = ranges.flatMap(({ record }) => record.devices ?? [record.device]).map((d) => ({ index: d.index, name: d.name, kind: d.kind as 'gpu' | 'cpu', memoryBytes: 0 }));
  const { tileShard: _shard, tileRange: _range, ...parameters } = r.parameters;
  return {
    summary: {
      stats: statistics,
      tilePlan: r.tilePlan,
      device: { ...r.device, kind: r.device.kind as 'gpu' | 'cpu', memoryBytes: 0 },
      devices,
      timings: { ...timings, rotationsPerSecond: timings.matchMs > 0 ? (1000 * nRot) / timings.matchMs / tiles.length : 0 },
      parameters: { ...parameters, rotationRange: null },
      resumed: heads.some(({ record }) => record.resumed),
    },
    anglesTsv: first.angles,
    inputs: { ...r.inputs, shard: null, shards: heads.map(({ dir }) => path.resolve(dir)) },
    ...(r.search === undefined ? {} : { search: wholeSearch(r.search) }),
    tmeVersion: r.tmeVersion,
    outOfCore: r.outOfCore === true,
  };
}

/** Copies the voxels of the tiles' cores (a tile's core is the part of the target its shard scored) from → to: whole
 *  volumes, or a slab of sections from z0 (only the cores' sections within it). */
function copyCores(tiles: readonly Tile[], shape: readonly number[], from: Float32Array | Int32Array, to: Float32Array | Int32Array, z0 = 0): void {
  const [, ny, nx] = shape as [number, number, number];
  const z1 = z0 + from.length / (ny * nx);
  for (const tile of tiles) {
    const [cz, cy, cx] = tile.coreShape;
    for (let z = Math.max(tile.coreStart[0], z0); z < Math.min(tile.coreStart[0] + cz, z1); z++) {
      for (let y = 0; y < cy; y++) {
        const at = ((z - z0) * ny + tile.coreStart[1] + y) * nx + tile.coreStart[2];
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
