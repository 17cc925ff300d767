import type { Zyx } from '@tme/formats';
import type { TileCostModel } from './backend';
import { FFT_COST_COMPLEX, FFT_COST_REAL } from './fft-cost-table';

/**
 * The CPU path's predicted time (ns) of a rotation's transforms on a tile of `shape` scoring a core of `core`: its
 * correlator transforms z over every column of the tile and y and x only on the core's planes (the others are never
 * read back), so the cost is y·x·(z·c(z) + core z·(c(y) + c(x))), c(n) FFTW's time per element of an R2C + C2R pair
 * along an axis of length n (fft-cost-table.ts, measured per length); undefined where a length was not measured.
 * FFTW's time per element differs more between neighbouring fast sizes than their voxels do: measured per rotation
 * (flc-sphere, one thread, 15³ support, z×y×x), 144³ 11.4 ms against 15.1 for 135×135×140 on a 128³ core;
 * 128×216×216 21.5 ms, 120×216×216 21.8–24.2, 108×210×210 28.0–31.2 on 100×200×200.
 */
export function fftwPairCost(shape: Zyx, core: Zyx): number | undefined {
  const z = FFT_COST_COMPLEX[shape[0]];
  const y = FFT_COST_COMPLEX[shape[1]];
  const x = FFT_COST_REAL[shape[2]];
  if (z === undefined || y === undefined || x === undefined) return undefined;
  return shape[1] * shape[2] * (shape[0] * z + Math.min(core[0], shape[0]) * (y + x));
}

/** The CPU path's cost model (the native backend's for device 'cpu'). */
export const FFTW_COST_MODEL: TileCostModel = { cost: fftwPairCost };
