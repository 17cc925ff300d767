import { isTmeError, type Zyx } from '@tme/formats';
import type { DeviceId, DeviceInfo, MatchBackend } from './backend';
import { resolveDevices } from './devices';
import { deviceBudgetBytes, outOfCoreTileBytes, readDiskTile, planJobTiles, rotationsToRun, severalTemplates, sharedBackendInputs, tileTargetMask } from './match';
import { defaultBackend } from './native-backend';
import { extractRegion } from './padding';
import * as native from '@tme/native';
import { ARRAY_OVERHEAD, PROCESS_BASE_BYTES } from './memory-model';
import { prepareTemplates, type MatchJob, type PreparedJob } from './prepare';
import type { TilePlan } from './tiling';
import { planVolumeFilter, type VolumeFilterPlan } from './volume-filter';

export interface DeviceEstimate {
  device: DeviceInfo;
  /** The plan on this device, or undefined with `error` when the job cannot fit it. */
  tilePlan?: TilePlan;
  /** Device bytes for one tile, and what the job may use (memory × memoryFraction). */
  bytesPerTile?: number;
  budgetBytes: number;
  fits: boolean;
  error?: string;
  /** The whole process's peak resident memory for the job on this device (processPeakBytes): what `tme match`
   *  should show as its peak RSS. */
  processBytes?: number;
  /** From a calibration run: seconds per rotation per tile, a tile's set-up (its transforms and local statistics, the
   *  workers' buffers), and the whole job (set-up per tile plus every rotation). */
  secondsPerRotation?: number;
  setupSeconds?: number;
  seconds?: number;
  /** Rotations matched over every tile searched (rotationsToRun): the rotation count × tiles, less what priors or a
   *  shard leave out. */
  rotationsToRun?: number;
}

export interface EstimateOptions {
  backend?: MatchBackend;
  /** Rotations to time on the chosen device (one tile); 0 = no calibration. Default 0. */
  calibrationRotations?: number;
  signal?: AbortSignal;
}

export interface JobEstimate {
  /** The device the job's `device` spec picks (the first, with several). */
  picked: DeviceId;
  /** Every device the job runs on, one entry per worker (several split each tile's rotations). */
  used: DeviceId[];
  /** With several devices, the plan they share (each worker holds a tile; it fits the tightest), and a time from the
   *  first device's calibration as if every worker ran as fast. */
  shared?: { tilePlan?: TilePlan; error?: string; seconds?: number };
  devices: DeviceEstimate[];
  rotationCount: number;
  targetShape: Zyx;
  templateShape: Zyx;
  /** What the tiles pad and overlap by: the template's support (support.ts); with several templates the largest. */
  supportShape: Zyx;
  /** Templates searched in the pass (MatchJob.moreTemplates + 1); rotationCount counts all of theirs. */
  templateCount: number;
  /** Out of core with a target filter: its passes' plan on the host's budget (temporary disk in the job folder, the
   *  largest pass's memory), or why it does not fit. */
  targetFilter?: Partial<VolumeFilterPlan> & { error?: string };
}


/**
 * The peak resident memory of a whole `tme match` process for a job, from what it holds at its two peaks:
 * - preparing, with a target filter: the target as read, the filter's grid (the target continued a box beyond every
 *   face, at a fast size) as a real array, its half spectrum, the filtered grid and the filtered target;
 * - matching: the target as read and (when preprocessing changed it) as matched, the running best-score and
 *   best-rotation maps of the whole target, the no-data and target masks, and one tile: its arrays and what the
 *   backend holds for it (the native estimate, which counts the tile's arrays the engine passes in; for a GPU the
 *   host side of a tile is its arrays, its maps and the set-up's transforms).
 * Checked against measured peaks in test/bench/results (`pnpm bench peer` records both).
 */
export function processPeakBytes(
  job: MatchJob, p: PreparedJob, plan: TilePlan, hostTile: boolean, templates: readonly PreparedJob[] = [p], filter?: JobEstimate['targetFilter'],
): number {
  const volume = p.targetShape[0] * p.targetShape[1] * p.targetShape[2];
  const tile = plan.fastShape[0] * plan.fastShape[1] * plan.fastShape[2];
  if (p.source) {
    // A target filter's passes come first, each within the host's budget (volume-filter.ts).
    const filtering = filter && 'memoryBytes' in filter ? filter.memoryBytes ?? 0 : 0;
    return PROCESS_BASE_BYTES + ARRAY_OVERHEAD * Math.max(filtering, hostTile ? plan.bytesPerTile : outOfCoreTileBytes(plan.fastShape) + (4 + 1 + 8 + 8 + 24) * tile);
  }
  const changed = p.target !== (job.target as { data: Float32Array }).data;
  // A template whose target filter is padded by another box holds its own filtered target (and reads its own tiles).
  const ownTargets = new Set(templates.map((t) => t.target)).size - 1;
  const matching = 4 * volume + (changed ? 4 * volume : 0) + 4 * ownTargets * (volume + tile) + 8 * volume + (p.noData ? volume : 0) +
    (p.targetMask ? 4 * volume : 0) + (p.background === 'rotation-stats' ? 12 * volume : 0) + (hostTile ? plan.bytesPerTile : (4 + 1 + 8 + 8 + 24) * tile);
  let preparing = 0;
  if (job.targetFilter) {
    const [vz, vy, vx] = p.targetShape;
    const [bz, by, bx] = p.templateShape;
    const grid = native.nextFastShape([vz + 2 * bz, vy + 2 * by, vx + 2 * bx]);
    const g = grid[0] * grid[1] * grid[2];
    const half = grid[0] * grid[1] * (Math.floor(grid[2] / 2) + 1);
    // The padded grid (filtered in place), its half spectrum, the filter on it, and the filtered target cut back.
    preparing = 4 * volume * (p.noData ? 2 : 1) + 4 * g + 8 * half + 4 * half + 4 * volume;
  }
  return PROCESS_BASE_BYTES + ARRAY_OVERHEAD * Math.max(matching, preparing);
}

