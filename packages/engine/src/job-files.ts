import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TmeError, processAlive, readMrc, readMrcHeader, writeFileAtomic, writeMrc, type Volume, type Zyx } from '@tme/formats';
import { formatRotationTable, parseRotationTable } from './angles';
import { CHECKPOINT_FILE, removeCheckpoint } from './checkpoint';
import type { MatchParameters, MatchResult, OutOfCoreMatchResult, ScoreStatistics } from './match';
import type { TilePlan } from './tiling';

/** The files of a job directory (the names are part of tme's contract). */
export const JOB_FILES = {
  scores: 'scores.mrc',
  rotations: 'rotations.mrc',
  angles: 'angles.tsv',
  job: 'job.json',
} as const;

/** With several templates in one pass: the template that won each voxel (0-based in the search's order, −1 where
 *  none), next to rotations.mrc. Not written for one template. */
export const TEMPLATE_INDEX_FILE = 'templates.mrc';

/** The template-index map of a several-template search: each voxel's best rotation's template (parameters.templates). */
function templateIndexMap(indices: Int32Array, templates: NonNullable<MatchParameters['templates']>): Float32Array {
  const out = new Float32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i] as number;
    let k = -1;
    if (r >= 0) {
      k = 0;
      while (k + 1 < templates.length && (templates[k + 1] as { rotationStart: number }).rotationStart <= r) k++;
    }
    out[i] = k;
  }
  return out;
}

/** The maps a background option adds to a job folder (background.ts); job.json's `background` names them. */
export const BACKGROUND_FILES = {
  rotationMean: 'rotation-mean.mrc',
  rotationStd: 'rotation-std.mrc',
  normalised: 'scores-normalised.mrc',
  randomPhaseScores: 'random-phase-scores.mrc',
  corrected: 'scores-corrected.mrc',
} as const;

/** job.json's record of a background option: its kind, its files, and the map `tme peaks` calls peaks on. */
export interface BackgroundRecord {
  kind: 'rotation-stats' | 'random-phase';
  files: Partial<Record<keyof typeof BACKGROUND_FILES, string>>;
  peakMap: string;
  /** random-phase: the template's seed. */
  seed?: number;
}

const heldLocks = new Set<string>();
let exitHooked = false;

/** Removes the job-folder locks this process holds (a command's end; at the latest, the process's exit). */
export function releaseJobLocks(): void {
  for (const file of heldLocks) {
    try {
      const held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockRecord;
      if (held.pid === process.pid && held.host === os.hostname()) fs.rmSync(file, { force: true });
    } catch { /* gone already */ }
  }
  heldLocks.clear();
}

/** The lock a running job holds in its folder (removed when the command or the process ends). */
export const JOB_LOCK_FILE = '.tme.lock';

interface LockRecord { pid: number; host: string; started: string }

/**
 * Keeps other tme processes off a job folder while this one works in it: two runs resuming one checkpoint would
 * write over each other's maps. The lock is a file made with O_EXCL naming this process; a lock whose process is
 * gone (killed on this machine) is taken over. Released when the process exits.
 */
export function lockJobFolder(dir: string): void {
  const file = path.join(dir, JOB_LOCK_FILE);
  const mine: LockRecord = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(mine)}\n`, { flag: 'wx' });
      heldLocks.add(file);
      if (!exitHooked) {
        process.once('exit', releaseJobLocks);
        exitHooked = true;
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new TmeError('ERR_TME_IO', `cannot lock the job folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { file: dir, cause: err });
    }
    let held: LockRecord | undefined;
    try {
      held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockRecord;
    } catch { /* unreadable: a lock cut short by a kill mid-write */ }
    const stale = held === undefined || (held.host === os.hostname() && held.pid !== process.pid && !processAlive(held.pid));
    if (!stale) {
      throw new TmeError('ERR_TME_EXISTS',
        `another tme (pid ${held?.pid} on ${held?.host}, since ${held?.started}) is working in this job folder; wait for it, or remove ${file} if that run is gone`,
        { file: dir });
    }
    fs.rmSync(file, { force: true });
  }
  throw new TmeError('ERR_TME_EXISTS', 'another tme took the job folder\'s lock at the same moment', { file: dir });
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const ENGINE_VERSION: string = (require('../package.json') as { version: string }).version;

