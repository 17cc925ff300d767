import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AtomicFileWriter, TmeError } from '@tme/formats';

/** The checkpoint's file name inside the job directory (removed when the job completes). */
export const CHECKPOINT_FILE = 'checkpoint.bin';
// Version 1 records the current tile's finished rotations as a prefix (`rotation`); version 2, written only when they
// are not one (a tile split across devices), as ranges. A prefix keeps version 1, which older tme versions resume.
const MAGIC_PREFIX = 'TMECKPT1';
const MAGIC_RANGES = 'TMECKPT2';
// Version 3: a search out of core, after each finished tile. Its maps are not in the checkpoint (no voxels): they are
// the partial map files (OUT_OF_CORE_PARTIAL), which hold every finished tile's core. A new magic, so that no other
// version takes it for a checkpoint of empty maps.
const MAGIC_OUT_OF_CORE = 'TMECKPT3';

/** Out of core, the maps being assembled in the job folder: named apart from `.name.<pid>.<n>.tmp`, so that the
 *  next run's clean-up of a killed run's temporary files keeps them for --resume. */
export const OUT_OF_CORE_PARTIAL = { scores: 'scores.mrc.part', rotations: 'rotations.mrc.part' } as const;

/** An out-of-core checkpoint's size, bytes: its header (under 1 KiB) and per rotation Σ, Σ², count (float64) and the
 *  maximum (float32); its maps are the partial map files. */
export function outOfCoreCheckpointBytes(rotations: number): number {
  return 1024 + 28 * rotations;
}

/** Rotation ranges [start, end), sorted and disjoint. */
export type RotationRanges = Array<[start: number, end: number]>;

/**
 * The state of a job between two batches of rotations: everything a resumed run needs to continue as if it had
 * never stopped. Maps are full target size; tiles before `tile` are done, of tile `tile` the rotations in `done`.
 */
export interface CheckpointState {
  /** Identifies the inputs and parameters; a checkpoint is only resumed by the same job. */
  key: string;
  tile: number;
  /** The rotations of tile `tile` merged into the maps and statistics. */
  done: RotationRanges;
  elapsedMs: number;
  scores: Float32Array;
  indices: Int32Array;
  rotationSum: Float64Array;
  rotationSumSq: Float64Array;
  rotationCount: Float64Array;
  rotationMax: Float32Array;
  /** background 'rotation-stats': Σ score and Σ score² per voxel over the rotations done (full target size). */
  voxelSum?: Float32Array;
  voxelSumSq?: Float32Array;
  /** Statistics a backend reported only per batch (not per rotation). */
  looseSum: number;
  looseSumSq: number;
  looseCount: number;
  /** A tile shard's finished tiles' per-rotation sums (the rotation sums above then hold the current tile only). */
  tileSums?: Array<{ tile: number; sum: number[]; sumSq: number[]; count: number[] }>;
  /** Out of core (version 3): what the finished tiles gave besides their maps (no voxels here: tiles before `tile`
   *  are in the partial map files). bestScore null before any. */
  outOfCore?: { bestScore: number | null; voxelCount: number };
}