/**
 * Per device: the tile plan and the bytes one tile needs; with `calibrationRotations`, a time estimate from a
 * short run on the picked device. Nothing is written.
 */
export async function estimateJob(job: MatchJob, options: EstimateOptions = {}): Promise<JobEstimate> {
  // Out of core the target's moments cost two passes over the file: only a calibration run needs them.
  const templates = prepareTemplates(job, { targetMoments: (options.calibrationRotations ?? 0) > 0 });
  const first = templates[0] as PreparedJob;
  const p = templates.length === 1 ? first : severalTemplates(templates);
  const backend = options.backend ?? defaultBackend();
  const workers = resolveDevices(p.device, backend);
  const picked = (workers[0] as DeviceInfo).index;
  const devices: DeviceEstimate[] = [];
  let targetFilter: JobEstimate['targetFilter'];
  if (p.diskFilter) {
    const host = backend.listDevices().find((d) => d.index === 'cpu');
    try {
      targetFilter = planVolumeFilter(p.targetShape, p.templateShape, host ? deviceBudgetBytes(p, backend, host) : (p.memoryLimitBytes ?? Infinity));
    } catch (err) {
      if (!isTmeError(err, 'ERR_TME_DEVICE_MEMORY')) throw err;
      targetFilter = { error: err.message };
    }
  }
  for (const device of backend.listDevices()) {
    let budgetBytes = 0;
    try {
      budgetBytes = deviceBudgetBytes(p, backend, device);
      const plan = planJobTiles(p, backend, [device]);
      const processBytes = processPeakBytes(job, p, plan, device.index === 'cpu', templates, targetFilter);
      devices.push({ device, tilePlan: plan, bytesPerTile: plan.bytesPerTile, budgetBytes, fits: true, processBytes, rotationsToRun: rotationsToRun(p, plan) });
    } catch (err) {
      if (!isTmeError(err, 'ERR_TME_DEVICE_MEMORY')) throw err;
      devices.push({ device, budgetBytes, fits: false, error: err.message });
    }
  }
  let shared: JobEstimate['shared'];
  if (workers.length > 1) {
    try {
      shared = { tilePlan: planJobTiles(p, backend, workers) };
    } catch (err) {
      if (!isTmeError(err, 'ERR_TME_DEVICE_MEMORY')) throw err;
      shared = { error: err.message };
    }
  }
  const chosen = devices.find((d) => d.device.index === picked);
  const calibration = options.calibrationRotations ?? 0;
  if (calibration > 0 && chosen?.tilePlan) {
    const plan = chosen.tilePlan;
    const tile = plan.tiles[0];
    if (tile) {
      // Template 0's rotations stand for every template's: each call matches one template on the same tile.
      const n = Math.min(calibration, first.rotationCount);
      const fast = plan.fastShape;
      const run = (end: number): ReturnType<MatchBackend['runMatch']> => backend.runMatch({
        ...sharedBackendInputs(first), device: picked,
        target: p.source ? readDiskTile(p, p.source, tile, fast).target : extractRegion(p.target, p.targetShape, tile.readStart, fast, p.padTarget, p.fillValue), targetShape: fast,
        targetMask: p.plan.backendScore === 'mcc' && p.targetMask ? tileTargetMask(p, tile.readStart, fast) : undefined,
        rotationStart: 0, rotationEnd: end,
      }, { signal: options.signal });
      // One call of n rotations, timed apart: its loop (the workers together) per rotation, and the rest of the call
      // as the tile's set-up. (Differencing a 1-rotation call from an (n + 1)-rotation one divided two set-ups' noise,
      // and the second worker the longer call builds, by n: 3× the real time per rotation at 512×512×200.)
      const t0 = Date.now();
      const result = await run(n);
      const wallSeconds = (Date.now() - t0) / 1000;
      const loopMs = result.timings['loopMs'];
      const loopSeconds = loopMs !== undefined ? Math.min(wallSeconds, loopMs / 1000) : wallSeconds;
      chosen.secondsPerRotation = loopSeconds / n;
      chosen.setupSeconds = wallSeconds - loopSeconds;
      chosen.seconds = chosen.secondsPerRotation * (chosen.rotationsToRun ?? 0) + chosen.setupSeconds * plan.tiles.length;
      if (shared?.tilePlan) {
        shared.seconds = (chosen.secondsPerRotation * rotationsToRun(p, shared.tilePlan)) / workers.length + chosen.setupSeconds * shared.tilePlan.tiles.length;
      }
    }
  }
  return { picked, used: workers.map((d) => d.index), ...(shared ? { shared } : {}), devices, rotationCount: p.rotationCount, targetShape: p.targetShape, templateShape: p.templateShape, supportShape: p.supportShape, templateCount: templates.length, ...(targetFilter ? { targetFilter } : {}) };
}
