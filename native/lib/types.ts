import type { Zyx } from './fast-shape';

export type { Zyx };

/** Vulkan's physical device types, plus 'cpu' for the FFTW path and for lavapipe. */
export type DeviceType = 'discrete-gpu' | 'integrated-gpu' | 'virtual-gpu' | 'cpu' | 'other';

/** A device that can run a job: a Vulkan physical device or the FFTW3f CPU path (`id: 'cpu'`). */
/** How the CPU path transforms (see NativeMatchJob.cpuTransforms). */
export type CpuTransforms = 'pruned' | 'pruned-spectral-z' | 'pruned-direct-z' | 'full';

export interface DeviceInfo {
  /** 'cpu' for the FFTW path, else the Vulkan device index as a string. */
  id: string;
  /** What `runMatch({ device })` takes: the Vulkan index, or 'cpu'. */
  index: DeviceId;
  api: 'vulkan' | 'fftw';
  name: string;
  type: DeviceType;
  /** Device-local memory (largest heap) for Vulkan; host RAM free now (MemAvailable) for the CPU path. Bytes. */
  memoryBytes: number;
  /** Largest storage buffer one binding may address (Vulkan; lavapipe: 128 MiB). null for the CPU path. */
  maxStorageBufferRange: number | null;
  /** Vulkan API version "major.minor.patch", or the FFTW version string. */
  apiVersion: string;
  /** Vendor-specific driver version (Vulkan), null for the CPU path. */
  driverVersion: number | null;
  /** The Vulkan driver's own name and version string (VK_KHR_driver_properties), null where it has none and for
   *  the CPU path. */
  driver: { name: string; info: string } | null;
  /** Worker threads (CPU path: hardware concurrency), null for Vulkan. */
  threads: number | null;
}

/** The Vulkan loader and drivers this process runs on. */
export interface VulkanRuntime {
  /** The loader's file (null when none loaded), and whether it is a portable bundle's fallback copy. */
  loader: string | null;
  loaderBundled: boolean;
  /** The driver libraries (ICDs) the loader opened, by file. */
  drivers: string[];
  /** Why no Vulkan device is listed, or null. */
  error: string | null;
}

/** What `runMatch` and the FFT helpers take: a Vulkan device index or 'cpu'. */
export type DeviceId = number | 'cpu';

/** 'auto' (GPU if any, else FFTW), 'gpu' (any GPU or ERR_TME_NO_DEVICE), 'cpu' (FFTW), 'vulkan-cpu' (lavapipe), or an index. */
export type DeviceSpec = 'auto' | 'gpu' | 'cpu' | 'vulkan-cpu' | number;

/** The scores the native loop computes ('corr', 'cam', 'lcc' are mapped onto these by the engine). */
export type NativeScore = 'cc' | 'flc-sphere' | 'flc' | 'mcc';

/** Template rotation: trilinear or Catmull-Rom. */
export type Interpolation = 'linear' | 'cubic';

/** 'real': rotate the template box in real space and FFT it (2 FFTs per rotation); 'fourier': sample an
 *  oversampled template spectrum at Rᵀk (1 FFT per rotation, plus interpolation error at high frequency). */
export type RotationMode = 'real' | 'fourier';
/** How the Vulkan path stores the target's constant spectra (NativeMatchJob.spectrumPrecision). */
export type SpectrumPrecision = 'single' | 'half';

/**
 * One matching job. The tile-sized typed arrays (target, targetMask, statsMask, initialScores, initialIndices) are
 * read in place while the job runs: do not modify them until runMatch's promise settles.
 */
