import * as fs from 'node:fs';
import * as path from 'node:path';
import { TmeError, isTmeError, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import type {
  BackendMatchJob, BackendMatchResult, BackendRunOptions, DeviceId, DeviceInfo, DeviceSpec, MatchBackend, MemoryQuery, TileCostModel,
} from './backend';
import { FFTW_COST_MODEL } from './fft-cost';

/** Where the compiled addon lives; tests check it to skip cleanly where native is not built. */
export const NATIVE_ADDON_PATH = path.resolve(__dirname, '..', '..', '..', 'native', 'build', 'Release', 'tme.node');

/** Whether the addon is built and loads. */
export function nativeAddonBuilt(): boolean {
  return fs.existsSync(NATIVE_ADDON_PATH) && native.isNativeAvailable();
}

function kindOf(d: native.DeviceInfo): DeviceInfo['kind'] {
  return d.type === 'discrete-gpu' || d.type === 'integrated-gpu' || d.type === 'virtual-gpu' ? 'gpu' : 'cpu';
}

/**
 * The engine's default backend: the native addon (FFTW3f on the CPU, VkFFT on Vulkan devices). @tme/native loads
 * tme.node on first use, so a machine without the addon fails only when a job needs it (ERR_TME_NATIVE_LOAD).
 */
export class NativeBackend implements MatchBackend {
  readonly name = 'native';
  // The addon counts statistics only where statsMask is set (each tile's core, inside the target mask), per rotation.
  readonly capabilities = { statsMask: true, perRotationSums: true, voxelStats: true };

  listDevices(): DeviceInfo[] {
    return native.listDevices().map((d) => ({
      index: d.index,
      name: d.name,
      kind: kindOf(d),
      memoryBytes: d.memoryBytes,
      detail: d.api === 'vulkan'
        ? `Vulkan ${d.apiVersion}, ${d.type}${d.driver ? `, ${d.driver.name} ${d.driver.info}`.trimEnd() : ''}`
        : `FFTW ${d.apiVersion}, ${d.threads ?? '?'} threads`,
    }));
  }

  pickDevice(spec: DeviceSpec): DeviceId {
    return native.pickDevice(spec).index;
  }

  nextFastShape(shape: Zyx): Zyx {
    const s = native.nextFastShape(shape);
    return [s[0], s[1], s[2]];
  }

  costModel(): TileCostModel {
    // FFTW's, for every device: a job then plans alike on the CPU and on a GPU wherever one tile fits (shards planned
    // on either merge). VkFFT's costs per length are not measured.
    return FFTW_COST_MODEL;
  }

  estimateMemory(query: MemoryQuery): number {
    const e = native.estimateMatchMemory({
      device: query.device, targetShape: query.tileShape, templateShape: query.templateShape,
      ...(query.supportShape ? { supportShape: query.supportShape } : {}), score: query.score,
      rotationMode: query.rotationMode, filter: query.filter, targetMask: query.score === 'mcc', initialMaps: true, statsMask: true,
      threads: query.threads, voxelStats: query.voxelStats === true, spectrumPrecision: query.spectrumPrecision ?? 'single',
    });
    // A tile whose largest buffer exceeds what one binding addresses cannot run however much memory is free.
    if (e.bufferLimitBytes > 0 && e.largestBufferBytes > e.bufferLimitBytes) return Infinity;
    return query.device === 'cpu' ? e.hostBytes : e.deviceBytes;
  }

  releaseKeptSetup(device?: DeviceId): void {
    native.releaseKeptSetup(device);
  }

  async runMatch(job: BackendMatchJob, options: BackendRunOptions = {}): Promise<BackendMatchResult> {
    try {
      const result = await native.runMatch(job, options);
      return {
        scores: result.scores, indices: result.indices, stats: result.stats, timings: result.timings, device: result.device,
        ...(result.voxelSum && result.voxelSumSq ? { voxelSum: result.voxelSum, voxelSumSq: result.voxelSumSq } : {}),
      };
    } catch (err) {
      if (isTmeError(err)) throw err;
      throw new TmeError('ERR_TME_DEVICE', err instanceof Error ? err.message : String(err), { cause: err });
    }
  }
}

let backend: MatchBackend | undefined;

/** The backend matchTemplate uses when none is given. */
export function defaultBackend(): MatchBackend {
  backend ??= new NativeBackend();
  return backend;
}
