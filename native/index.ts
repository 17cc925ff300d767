/**
 * @tme/native: the typed facade over tme.node, the only place that loads the addon. The binding is loaded on
 * first use, so importing this module never fails; a missing or broken addon surfaces as one
 * ERR_TME_NATIVE_LOAD error listing the causes and fixes. Native errors carry a `code`; the facade re-throws
 * them as TmeError with the caller's stack.
 */
import * as path from 'node:path';
import { TmeError, TME_ERROR_CODES, type TmeErrorCode } from '@tme/errors';
import { chooseDevice } from './lib/device-choice';
import { nextFastShape, nextFastSize, isFastSize, type Zyx } from './lib/fast-shape';
import type {
  DeviceId,
  DeviceInfo,
  DeviceSpec,
  DeviceType,
  FftBench,
  MatchMemoryEstimate,
  MatchMemoryQuery,
  BatchProgress,
  NativeMatchJob,
  NativeOrientationJob,
  NativeMatchResult,
  NativeVersions,
  RunMatchOptions,
  VulkanRuntime,
} from './lib/types';

export { nextFastShape, nextFastSize, isFastSize, chooseDevice };
export type * from './lib/types';

interface NativeListing {
  vulkan: Array<{
    index: number;
    id: string;
    name: string;
    type: DeviceType;
    memoryBytes: number;
    maxStorageBufferRange: number;
    apiVersion: string;
    driverVersion: number;
    driverName: string;
    driverInfo: string;
  }>;
  vulkanError: string | null;
  vulkanLoader: string | null;
  vulkanLoaderBundled: boolean;
  vulkanDrivers: string[];
  hardwareConcurrency: number;
  hostAvailableBytes: number;
  hostTotalBytes: number;
}

/** The raw binding exported by tme.node (C++ in src/addon.cc). */
export interface Binding {
  runMatch(job: NativeMatchJob, onProgress?: (p: BatchProgress) => void): { promise: Promise<NativeMatchResult>; cancel(): void };
  scoreOrientations(job: NativeOrientationJob): { promise: Promise<Float32Array>; cancel(): void };
  listDevices(): NativeListing;
  hostMemory(procRoot?: string, cgroupRoot?: string): HostMemory;
  estimateMatchMemory(query: MatchMemoryQuery): MatchMemoryEstimate;
  fftForward(device: DeviceId, data: Float32Array, shape: Zyx, options?: { threads?: number }): Float32Array;
  fftInverse(device: DeviceId, spectrum: Float32Array, shape: Zyx, options?: { threads?: number }): Float32Array;
  filterVolume(data: Float32Array, shape: Zyx, filter: Float32Array, options?: FilterVolumeOptions): Float32Array;
  benchFftPair(device: DeviceId, shape: Zyx, repeats: number, threads?: number): FftBench;
  fftPlanes(inverse: boolean, real: Float32Array, spectrum: Float32Array, shape: Zyx, threads: number): void;
  filterColumns(data: Float32Array, filter: Float32Array, n: number, threads: number): void;
  releaseKeptSetup(device?: DeviceId): void;
  versions(): NativeVersions;
}

let loaded: Binding | undefined;

function candidates(): string[] {
  // TME_NATIVE_PATH: an explicit addon (a packaged build); then it is the only one tried.
  const fromEnv = process.env['TME_NATIVE_PATH'];
  if (fromEnv) return [fromEnv];
  return [
    path.join(__dirname, 'build', 'Release', 'tme.node'), // running from source (jest)
    path.join(__dirname, '..', 'build', 'Release', 'tme.node'), // running from dist/
    path.join(__dirname, 'tme.node'), // the portable bundle (pnpm bundle): beside the one-file CLI
  ];
}