export interface NativeMatchJob {
  device: DeviceId;
  /** CPU path: worker threads, each evaluating whole rotations (default: hardware concurrency). */
  threads?: number;
  /** The tile, already padded to a fast FFT shape; correlation is circular on this grid. */
  target: Float32Array;
  targetShape: Zyx;
  template: Float32Array;
  /** Template box; its centre is box // 2 per axis. */
  templateShape: Zyx;
  /** templateShape, values 0..1. */
  mask: Float32Array;
  /**
   * The centred sub-box of the template box (its index s // 2 is the box's b // 2) outside which everything
   * correlated is zero: where the mask can reach after rotation (the template itself is rotated and filtered in the
   * whole box). The tile then needs only support − 1 voxels of padding. Default: the box.
   */
  supportShape?: Zyx;
  /** targetShape (mcc only); default: all ones. */
  targetMask?: Float32Array;
  /** targetShape: 1 where a voxel counts in the statistics (sum, sumSq, count, per-rotation max), 0 where it does not
   *  (padding, tile overlap, outside a target mask). Default: every voxel counts. */
  statsMask?: Uint8Array;
  /**
   * The template's Fourier filter (wedge, CTF, band-pass, whitening): real, half-spectrum layout (nz, ny, nx/2+1) of
   * `filterShape`. Each rotated template is filtered on that grid (box centre at index 0) BEFORE it is normalised
   * under its mask, so every tile correlates the same kernel, supported on the box. Not with rotationMode 'fourier'.
   */
  filter?: Float32Array;
  /** The filter's grid, ≥ templateShape per axis (fast FFT sizes). Default: templateShape. */
  filterShape?: Zyx;
  /**
   * The whole target's mean and variance (pass them so that tiles agree; default: the tile's own). Normalised scores
   * correlate the target minus the mean, and a voxel whose local variance under the mask is at most 1e-4 × the
   * variance (σ below 1 % of the target's) is flat and scores 0.
   */
  targetMean?: number;
  targetVariance?: number;
  /** The voxels the caller will read (a tile's core), in tile coordinates. A path may leave the maps outside it as
   *  they were (the CPU path skips those planes, rows and voxels), and none of them counts in the statistics.
   *  Default: the whole tile. */
  outputRegion?: { start: Zyx; shape: Zyx };
  /** 9·n, row-major, xyz frame, active template→tomogram. */
  rotations: Float64Array;
  /** Batch range [rotationStart, rotationEnd) into `rotations` (default: all). */
  rotationStart?: number;
  rotationEnd?: number;
  /** Continue a previous batch: its maps (targetShape). The call writes its own maps into these arrays and returns
   *  them (no new tile-sized pair per call; on the CPU as it goes, so a call that fails or is cancelled leaves them
   *  part-way): keep a copy if the old contents are still needed. */
  initialScores?: Float32Array;
  initialIndices?: Int32Array;
  /** Default 'flc-sphere'. */
  score?: NativeScore;
  /** Default 'linear' (trilinear); 'cubic' is Catmull-Rom. */
  interpolation?: Interpolation;
  /** Default 'real': rotate the box in real space; 'fourier' samples the template's oversampled spectrum (cc, flc-sphere). */
  rotationMode?: RotationMode;
  /** Fourier mode: the template spectrum grid is nextFast(oversampling × box) per axis. Default 2. */
  fourierOversampling?: number;
  /** CPU path: 'pruned' (default) skips the work the placed template's zeros, the output region and a band limit
   *  allow (the slab correlator for cc, flc-sphere and flc; a pruned R2C for mcc with a small box); 'full' runs
   *  FFTW's whole 3D transforms for every score. The maps agree to ~1e-6; 'full' is for comparisons. In the slab
   *  correlator the z products run as transforms or as direct sums over the box's z rows, whichever the cost model
   *  says is faster; 'pruned-spectral-z' / 'pruned-direct-z' force one (comparisons, benchmarks). */
  cpuTransforms?: CpuTransforms;
  /** Vulkan path: rotations recorded per command buffer (1..32); default: adapted so one holds ~20 ms of work. */
  rotationsPerSubmit?: number;
  /** Vulkan path: the target's constant spectra on the device as 'single' (float32, default) or 'half' (float16
   *  pairs: half their memory and read traffic in the per-rotation products). The CPU path refuses 'half'. */
  spectrumPrecision?: SpectrumPrecision;
  /** Keep this tile's set-up (its transforms and local statistics) for the next call on the same inputs: a run in
   *  batches of rotations then pays it once. Inputs are compared by content; the next call on the same device that does
   *  not ask to keep it, or that has other inputs, frees it. Each device keeps one (calls on several devices at once
   *  keep theirs); concurrent calls on one device share it. Default false. */
  keepSetup?: boolean;
  /** Where a Vulkan job makes the tile's set-up (its target spectra and flc-sphere's σ map): 'device' (default: the
   *  target uploaded once, the transforms run by VkFFT) or 'host' (FFTW, then uploaded: the CPU path's way, kept for
   *  comparisons). The CPU path refuses 'device'. */
  setupOn?: 'device' | 'host';
  /** Also return, per voxel, Σ score and Σ score² over this call's rotations (voxelSum, voxelSumSq): the voxel's mean
   *  and σ over rotations, for background normalisation. Two more float maps of targetShape. Default false. */
  voxelStats?: boolean;
}

/**
 * Rotations re-scored at single voxels (orientation refinement): query q is the target's box-sized patch at a voxel x
 * (the target at [x − c, x − c + box), c = box // 2) and the rotations [offsets[q], offsets[q + 1]). Each score is
 * the search's score at x for that rotation (same rotation, filter, normalisation, flat rule), by direct sums.
 */
