import type { Zyx } from '@tme/formats';
import type { Candidates } from './candidates';

const BINS = 65536;

/**
 * Greedy non-maximum suppression, exact: candidates are taken in order of score (descending; ties by lower
 * voxel index) and a candidate is accepted unless an accepted pick lies at Euclidean distance < minDistance
 * (voxels). Stops at numPeaks. Returns the accepted flat voxel indices, best first.
 *
 * Only the part of the candidate list that is needed gets sorted: candidates are binned by score, and slices of
 * bins, from the top, are sorted and consumed until numPeaks are accepted. A uniform grid of cell size
 * minDistance holds the accepted picks, so each test looks at 27 cells.
 */
export function selectPeaks(cands: Candidates, shape: Zyx, minDistance: number, numPeaks: number): Uint32Array {
  const { index, score, count } = cands;
  const accepted = new Uint32Array(Math.min(numPeaks, count));
  if (count === 0 || numPeaks === 0) return accepted;
  const [, ny, nx] = shape;
  const plane = ny * nx;

  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < count; k++) {
    const s = score[k]!;
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  const scale = hi > lo ? BINS / (hi - lo) : 0;
  const binOf = (s: number): number => {
    const b = ((s - lo) * scale) | 0; // non-negative: | 0 truncates without a call
    return b < BINS ? b : BINS - 1;
  };
  const hist = new Uint32Array(BINS);
  for (let k = 0; k < count; k++) hist[binOf(score[k]!)]!++;

  const useGrid = minDistance > 1; // distinct voxels are ≥ 1 apart, so ≤ 1 forbids nothing
  const md2 = minDistance * minDistance;
  const cell = Math.max(1, minDistance);
  const gy = Math.floor((shape[1] - 1) / cell) + 1;
  const gx = Math.floor((shape[2] - 1) / cell) + 1;
  const grid = new Map<number, number[]>();
  const az = new Int32Array(accepted.length);
  const ay = new Int32Array(accepted.length);
  const ax = new Int32Array(accepted.length);
  let nAccepted = 0;

  let top = BINS - 1;
  let target = Math.max(4096, 8 * numPeaks);
  while (top >= 0 && nAccepted < accepted.length) {
    let bottom = top;
    let n = hist[top]!;
    while (bottom > 0 && n < target) n += hist[--bottom]!;
    const slots = new Uint32Array(n);
    let m = 0;
    for (let k = 0; k < count; k++) {
      const b = binOf(score[k]!);
      if (b >= bottom && b <= top) slots[m++] = k;
    }
    slots.sort((a, b) => (score[b]! - score[a]!) || (index[a]! - index[b]!));
    for (let q = 0; q < m && nAccepted < accepted.length; q++) {
      const v = index[slots[q]!]!;
      const z = Math.floor(v / plane);
      const r = v - z * plane;
      const y = Math.floor(r / nx);
      const x = r - y * nx;
      if (useGrid) {
        const cz = Math.floor(z / cell);
        const cy = Math.floor(y / cell);
        const cx = Math.floor(x / cell);
        let free = true;
        for (let dz = -1; dz <= 1 && free; dz++) {
          for (let dy = -1; dy <= 1 && free; dy++) {
            for (let dx = -1; dx <= 1 && free; dx++) {
              const list = grid.get(((cz + dz) * gy + (cy + dy)) * gx + (cx + dx));
              if (list === undefined) continue;
              for (const p of list) {
                const ez = az[p]! - z, ey = ay[p]! - y, ex = ax[p]! - x;
                if (ez * ez + ey * ey + ex * ex < md2) { free = false; break; }
              }
            }
          }
        }
        if (!free) continue;
        const key = (cz * gy + cy) * gx + cx;
        const list = grid.get(key);
        if (list === undefined) grid.set(key, [nAccepted]);
        else list.push(nAccepted);
      }
      az[nAccepted] = z;
      ay[nAccepted] = y;
      ax[nAccepted] = x;
      accepted[nAccepted++] = v;
    }
    top = bottom - 1;
    target *= 2;
  }
  return accepted.subarray(0, nAccepted);
}