/** Loads tme.node once; throws ERR_TME_NATIVE_LOAD listing every attempt and the usual fixes. */
export function loadBinding(): Binding {
  if (loaded) return loaded;
  const causes: string[] = [];
  for (const file of candidates()) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require(file) as Binding;
      return loaded;
    } catch (err) {
      const message = (err as { message?: unknown } | null)?.message;
      causes.push(`${file}: ${typeof message === 'string' ? message.split('\n')[0] : String(err)}`);
    }
  }
  throw new TmeError(
    'ERR_TME_NATIVE_LOAD',
    `the native addon tme.node could not be loaded. Tried: ${causes.join('; ')}. Possible fixes: build it ` +
      '(cd native && pnpm run build); install the runtime library FFTW3f (Debian: libfftw3-single3); ' +
      'use Node ≥ 20 (Node-API 8); or point TME_NATIVE_PATH at a built tme.node',
  );
}

/** True when the addon loads (no throw). */
export function isNativeAvailable(): boolean {
  try {
    loadBinding();
    return true;
  } catch {
    return false;
  }
}

function isCode(code: unknown): code is TmeErrorCode {
  return typeof code === 'string' && (TME_ERROR_CODES as readonly string[]).includes(code);
}

/** Re-wraps a native error as TmeError, keeping the caller's stack (recorded before the native call). */
function toTmeError(err: unknown, callSite: Error): unknown {
  if (err instanceof TmeError) return err;
  // Native errors come from the addon's realm: test for the shape, not `instanceof Error` (jest runs tests in
  // another realm).
  if (typeof err !== 'object' || err === null || typeof (err as { message?: unknown }).message !== 'string') return err;
  const { code, message } = err as { code?: unknown; message: string };
  const wrapped = new TmeError(isCode(code) ? code : 'ERR_TME_INTERNAL', message, { cause: err });
  const callerFrames = (callSite.stack ?? '').split('\n').slice(1).join('\n');
  wrapped.stack = `${wrapped.name} [${wrapped.code}]: ${wrapped.message}\n${callerFrames}`;
  return wrapped;
}

function callNative<T>(fn: (b: Binding) => T): T {
  const callSite = new Error();
  const binding = loadBinding();
  try {
    return fn(binding);
  } catch (err) {
    throw toTmeError(err, callSite);
  }
}

/** Every device: the Vulkan physical devices (none when the loader or ICDs are missing) and the FFTW CPU path. */
export function listDevices(): DeviceInfo[] {
  return callNative((b) => {
    const listing = b.listDevices();
    const devices: DeviceInfo[] = listing.vulkan.map((d) => ({
      id: d.id,
      index: d.index,
      api: 'vulkan',
      name: d.name,
      type: d.type,
      memoryBytes: d.memoryBytes,
      maxStorageBufferRange: d.maxStorageBufferRange,
      apiVersion: d.apiVersion,
      driverVersion: d.driverVersion,
      driver: d.driverName === '' ? null : { name: d.driverName, info: d.driverInfo },
      threads: null,
    }));
    devices.push({
      id: 'cpu',
      index: 'cpu',
      api: 'fftw',
      name: 'CPU (FFTW3f)',
      type: 'cpu',
      // What is free now (MemAvailable, capped by the cgroup's limit: hostMemory), not the total: tiles are planned
      // against it.
      memoryBytes: listing.hostAvailableBytes,
      maxStorageBufferRange: null,
      apiVersion: b.versions().fftw,
      driverVersion: null,
      driver: null,
      threads: listing.hardwareConcurrency,
    });
    return devices;
  });
}

/**
 * What the CPU path counts as free host memory: /proc/meminfo's MemAvailable, capped by the room under the process's
 * cgroup memory limits (a SLURM job's --mem, a container's limit: the kernel kills a process past them, while
 * MemAvailable shows the whole node).
 */
export interface HostMemory {
  memAvailableBytes: number;
  /** The tightest cgroup level's limit less what its processes use (inactive file cache not counted); null: no limit. */
  cgroupRoomBytes: number | null;
  cgroupLimitBytes: number | null;
  /** That level, as /proc/self/cgroup names it (e.g. /slurm/uid_1000/job_42); null: no limit. */
  cgroup: string | null;
  /** The smaller of MemAvailable and the cgroup room: the CPU device's memoryBytes. */
  availableBytes: number;
}

