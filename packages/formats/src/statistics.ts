import type { VolumeData } from './volume';

/** Statistics of a volume's values, accumulated in float64. std is the population standard deviation (MRC rms). */
export interface VolumeStatistics {
  min: number;
  max: number;
  mean: number;
  std: number;
  count: number;
}

const BLOCK = 65536;
/** The block volumeStatistics sums at once (StatisticsAccumulator's pieces are multiples of it). */
export const STATISTICS_BLOCK = BLOCK;

/**
 * min, max, mean and population std in one pass over memory: each 64 Ki block is summed relative to the running
 * mean, and blocks are merged with Chan's formula, so large offsets do not cost precision.
 */
export function volumeStatistics(data: VolumeData | ArrayLike<number>): VolumeStatistics {
  const acc = new StatisticsAccumulator();
  acc.add(data);
  return acc.result();
}

/**
 * volumeStatistics over data given in pieces (a map read back from disk): the same numbers to the last bit when every
 * piece but the last holds a multiple of STATISTICS_BLOCK values, since the blocks are then the same.
 */
export class StatisticsAccumulator {
  private min = Infinity;
  private max = -Infinity;
  private count = 0;
  private mean = 0;
  private m2 = 0;

  add(data: VolumeData | ArrayLike<number>): void {
    const n = data.length;
    for (let start = 0; start < n; start += BLOCK) {
      const end = Math.min(n, start + BLOCK);
      // Sums shifted by the running mean (the first value for the first block): one pass over memory, and no
      // cancellation for data far from zero.
      const k = this.count > 0 && Number.isFinite(this.mean) ? this.mean : data[start]!;
      let s = 0;
      let q = 0;
      let lo = this.min;
      let hi = this.max;
      for (let i = start; i < end; i++) {
        const v = data[i]!;
        const d = v - k;
        s += d;
        q += d * d;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      this.min = lo;
      this.max = hi;
      const nb = end - start;
      const mb = k + s / nb;
      // Σ(v − mb)² from the shifted sums.
      q -= (s * s) / nb;
      const total = this.count + nb;
      const delta = mb - this.mean;
      this.mean += (delta * nb) / total;
      this.m2 += q + (delta * delta * this.count * nb) / total;
      this.count = total;
    }
  }

  result(): VolumeStatistics {
    const { min, max, mean, m2, count } = this;
    if (count === 0) return { min: NaN, max: NaN, mean: NaN, std: NaN, count: 0 };
    return { min, max, mean, std: Math.sqrt(Math.max(0, m2 / count)), count };
  }
}

/** Statistics of two parts combined (Chan et al.), e.g. slab by slab through a file too big to hold. */
export function mergeStatistics(a: VolumeStatistics, b: VolumeStatistics): VolumeStatistics {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  const count = a.count + b.count;
  const delta = b.mean - a.mean;
  const m2 = a.std * a.std * a.count + b.std * b.std * b.count + (delta * delta * a.count * b.count) / count;
  return {
    min: Math.min(a.min, b.min), max: Math.max(a.max, b.max),
    mean: a.mean + (delta * b.count) / count, std: Math.sqrt(Math.max(0, m2 / count)), count,
  };
}
