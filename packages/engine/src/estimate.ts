import { isTmeError, type Zyx } from '@tme/formats';
import type { DeviceId, DeviceInfo, MatchBackend } from './backend';
import { planJobTiles, sharedBackendInputs, tileTargetMask } from './match';
import { defaultBackend } from './native-backend';
import { extractRegion } from './padding';
import { prepareJob, type MatchJob } from './prepare';
import type { TilePlan } from './tiling';

export interface DeviceEstimate {
  device: DeviceInfo;
  /** The plan on this device, or undefined with `error` when the job cannot fit it. */
  tilePlan?: TilePlan;
  /** Device bytes for one tile, and what the job may use (memory × memoryFraction). */
  bytesPerTile?: number;
  budgetBytes: number;
  fits: boolean;
  error?: string;
  /** From a calibration run: seconds per rotation per tile, and for the whole job. */
  secondsPerRotation?: number;
  seconds?: number;
}

export interface EstimateOptions {
  backend?: MatchBackend;
  /** Rotations to time on the chosen device (one tile); 0 = no calibration. Default 0. */
  calibrationRotations?: number;
  signal?: AbortSignal;
}

export interface JobEstimate {
  /** The device the job's `device` spec picks. */
  picked: DeviceId;
  devices: DeviceEstimate[];
  rotationCount: number;
  targetShape: Zyx;
  templateShape: Zyx;
  /** What the tiles pad and overlap by: the template's support (support.ts). */
  supportShape: Zyx;
}

/**
 * Per device: the tile plan and the bytes one tile needs; with `calibrationRotations`, a time estimate from a
 * short run on the picked device. Nothing is written.
 */
export async function estimateJob(job: MatchJob, options: EstimateOptions = {}): Promise<JobEstimate> {
  const p = prepareJob(job);
  const backend = options.backend ?? defaultBackend();
  const picked = backend.pickDevice(p.device);
  const devices: DeviceEstimate[] = [];
  for (const device of backend.listDevices()) {
    const budgetBytes = device.memoryBytes * p.memoryFraction;
    try {
      const plan = planJobTiles(p, backend, device);
      devices.push({ device, tilePlan: plan, bytesPerTile: plan.bytesPerTile, budgetBytes, fits: true });
    } catch (err) {
      if (!isTmeError(err, 'ERR_TME_DEVICE_MEMORY')) throw err;
      devices.push({ device, budgetBytes, fits: false, error: err.message });
    }
  }
  const chosen = devices.find((d) => d.device.index === picked);
  const calibration = options.calibrationRotations ?? 0;
  if (calibration > 0 && chosen?.tilePlan) {
    const plan = chosen.tilePlan;
    const tile = plan.tiles[0];
    if (tile) {
      const n = Math.min(calibration, p.rotationCount);
      const fast = plan.fastShape;
      const run = (end: number): ReturnType<MatchBackend['runMatch']> => backend.runMatch({
        ...sharedBackendInputs(p), device: picked,
        target: extractRegion(p.target, p.targetShape, tile.readStart, fast, p.padTarget, p.fillValue), targetShape: fast,
        targetMask: p.plan.backendScore === 'mcc' && p.targetMask ? tileTargetMask(p, tile.readStart, fast) : undefined,
        rotationStart: 0, rotationEnd: end,
      }, { signal: options.signal });
      // One rotation first to pay for set-up (plans, uploads), then the timed run; the difference is per rotation.
      const t0 = Date.now();
      await run(1);
      const t1 = Date.now();
      await run(n + 1 <= p.rotationCount ? n + 1 : n);
      const t2 = Date.now();
      const extra = (n + 1 <= p.rotationCount ? n + 1 : n) - 1;
      const perRotation = extra > 0 ? Math.max(0, (t2 - t1) - (t1 - t0)) / 1000 / extra : (t1 - t0) / 1000;
      chosen.secondsPerRotation = perRotation > 0 ? perRotation : (t2 - t1) / 1000 / Math.max(1, extra + 1);
      chosen.seconds = chosen.secondsPerRotation * p.rotationCount * plan.tiles.length;
    }
  }
  return { picked, devices, rotationCount: p.rotationCount, targetShape: p.targetShape, templateShape: p.templateShape, supportShape: p.supportShape };
}