/** The host memory tme may take now; `roots` reads another /proc and /sys/fs/cgroup (a test's fake tree). */
export function hostMemory(roots?: { proc: string; cgroup: string }): HostMemory {
  return callNative((b) => (roots ? b.hostMemory(roots.proc, roots.cgroup) : b.hostMemory()));
}

/** Why no Vulkan device is listed (loader or ICD missing), or null. */
export function vulkanError(): string | null {
  return callNative((b) => b.listDevices().vulkanError);
}

/** Which Vulkan loader and drivers (ICD libraries) this process runs on: what a GPU node's support asks first. */
export function vulkanRuntime(): VulkanRuntime {
  return callNative((b) => {
    const l = b.listDevices();
    return { loader: l.vulkanLoader, loaderBundled: l.vulkanLoaderBundled, drivers: l.vulkanDrivers, error: l.vulkanError };
  });
}

/**
 * Picks the device for a selector (default 'auto': a discrete GPU, else an integrated/virtual GPU, else the FFTW
 * CPU path; lavapipe only by index or 'vulkan-cpu'). Throws ERR_TME_NO_DEVICE when nothing matches.
 */
export function pickDevice(selector: DeviceSpec = 'auto'): DeviceInfo {
  const devices = listDevices();
  const chosen = chooseDevice(devices, selector);
  if (chosen) return chosen;
  const names = devices.map((d) => `${d.id}: ${d.name} (${d.type})`).join(', ');
  throw new TmeError('ERR_TME_NO_DEVICE', `no device matches ${JSON.stringify(selector)}; available: ${names}`);
}

/** Memory a job needs on its device and on the host, and whether it fits (checked again by runMatch). */
export function estimateMatchMemory(query: MatchMemoryQuery): MatchMemoryEstimate {
  return callNative((b) => b.estimateMatchMemory({ filter: true, ...query }));
}

/**
 * Forward R2C FFT (unnormalised) of a real volume: the half spectrum (nz, ny, nx/2+1) as interleaved
 * (re, im) float32 pairs. For tests and benchmarks; the matching loop never round-trips through JS.
 */
export function fftForward(device: DeviceId, data: Float32Array, shape: Zyx, options: { threads?: number } = {}): Float32Array {
  return callNative((b) => b.fftForward(device, data, shape, options));
}

/** Inverse C2R FFT normalised by 1/N, so that fftInverse(fftForward(x)) ≈ x. */
export function fftInverse(device: DeviceId, spectrum: Float32Array, shape: Zyx, options: { threads?: number } = {}): Float32Array {
  return callNative((b) => b.fftInverse(device, spectrum, shape, options));
}

export interface FilterVolumeOptions {
  /** FFTW threads. Default 1. */
  threads?: number;
  /** Write the result into `data` (and return it) instead of a new array: no second volume-sized array. */
  inPlace?: boolean;
}

/**
 * `data` times a real half-spectrum filter `filter` ((nz, ny, nx/2+1) values), on the CPU: the same values, bit for
 * bit, as fftInverse('cpu', fftForward('cpu', data) × filter), without the spectrum crossing into JS.
 */
export function filterVolume(data: Float32Array, shape: Zyx, filter: Float32Array, options: FilterVolumeOptions = {}): Float32Array {
  return callNative((b) => b.filterVolume(data, shape, filter, options));
}

/**
 * 2D FFTs of `shape[0]` planes of (ny, nx) on the CPU (FFTW), in place on the caller's arrays, unnormalised: R2C of
 * `real` into `spectrum` (interleaved half spectra, (ny, nx/2+1) each), or with `inverse` C2R of `spectrum` (which it
 * destroys) into `real`. A pass of the out-of-core volume filter (@tme/engine).
 */
export function fftPlanes(inverse: boolean, real: Float32Array, spectrum: Float32Array, shape: Zyx, threads = 1): void {
  callNative((b) => b.fftPlanes(inverse, real, spectrum, shape, threads));
}