/** job.json: every parameter, the device, timings, score statistics and the tile plan. */
export interface JobRecord {
  format: 'tme-job/1';
  tmeVersion: string;
  engineVersion: string;
  createdAt: string;
  parameters: MatchParameters;
  /** The files the job read (as the caller named them) and anything else the caller adds. */
  inputs: Record<string, unknown>;
  /** The whole search as its caller described it (tme's SearchOptions, stored verbatim), when the caller gave one. */
  search?: Record<string, unknown>;
  device: { index: number | 'cpu'; name: string; kind: string; backend: string };
  /** Every device the rotations were split across, one entry per worker (absent in jobs of older versions). */
  devices?: Array<{ index: number | 'cpu'; name: string; kind: string }>;
  timings: MatchResult['timings'];
  statistics: Omit<ScoreStatistics, 'perRotationMax' | 'perRotationMean' | 'perRotationStd' | 'perRotationSums'> & {
    perRotationMax: number[];
    perRotationMean?: number[];
    perRotationStd?: number[];
    /** A shard's per-rotation sums at full precision (what `tme merge` adds); absent for a whole search. */
    perRotationSums?: { sum: number[]; sumSq: number[]; count: number[] };
    /** A tile shard's per-rotation sums of each of its tiles (what `tme merge` adds in tile order); absent otherwise. */
    perTileRotationSums?: Array<{ tile: number; sum: number[]; sumSq: number[]; count: number[] }>;
  };
  tilePlan: TilePlan;
  resumed: boolean;
  files: typeof JOB_FILES;
  /** The background option's maps (absent: none). */
  background?: BackgroundRecord;
  /** True when the target was matched out of core (read tile by tile, maps written by region). */
  outOfCore?: boolean;
  /** Several templates in one pass: the template-index map's file (TEMPLATE_INDEX_FILE); absent with one template. */
  templateIndexMap?: string;
  /** What priors per position saved: rotation·tile steps matched and without them, voxels searched (absent: none). */
  priors?: MatchResult['priors'];
}

export interface WriteJobOptions {
  /** Input file names and extra parameters to record in job.json (e.g. the CLI's angular step). */
  inputs?: Record<string, unknown>;
  /** The search's description, stored verbatim so that later steps rebuild the search without reparsing flags. */
  search?: Record<string, unknown>;
  /** The version of tme (the CLI's); default the engine's. */
  tmeVersion?: string;
  /** angles.tsv as it is to be written (a merge keeps its shards' table verbatim); default: from result.rotations. */
  anglesTsv?: string;
  /** job.json's outOfCore (the target was read tile by tile); default: whether `result` is an out-of-core result (a
   *  merge whose maps were assembled by region says what its shards did). */
  outOfCore?: boolean;
  /** An out-of-core result's background maps, already in the job folder (a merge by slabs): recorded as given. */
  background?: BackgroundRecord;
}

/**
 * Writes a finished job: scores.mrc (float32), rotations.mrc (best rotation index as exact integers in float32,
 * −1 = none), angles.tsv, then job.json last (its presence marks a complete job), and removes the checkpoint.
 * Every file is written atomically.
 */
