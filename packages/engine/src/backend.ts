import type { Zyx } from '@tme/formats';
import type { DeviceId, DeviceSpec, Interpolation, NativeMatchJob, NativeScore, RotationMode, SpectrumPrecision } from '@tme/native';

// Defined once, in @tme/native (the loop's own contract), and re-exported here under the engine's names.
export type { DeviceId, DeviceSpec, Interpolation, RotationMode, SpectrumPrecision };

/**
 * The contract between the engine and whatever runs the correlation loop: the native addon (@tme/native) or the
 * direct-summation reference (reference-backend.ts). One call processes one tile and a range of rotations.
 */

/** The scores a backend computes; the engine maps the user-facing names (lcc, corr, cam) onto these. */
export type BackendScore = NativeScore;

/** A device as the backend lists it. A numeric `index` is what `--device N` selects. */
export interface DeviceInfo {
  index: DeviceId;
  name: string;
  /** 'gpu' for a GPU, 'cpu' for the CPU path and for CPU-backed Vulkan devices (lavapipe). */
  kind: 'gpu' | 'cpu';
  /** Memory the backend may use on this device, in bytes. */
  memoryBytes: number;
  /** Free-form backend detail (driver, Vulkan API version, FFT library). */
  detail?: string;
}

/** What a job runs on: one device, or several — 'gpu:all' (every GPU the backend lists) or a list (one entry per
 *  worker; a device listed twice runs two) — that split each tile's rotations between them. */
export type DeviceSelection = DeviceSpec | 'gpu:all' | readonly DeviceSpec[];

/** Whether a selection is a list of devices. */
export function isDeviceList(selection: DeviceSelection): selection is readonly DeviceSpec[] {
  return Array.isArray(selection);
}

/** What a tile's transforms cost: predicted time per fast shape with the (largest) core it scores, undefined where
 *  unknown. */
export interface TileCostModel {
  cost: (fastShape: Zyx, coreShape: Zyx) => number | undefined;
}

/**
 * One backend call: the native addon's job (its fields are documented on NativeMatchJob), with the batch range, score,
 * interpolation and rotation mode always given, and without the native path's tuning options.
 */
export type BackendMatchJob = Omit<
  NativeMatchJob,
  'rotationStart' | 'rotationEnd' | 'score' | 'interpolation' | 'rotationMode' | 'fourierOversampling' |
  'cpuTransforms' | 'rotationsPerSubmit'
> & {
  rotationStart: number;
  rotationEnd: number;
  score: BackendScore;
  interpolation: Interpolation;
  rotationMode: RotationMode;
};

export interface BackendMatchStats {
  /** Σ score and Σ score² over every counted voxel of every processed rotation (float64). */
  sum: number;
  sumSq: number;
  count: number;
  /** Per processed rotation (index − rotationStart): the maximum score over counted voxels (−Infinity if none). */
  perRotationMax: Float32Array;
  /** Per processed rotation: Σ score and Σ score² over counted voxels. Optional; makes merged statistics
   *  independent of how rotations are batched. */
  perRotationSum?: Float64Array;
  perRotationSumSq?: Float64Array;
}

export interface BackendMatchResult {
  scores: Float32Array;
  /** Index of the best rotation; −1 where no rotation has been evaluated; ties: the lowest index. */
  indices: Int32Array;
  stats: BackendMatchStats;
  /** With job.voxelStats: Σ score and Σ score² per voxel over the call's rotations (inside outputRegion). */
  voxelSum?: Float32Array;
  voxelSumSq?: Float32Array;
  timings: Record<string, number>;
  device: string;
}

export interface BackendProgress {
  done: number;
  total: number;
}

export interface BackendRunOptions {
  onProgress?: (progress: BackendProgress) => void;
  signal?: AbortSignal;
}

export interface MemoryQuery {
  /** The fast (FFT) shape of one tile. */
  tileShape: Zyx;
  templateShape: Zyx;
  /** The template's support (BackendMatchJob.supportShape); default the box. */
  supportShape?: Zyx;
  score: BackendScore;
  rotationMode: RotationMode;
  /** Whether a Fourier filter is multiplied in. */
  filter: boolean;
  device: DeviceId;
  /** CPU worker threads (each holds its own work buffers); default: all cores. */
  threads?: number;
  /** Whether the calls keep per-voxel sums over rotations (two more float maps per tile and worker). */
  voxelStats?: boolean;
  /** As in the job (BackendMatchJob.spectrumPrecision); default 'single'. */
  spectrumPrecision?: SpectrumPrecision;
}

/** Everything the engine needs from a correlation backend. */
export interface MatchBackend {
  readonly name: string;
  /** What the backend honours beyond the core contract; absent fields mean supported. */
  readonly capabilities?: { statsMask?: boolean; perRotationSums?: boolean; voxelStats?: boolean };
  listDevices(): DeviceInfo[];
  /** The device for a spec; throws ERR_TME_NO_DEVICE when none fits. */
  pickDevice(spec: DeviceSpec): DeviceId;
  /** The smallest shape ≥ `shape` per axis that the backend's FFT handles fast. */
  nextFastShape(shape: Zyx): Zyx;
  /** A measured model of a tile's transform cost on `device` (tiling.ts); none: the planner pads by half the support
   *  wherever it may. */
  costModel?(device: DeviceId): TileCostModel | undefined;
  /** Bytes the backend allocates on the device to match one tile of `tileShape`; Infinity when the tile cannot
   *  run there at all (e.g. a buffer larger than the device addresses). */
  estimateMemory(query: MemoryQuery): number;
  runMatch(job: BackendMatchJob, options?: BackendRunOptions): Promise<BackendMatchResult>;
  /** Frees what a call with keepSetup kept on `device` (default: on every device), when the run ends before the call
   *  that would not keep it. */
  releaseKeptSetup?(device?: DeviceId): void;
}