/**
 * In place on the CPU (FFTW), unnormalised: `data`, n rows of `filter.length / n` complex columns (interleaved),
 * transformed along n, multiplied by `filter` (the same n × columns layout, real) and transformed back. A pass of the
 * out-of-core volume filter (@tme/engine).
 */
export function filterColumns(data: Float32Array, filter: Float32Array, n: number, threads = 1): void {
  callNative((b) => b.filterColumns(data, filter, n, threads));
}

/** Frees the tile set-up a call with keepSetup kept on `device` (default: on every device), e.g. after a run that
 *  ended before its last batch. Each device keeps its own, so runs on several devices at once do not evict each other. */
export function releaseKeptSetup(device?: DeviceId): void {
  callNative((b) => (device === undefined ? b.releaseKeptSetup() : b.releaseKeptSetup(device)));
}

/** Times R2C + C2R pairs on a device (host wall of submit + wait, min and median over `repeats`). */
export function benchFftPair(device: DeviceId, shape: Zyx, repeats = 5, threads = 1): FftBench {
  return callNative((b) => b.benchFftPair(device, shape, repeats, threads));
}

export function nativeVersions(): NativeVersions {
  return callNative((b) => b.versions());
}

/**
 * Re-scores rotations at single voxels off the event loop (see NativeOrientationJob). Rejects with TmeError:
 * ERR_TME_CANCELLED (signal aborted; between queries), ERR_TME_INVALID_OPTION.
 */
export function scoreOrientations(job: NativeOrientationJob, options: { signal?: AbortSignal } = {}): Promise<Float32Array> {
  return awaitTask(() => loadBinding().scoreOrientations(job), options.signal, 'cancelled before the first query');
}

/**
 * A native task ({ promise, cancel }) awaited as a promise: aborting `signal` cancels it, errors become TmeErrors
 * with the caller's stack. `failure()` may name an error that wins over the task's own (a throwing callback).
 */
function awaitTask<T>(
  start: () => { promise: Promise<T>; cancel(): void }, signal: AbortSignal | undefined, cancelledEarly: string,
  failure: () => unknown = () => undefined,
): Promise<T> {
  const callSite = new Error();
  if (signal?.aborted) {
    return Promise.reject(toTmeError(Object.assign(new Error(cancelledEarly), { code: 'ERR_TME_CANCELLED' }), callSite));
  }
  let task: { promise: Promise<T>; cancel(): void };
  try {
    task = start();
  } catch (err) {
    return Promise.reject(toTmeError(err, callSite));
  }
  const onAbort = (): void => task.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  return task.promise.then(
    (result) => {
      signal?.removeEventListener('abort', onAbort);
      // A callback threw after the last cancellation point: the task finished, the error still wins.
      const error = failure();
      if (error !== undefined) throw error;
      return result;
    },
    (err: unknown) => {
      signal?.removeEventListener('abort', onAbort);
      throw failure() ?? toTmeError(err, callSite);
    },
  );
}

/**
 * Runs the matching loop for one tile and one batch of rotations off the event loop. Rejects with TmeError:
 * ERR_TME_CANCELLED (signal aborted; within one rotation), ERR_TME_DEVICE_MEMORY (before any work, with the
 * numbers), ERR_TME_NO_DEVICE, ERR_TME_UNSUPPORTED_SIZE, ERR_TME_INVALID_OPTION, ERR_TME_FFT_PLAN, ERR_TME_DEVICE.
 */
export function runMatch(job: NativeMatchJob, options: RunMatchOptions = {}): Promise<NativeMatchResult> {
  const { signal, onProgress } = options;
  let task: { promise: Promise<NativeMatchResult>; cancel(): void } | undefined;
  let progressError: unknown;
  return awaitTask(() => {
    task = loadBinding().runMatch(job, (p) => {
      try {
        onProgress?.(p);
      } catch (err) {
        // A throwing callback cancels the job and becomes its error.
        progressError ??= err;
        task?.cancel();
      }
    });
    return task;
  }, signal, 'cancelled before the first rotation', () => progressError);
}