export function writeJob(dir: string, result: MatchResult | OutOfCoreMatchResult, options: WriteJobOptions = {}): JobRecord {
  fs.mkdirSync(dir, { recursive: true });
  if ('outOfCore' in result) {
    // An out-of-core run wrote its maps by region (matchTemplateOutOfCore): they must be this job's files.
    const wanted = [path.join(dir, JOB_FILES.scores), path.join(dir, JOB_FILES.rotations)];
    if (path.resolve(result.outOfCore.scores) !== path.resolve(wanted[0] as string) || path.resolve(result.outOfCore.rotations) !== path.resolve(wanted[1] as string)) {
      throw new TmeError('ERR_TME_INTERNAL', `the out-of-core maps were written to ${result.outOfCore.scores} and ${result.outOfCore.rotations}, not into the job folder`, { file: dir });
    }
  } else {
    const { scores } = result;
    writeMrc(path.join(dir, JOB_FILES.scores), scores);
    const indices = new Float32Array(result.indices.length);
    for (let i = 0; i < indices.length; i++) indices[i] = result.indices[i] as number;
    writeMrc(path.join(dir, JOB_FILES.rotations), { data: indices, shape: scores.shape, voxelSize: scores.voxelSize, origin: scores.origin });
    // Several templates are matched in memory only (prepareJob refuses them out of core).
    const templates = result.parameters.templates;
    if (templates !== undefined && templates.length > 1) {
      writeMrc(path.join(dir, TEMPLATE_INDEX_FILE), { data: templateIndexMap(result.indices, templates), shape: scores.shape, voxelSize: scores.voxelSize, origin: scores.origin });
    }
  }
  writeFileAtomic(path.join(dir, JOB_FILES.angles), options.anglesTsv ?? formatRotationTable(result.rotations));
  const templates = result.parameters.templates;
  let background: BackgroundRecord | undefined = 'outOfCore' in result ? options.background : undefined;
  const b = 'outOfCore' in result ? undefined : result.background;
  if (b?.kind === 'rotation-stats') {
    writeMrc(path.join(dir, BACKGROUND_FILES.rotationMean), b.rotationMean);
    writeMrc(path.join(dir, BACKGROUND_FILES.rotationStd), b.rotationStd);
    writeMrc(path.join(dir, BACKGROUND_FILES.normalised), b.normalised);
    background = {
      kind: b.kind, peakMap: BACKGROUND_FILES.normalised,
      files: { rotationMean: BACKGROUND_FILES.rotationMean, rotationStd: BACKGROUND_FILES.rotationStd, normalised: BACKGROUND_FILES.normalised },
    };
  } else if (b?.kind === 'random-phase') {
    writeMrc(path.join(dir, BACKGROUND_FILES.randomPhaseScores), b.randomPhaseScores);
    writeMrc(path.join(dir, BACKGROUND_FILES.corrected), b.corrected);
    background = {
      kind: b.kind, peakMap: BACKGROUND_FILES.corrected, seed: b.seed,
      files: { randomPhaseScores: BACKGROUND_FILES.randomPhaseScores, corrected: BACKGROUND_FILES.corrected },
    };
  }
  const record: JobRecord = {
    format: 'tme-job/1',
    tmeVersion: options.tmeVersion ?? ENGINE_VERSION,
    engineVersion: ENGINE_VERSION,
    createdAt: new Date().toISOString(),
    parameters: result.parameters,
    inputs: options.inputs ?? {},
    ...(options.search === undefined ? {} : { search: options.search }),
    device: { index: result.device.index, name: result.device.name, kind: result.device.kind, backend: result.device.backend },
    devices: result.devices.map((d) => ({ index: d.index, name: d.name, kind: d.kind })),
    timings: result.timings,
    statistics: {
      mean: result.stats.mean, std: result.stats.std, count: result.stats.count, voxelCount: result.stats.voxelCount,
      rotationCount: result.stats.rotationCount, scope: result.stats.scope,
      perRotationMax: Array.from(result.stats.perRotationMax),
      // Seven significant digits: plenty for a noise model, and job.json stays readable.
      ...(result.stats.perRotationMean && result.stats.perRotationStd ? {
        perRotationMean: Array.from(result.stats.perRotationMean, (v) => Number(v.toPrecision(7))),
        perRotationStd: Array.from(result.stats.perRotationStd, (v) => Number(v.toPrecision(7))),
      } : {}),
      // JSON keeps a double exactly (shortest round-trip form): a merge adds the very sums the shard counted.
      ...(result.parameters.rotationRange !== null && result.stats.perRotationSums ? {
        perRotationSums: {
          sum: Array.from(result.stats.perRotationSums.sum), sumSq: Array.from(result.stats.perRotationSums.sumSq),
          count: Array.from(result.stats.perRotationSums.count),
        },
      } : {}),
      ...(result.tileSums ? {
        perTileRotationSums: result.tileSums.map((t) => ({ tile: t.tile, sum: Array.from(t.sum), sumSq: Array.from(t.sumSq), count: Array.from(t.count) })),
      } : {}),
    },
    tilePlan: result.tilePlan,
    resumed: result.resumed,
    ...((options.outOfCore ?? 'outOfCore' in result) ? { outOfCore: true } : {}),
    files: JOB_FILES,
    ...(background ? { background } : {}),
    ...(templates !== undefined && templates.length > 1 ? { templateIndexMap: TEMPLATE_INDEX_FILE } : {}),
    ...(result.priors ? { priors: result.priors } : {}),
  };
  writeFileAtomic(path.join(dir, JOB_FILES.job), `${JSON.stringify(record, null, 2)}\n`);
  removeCheckpoint(dir);
  return record;
}