interface Header {
  key: string;
  tile: number;
  /** Version 1: the current tile's rotations [0, rotation) are done. */
  rotation?: number;
  /** Version 2: its done ranges. */
  done?: RotationRanges;
  elapsedMs: number;
  voxels: number;
  rotations: number;
  looseSum: number;
  looseSumSq: number;
  looseCount: number;
  /** Whether the per-voxel sums follow the maps (absent: no). */
  voxelStats?: boolean;
  /** A tile shard's finished tiles (JSON keeps each double exactly). */
  tileSums?: CheckpointState['tileSums'];
  outOfCore?: CheckpointState['outOfCore'];
  /** Version 3: SHA-256 of the arrays after the header. */
  sha256?: string;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function digestOf(arrays: readonly ArrayBufferView[]): string {
  const h = createHash('sha256');
  for (const a of arrays) h.update(bytesOf(a));
  return h.digest('hex');
}

/** Writes the checkpoint in one atomic rename: a reader sees the previous checkpoint or this one, whole. */
export function writeCheckpoint(dir: string, state: CheckpointState): void {
  const first = state.done[0];
  const prefix = state.done.length === 0 || (state.done.length === 1 && first !== undefined && first[0] === 0);
  const magic = state.outOfCore ? MAGIC_OUT_OF_CORE : prefix ? MAGIC_PREFIX : MAGIC_RANGES;
  // Out of core the maps held are a tile's, and the finished tiles' are in the partial map files: none here.
  const scores = state.outOfCore ? new Float32Array(0) : state.scores;
  const indices = state.outOfCore ? new Int32Array(0) : state.indices;
  const sums = state.voxelSum && state.voxelSumSq ? [state.voxelSum, state.voxelSumSq] : [];
  const arrays = [state.rotationSum, state.rotationSumSq, state.rotationCount, scores, indices, state.rotationMax, ...sums];
  // Version 3 is small: a digest of its arrays refuses one damaged on the disk rather than resume from wrong sums.
  const digest = state.outOfCore ? { sha256: digestOf(arrays) } : {};
  const header: Header = {
    key: state.key, tile: state.tile, ...(prefix ? { rotation: first?.[1] ?? 0 } : { done: state.done }), elapsedMs: state.elapsedMs,
    voxels: scores.length, rotations: state.rotationSum.length, ...digest,
    looseSum: state.looseSum, looseSumSq: state.looseSumSq, looseCount: state.looseCount,
    ...(state.voxelSum ? { voxelStats: true } : {}),
    ...(state.tileSums ? { tileSums: state.tileSums } : {}),
    ...(state.outOfCore ? { outOfCore: state.outOfCore } : {}),
  };
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header so every array starts 8-byte aligned.
  const pad = (8 - ((magic.length + 4 + json.length) % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  const writer = new AtomicFileWriter(path.join(dir, CHECKPOINT_FILE));
  try {
    writer.write(Buffer.from(magic, 'ascii'));
    writer.write(length);
    writer.write(json);
    for (const a of arrays) {
      writer.write(bytesOf(a));
    }
    writer.commit();
  } catch (err) {
    writer.abort();
    throw err;
  }
}

/**
 * The checkpoint in `dir`, or undefined when there is none. Throws ERR_TME_MISMATCH for another job's checkpoint (and
 * for one of the other path: out of core or in memory), ERR_TME_FORMAT for a damaged one.
 */
export function readCheckpoint(dir: string, key: string, voxels: number, rotations: number, outOfCore = false): CheckpointState | undefined {
  const file = path.join(dir, CHECKPOINT_FILE);
  if (!fs.existsSync(file)) return undefined;
  const buf = fs.readFileSync(file);
  const bad = (why: string): TmeError => new TmeError('ERR_TME_FORMAT', `not a tme checkpoint: ${why}`, { file });
  const magic = buf.length < 12 ? '' : buf.toString('ascii', 0, 8);
  if (magic !== MAGIC_PREFIX && magic !== MAGIC_RANGES && magic !== MAGIC_OUT_OF_CORE) throw bad('wrong magic');
  if ((magic === MAGIC_OUT_OF_CORE) !== outOfCore) {
    // The path follows the memory free at the start: a resume must find the same (give the first run's --memory).
    throw new TmeError('ERR_TME_MISMATCH', outOfCore
      ? 'the checkpoint is of a search in memory but this run matches out of core (less memory free now): give --memory as large as the first run had, or --force to start over'
      : 'the checkpoint is of a search out of core but this run matches in memory (more memory free now): give the --memory the first run had, or --force to start over', { file });
  }
  const headerLength = buf.readUInt32LE(8);
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + headerLength)) as Header;
  } catch (err) {
    throw bad('unreadable header');
  }
  if (typeof header !== 'object' || header === null) throw bad('unreadable header');
  if (header.key !== key) {
    throw new TmeError('ERR_TME_MISMATCH', 'the checkpoint was written by a job with other inputs or parameters; use --force to start over', { file });
  }
  if (header.voxels !== voxels || header.rotations !== rotations) throw bad('sizes do not match the job');
  const ooc = header.outOfCore;
  if (outOfCore && !(ooc !== undefined && Number.isInteger(ooc.voxelCount) && ooc.voxelCount >= 0 && (ooc.bestScore === null || Number.isFinite(ooc.bestScore))
    && Number.isInteger(header.tile) && header.tile >= 0 && (header.rotation ?? 0) === 0)) {
    throw bad('unreadable out-of-core record');
  }
  const done = magic !== MAGIC_RANGES ? ((header.rotation ?? 0) > 0 ? [[0, header.rotation ?? 0]] as RotationRanges : []) : header.done;
  if (!validRanges(done, rotations)) throw bad('unreadable rotation ranges');
  const expected = 12 + headerLength + 8 * 3 * rotations + 4 * 2 * voxels + 4 * rotations + (header.voxelStats ? 8 * voxels : 0);
  if (buf.length !== expected) throw bad(`${buf.length} bytes, expected ${expected}`);
  if (outOfCore) {
    const h = createHash('sha256');
    h.update(buf.subarray(12 + headerLength));
    if (h.digest('hex') !== header.sha256) throw bad('its sums do not match their digest (damaged)');
  }
  // Copy into fresh, aligned arrays.
  let offset = 12 + headerLength;
  const take = (bytes: number): ArrayBuffer => {
    const out = new ArrayBuffer(bytes);
    new Uint8Array(out).set(buf.subarray(offset, offset + bytes));
    offset += bytes;
    return out;
  };
  const rotationSum = new Float64Array(take(8 * rotations));
  const rotationSumSq = new Float64Array(take(8 * rotations));
  const rotationCount = new Float64Array(take(8 * rotations));
  const scores = new Float32Array(take(4 * voxels));
  const indices = new Int32Array(take(4 * voxels));
  const rotationMax = new Float32Array(take(4 * rotations));
  const voxelSums = header.voxelStats ? { voxelSum: new Float32Array(take(4 * voxels)), voxelSumSq: new Float32Array(take(4 * voxels)) } : {};
  return {
    ...voxelSums,
    key, tile: header.tile, done, elapsedMs: header.elapsedMs, scores, indices,
    rotationSum, rotationSumSq, rotationCount, rotationMax,
    looseSum: header.looseSum, looseSumSq: header.looseSumSq, looseCount: header.looseCount,
    ...(header.tileSums ? { tileSums: header.tileSums } : {}),
    ...(ooc ? { outOfCore: ooc } : {}),
  };
}

function validRanges(done: unknown, rotations: number): done is RotationRanges {
  if (!Array.isArray(done)) return false;
  let last = 0;
  for (const r of done as unknown[]) {
    if (!Array.isArray(r) || r.length !== 2) return false;
    const [a, b] = r as unknown[];
    if (!(Number.isInteger(a) && Number.isInteger(b) && (a as number) >= last && (b as number) > (a as number) && (b as number) <= rotations)) return false;
    last = b as number;
  }
  return true;
}

export function removeCheckpoint(dir: string): void {
  fs.rmSync(path.join(dir, CHECKPOINT_FILE), { force: true });
}
