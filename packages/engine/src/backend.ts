import type { Zyx } from '@tme/formats';

/**
 * The contract between the engine and whatever runs the correlation loop: the native addon (@tme/native) or the
 * direct-summation reference (reference-backend.ts). One call processes one tile and a range of rotations.
 */

/** The scores a backend computes; the engine maps the user-facing names (lcc, corr, cam) onto these. */
export type BackendScore = 'cc' | 'flc-sphere' | 'flc' | 'mcc';

export type Interpolation = 'linear' | 'cubic';

/** 'real': rotate the template box in real space and FFT it (2 FFTs per rotation); 'fourier': sample an
 *  oversampled template spectrum at Rᵀk (1 FFT per rotation, plus interpolation error at high frequency). */
export type RotationMode = 'real' | 'fourier';

/** What a backend call takes: a (Vulkan) device index, or 'cpu' for the CPU path. */
export type DeviceId = number | 'cpu';

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

/** What `--device` accepts: pick automatically (a GPU, else the CPU path), any GPU, the CPU path, lavapipe
 *  ('vulkan-cpu'), or a device index. */
export type DeviceSpec = 'auto' | 'gpu' | 'cpu' | 'vulkan-cpu' | number;

export interface BackendMatchJob {
  device: DeviceId;
  /** CPU threads for the CPU path; default: the backend's choice. */
  threads?: number;
  /** The tile, already padded to a fast FFT shape; the correlation is circular on it. */
  target: Float32Array;
  targetShape: Zyx;
  template: Float32Array;
  templateShape: Zyx;
  /** Template mask on the template box (binary or soft, values in [0, 1]). */
  mask: Float32Array;
  /** Target mask on the tile (mcc only). */
  targetMask?: Float32Array;
  /** Voxels of the tile that count in `stats` (1 = count): the tile's core, inside the target mask. Default: all. */
  statsMask?: Uint8Array;
  /** Real half-spectrum (nz, ny, nx/2+1) of targetShape, multiplied into the rotated template's spectrum. */
  filter?: Float32Array;
  /** The voxels the caller reads (the tile's core), tile coordinates: a backend may leave the maps outside as they
   *  were, and none of them counts in `stats`. Default: the whole tile. */
  outputRegion?: { start: Zyx; shape: Zyx };
  /** 9 values per rotation, row-major, xyz frame, active template→tomogram. */
  rotations: Float64Array;
  /** First rotation (inclusive) and last (exclusive) to process, as indices into `rotations`. */
  rotationStart: number;
  rotationEnd: number;
  /** Best scores/indices so far (tile shape); a rotation replaces them only where its score is strictly greater. */
  initialScores?: Float32Array;
  initialIndices?: Int32Array;
  score: BackendScore;
  interpolation: Interpolation;
  rotationMode: RotationMode;
}

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
  score: BackendScore;
  rotationMode: RotationMode;
  /** Whether a Fourier filter is multiplied in. */
  filter: boolean;
  device: DeviceId;
  /** CPU worker threads (each holds its own work buffers); default: all cores. */
  threads?: number;
}

/** Everything the engine needs from a correlation backend. */
export interface MatchBackend {
  readonly name: string;
  /** What the backend honours beyond the core contract; absent fields mean supported. */
  readonly capabilities?: { statsMask?: boolean; perRotationSums?: boolean };
  listDevices(): DeviceInfo[];
  /** The device for a spec; throws ERR_TME_NO_DEVICE when none fits. */
  pickDevice(spec: DeviceSpec): DeviceId;
  /** The smallest shape ≥ `shape` per axis that the backend's FFT handles fast. */
  nextFastShape(shape: Zyx): Zyx;
  /** Bytes the backend allocates on the device to match one tile of `tileShape`; Infinity when the tile cannot
   *  run there at all (e.g. a buffer larger than the device addresses). */
  estimateMemory(query: MemoryQuery): number;
  runMatch(job: BackendMatchJob, options?: BackendRunOptions): Promise<BackendMatchResult>;
}