export interface JobData {
  /** Best score per voxel (target geometry). */
  scores: Volume;
  /** Best rotation index per voxel, −1 = none. */
  indices: Int32Array;
  /** The rotation set in search order: 9 values per rotation (xyz frame), rebuilt from angles.tsv. */
  rotations: Float64Array;
  /** RELION (rot, tilt, psi) per rotation, degrees. */
  angles: Float64Array;
  record: JobRecord;
  /** The map the job's background option made for peak calling (job.json's background.peakMap), when it has one. */
  background?: { kind: BackgroundRecord['kind']; peakMap: Volume; file: string };
}

/** One of a job's background maps, checked against scores.mrc's geometry. */
export function readBackgroundMap(dir: string, name: string, like: Volume): Volume {
  const file = path.join(dir, name);
  const v = readMrc(file);
  if (!v.shape.every((n, i) => n === like.shape[i])) {
    throw new TmeError('ERR_TME_MISMATCH', `shape (${v.shape.join(', ')}) differs from scores.mrc (${like.shape.join(', ')})`, { file });
  }
  return { data: v.data, shape: v.shape, voxelSize: v.voxelSize, origin: v.origin };
}

/** Why `dir` holds no finished job, in the words that tell the user what to do. */
function whyNoJob(dir: string): string {
  if (!fs.existsSync(dir)) return 'no such job folder';
  if (!fs.statSync(dir).isDirectory()) return 'is a file, not a job folder';
  if (fs.existsSync(path.join(dir, CHECKPOINT_FILE))) {
    return 'the job is not finished (no job.json, a checkpoint): continue it with the same command and --resume';
  }
  return 'holds no tme job (no job.json): name a folder that tme match or tme run wrote';
}

/** A finished job's record and rotation table, and where its maps are, without reading them (slab-wise peaks). */
export interface JobOnDisk {
  record: JobRecord;
  rotations: Float64Array;
  angles: Float64Array;
  /** scores.mrc's geometry (rotations.mrc and a background map have its shape). */
  shape: Zyx;
  voxelSize: Zyx;
  origin: Zyx;
  files: { scores: string; rotations: string };
  background?: { kind: BackgroundRecord['kind']; file: string; path: string };
}