export interface NativeOrientationJob {
  /** Worker threads (default: hardware concurrency). */
  threads?: number;
  template: Float32Array;
  templateShape: Zyx;
  mask: Float32Array;
  filter?: Float32Array;
  filterShape?: Zyx;
  /** 'cc', 'flc-sphere' or 'flc'. */
  score: NativeScore;
  interpolation?: Interpolation;
  targetMean?: number;
  targetVariance?: number;
  /** queries × templateShape voxels. */
  patches: Float32Array;
  /** 9 per rotation, xyz frame, active. */
  rotations: Float64Array;
  /** queries + 1, starting at 0, non-decreasing; the last is the rotation count. */
  offsets: Int32Array;
}

export interface NativeMatchStats {
  /** Σ score over all voxels of the tile and all rotations of the batch (float64 accumulation). */
  sum: number;
  sumSq: number;
  /** voxels × rotations. */
  count: number;
  /** Maximum score over the tile, per rotation of the batch. */
  perRotationMax: Float32Array;
  /** Σ score and Σ score² over the counted voxels, per rotation of the batch (float64 on the host). */
  perRotationSum: Float64Array;
  perRotationSumSq: Float64Array;
}

export interface NativeMatchResult {
  /** Best score per voxel (targetShape); -Infinity where nothing was evaluated. */
  scores: Float32Array;
  /** Index into `rotations` of the best rotation; -1 where nothing was evaluated; ties → lowest index. */
  indices: Int32Array;
  stats: NativeMatchStats;
  /** With voxelStats: Σ score and Σ score² per voxel over the call's rotations (targetShape, float32). Inside
   *  outputRegion only: outside it they are 0 or partial sums, depending on the path. */
  voxelSum?: Float32Array;
  voxelSumSq?: Float32Array;
  /**
   * Milliseconds: setup (inputs, target spectra, local statistics), FFT planning (0 when cached), the rotation
   * loop, loop / rotations (throughput with all workers), and the fastest and median single rotation on one
   * worker (robust against a busy machine).
   */
  timings: {
    setupMs: number;
    planMs: number;
    loopMs: number;
    perRotationMs: number;
    rotationMinMs: number;
    rotationMedianMs: number;
  };
  /** Human-readable name of the device that ran the job. */
  device: string;
  /** Whether the tile's set-up was the one the previous call kept (keepSetup). */
  setupReused: boolean;
}

/** A native call's progress: rotations done of those in the call. */
export interface BatchProgress {
  done: number;
  total: number;
}

export interface RunMatchOptions {
  /** Called on the JS thread with the latest progress (coalesced: not once per rotation when the loop is fast). */
  onProgress?: (progress: BatchProgress) => void;
  /** Aborting rejects with ERR_TME_CANCELLED within one rotation. */
  signal?: AbortSignal;
}

export interface MatchMemoryQuery {
  device: DeviceId;
  targetShape: Zyx;
  templateShape: Zyx;
  /** As in the job; default the box. */
  supportShape?: Zyx;
  score?: NativeScore;
  rotationMode?: RotationMode;
  threads?: number;
  fourierOversampling?: number;
  /** Whether a filter / target mask / initial maps will be passed (they take memory). Default true/false/false. */
  filter?: boolean;
  targetMask?: boolean;
  initialMaps?: boolean;
  statsMask?: boolean;
  /** Whether the job keeps per-voxel sums over rotations (NativeMatchJob.voxelStats). Default false. */
  voxelStats?: boolean;
  cpuTransforms?: CpuTransforms;
  /** As in the job. Default 'single'. */
  spectrumPrecision?: SpectrumPrecision;
  /** As in the job. Default 'device' on Vulkan. */
  setupOn?: 'device' | 'host';
}

export interface MatchMemoryEstimate {
  /** On the Vulkan device; 0 for the CPU path. */
  deviceBytes: number;
  /** Host RAM for the job (all of it for the CPU path). */
  hostBytes: number;
  /** The largest single storage buffer (checked against maxStorageBufferRange). */
  largestBufferBytes: number;
  /** 0.9 × device-local heap (Vulkan) or 0.9 × available host RAM (CPU). */
  limitBytes: number;
  /** maxStorageBufferRange (Vulkan), 0 for the CPU path. */
  bufferLimitBytes: number;
  /** CPU workers that fit (each holds its own FFT buffers). */
  workers: number;
  fits: boolean;
  /** Why it does not fit, with the numbers; null when it fits. */
  reason: string | null;
  forwardFftsPerRotation: number;
  inverseFftsPerRotation: number;
}

export interface FftBench {
  /** Plan creation (0 when the plan was cached). */
  planMs: number;
  /** Minimum over repeats of one R2C + C2R pair, and the median. */
  pairMs: number;
  pairMedianMs: number;
  r2cMs: number;
  c2rMs: number;
}

export interface NativeVersions {
  fftw: string;
  vkfft: string;
  napi: number;
  /** Where FFTW wisdom is kept ('' when TME_FFTW_WISDOM=off). */
  fftwWisdom: string;
}