/** A job folder's job.json, checked to be one (a folder without it is told why: no job, unfinished, a file). */
function readJobRecord(dir: string): JobRecord {
  const jobFile = path.join(dir, JOB_FILES.job);
  if (!fs.existsSync(jobFile)) {
    throw new TmeError('ERR_TME_IO', whyNoJob(dir), { file: dir });
  }
  let record: JobRecord;
  try {
    record = JSON.parse(fs.readFileSync(jobFile, 'utf8')) as JobRecord;
  } catch (err) {
    throw new TmeError('ERR_TME_FORMAT', `not valid JSON: ${(err as Error).message}`, { file: jobFile, cause: err });
  }
  if (record.format !== 'tme-job/1') throw new TmeError('ERR_TME_FORMAT', `unknown job format ${String(record.format)}`, { file: jobFile });
  return record;
}

/** Opens a finished job from job.json, angles.tsv and its maps' headers (the maps' shapes checked). */
export function openJob(dir: string): JobOnDisk {
  const record = readJobRecord(dir);
  const scoresFile = path.join(dir, JOB_FILES.scores);
  const rotationsFile = path.join(dir, JOB_FILES.rotations);
  const scores = readMrcHeader(scoresFile);
  const rot = readMrcHeader(rotationsFile);
  if (!rot.shape.every((n, i) => n === scores.shape[i])) {
    throw new TmeError('ERR_TME_MISMATCH', `shape (${rot.shape.join(', ')}) differs from scores.mrc (${scores.shape.join(', ')})`, { file: rotationsFile });
  }
  const anglesFile = path.join(dir, JOB_FILES.angles);
  const table = parseRotationTable(fs.readFileSync(anglesFile, 'utf8'), anglesFile);
  const b = record.background;
  let background: JobOnDisk['background'];
  if (b) {
    const file = path.join(dir, b.peakMap);
    const shape = readMrcHeader(file).shape;
    if (!shape.every((n, i) => n === scores.shape[i])) {
      throw new TmeError('ERR_TME_MISMATCH', `shape (${shape.join(', ')}) differs from scores.mrc (${scores.shape.join(', ')})`, { file });
    }
    background = { kind: b.kind, file: b.peakMap, path: file };
  }
  return {
    record, rotations: table.matrices, angles: table.angles, shape: scores.shape, voxelSize: scores.voxelSize, origin: scores.origin,
    files: { scores: scoresFile, rotations: rotationsFile }, ...(background ? { background } : {}),
  };
}

/** Reads a finished job directory back (for peak calling and export). */
export function readJob(dir: string): JobData {
  const record = readJobRecord(dir);
  const scoresFile = path.join(dir, JOB_FILES.scores);
  const rotationsFile = path.join(dir, JOB_FILES.rotations);
  const scores = readMrc(scoresFile);
  const rot = readMrc(rotationsFile);
  if (!rot.shape.every((n, i) => n === scores.shape[i])) {
    throw new TmeError('ERR_TME_MISMATCH', `shape (${rot.shape.join(', ')}) differs from scores.mrc (${scores.shape.join(', ')})`, { file: rotationsFile });
  }
  const anglesFile = path.join(dir, JOB_FILES.angles);
  const table = parseRotationTable(fs.readFileSync(anglesFile, 'utf8'), anglesFile);
  const n = table.angles.length / 3;
  const indices = new Int32Array(rot.data.length);
  for (let i = 0; i < indices.length; i++) {
    const v = rot.data[i] as number;
    if (!Number.isInteger(v) || v < -1 || v >= n) {
      throw new TmeError('ERR_TME_FORMAT', `voxel ${i} holds ${v}, not a rotation index in [−1, ${n - 1}]`, { file: rotationsFile });
    }
    indices[i] = v;
  }
  const best: Volume = { data: scores.data, shape: scores.shape, voxelSize: scores.voxelSize, origin: scores.origin };
  const b = record.background;
  return {
    scores: best, indices, rotations: table.matrices, angles: table.angles, record,
    ...(b ? { background: { kind: b.kind, peakMap: readBackgroundMap(dir, b.peakMap, best), file: b.peakMap } } : {}),
  };
}
