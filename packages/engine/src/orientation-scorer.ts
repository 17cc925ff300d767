import { TmeError, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import { extractRegion } from './padding';
import { prepareJob, type MatchJob } from './prepare';
import { boxCentre } from './rotate';

/** Rotations (9 values each, xyz frame) to score with the template centred at one target voxel (z, y, x). */
export interface OrientationQuery {
  position: Zyx;
  rotations: Float64Array;
}

/** Scores every query's rotations, off the event loop: one Float32Array per query, in its rotations' order. */
export type OrientationScorer = (queries: readonly OrientationQuery[], options?: { signal?: AbortSignal }) => Promise<Float32Array[]>;

/**
 * Re-scores rotations at single voxels with the job's own score, filters and preprocessing — what a local orientation
 * search around a pick needs — at O(template box) per rotation instead of a whole FFT. The native addon rotates,
 * filters and normalises each template exactly as the search does and sums it against the target's box at the
 * voxel (the target prepared as the search prepares it: target filter, Laplacian, standardisation, padding).
 * Scores: cc (and lcc), flc-sphere (and corr, cam), flc. mcc is not offered (it needs whole-tile overlaps).
 */
export function createOrientationScorer(job: MatchJob): OrientationScorer {
  const p = prepareJob(job);
  const score = p.plan.backendScore;
  if (score === 'mcc') throw new TmeError('ERR_TME_UNSUPPORTED', 'orientation refinement does not support mcc; use flc or flc-sphere');
  const box = p.templateShape;
  const c = boxCentre(box);
  // The untiled search's geometry: the target continued by the padding mode c voxels before every face and
  // box − 1 − c after, so the patch of voxel x starts at x in this grid.
  const grid: Zyx = [p.targetShape[0] + box[0] - 1, p.targetShape[1] + box[1] - 1, p.targetShape[2] + box[2] - 1];
  const padded = extractRegion(p.target, p.targetShape, [-c[0], -c[1], -c[2]], grid, p.padTarget, p.fillValue);
  const boxVoxels = box[0] * box[1] * box[2];

  return async (queries, options = {}) => {
    const offsets = new Int32Array(queries.length + 1);
    let total = 0;
    queries.forEach((q, i) => {
      if (!q.position.every((v, a) => Number.isInteger(v) && v >= 0 && v < (p.targetShape[a] as number))) {
        throw new TmeError('ERR_TME_INVALID_OPTION', `Expected a voxel inside the target for position but received (${q.position.join(', ')})`);
      }
      if (q.rotations.length % 9 !== 0) throw new TmeError('ERR_TME_INVALID_OPTION', `Expected 9 values per rotation but received ${q.rotations.length}`);
      total += q.rotations.length / 9;
      offsets[i + 1] = total;
    });
    const patches = new Float32Array(queries.length * boxVoxels);
    const rotations = new Float64Array(9 * total);
    queries.forEach((q, i) => {
      patches.set(extractRegion(padded, grid, q.position, box, 'zero'), i * boxVoxels);
      rotations.set(q.rotations, 9 * (offsets[i] as number));
    });
    const scores = await native.scoreOrientations({
      threads: p.threads, template: p.template, templateShape: box, mask: p.mask,
      // (Fourier rotation's target already went through the template filter: the template is then scored unfiltered.)
      ...(p.templateFilter && !p.templateFilterInTarget ? { filter: p.templateFilter, filterShape: p.filterShape } : {}),
      score, interpolation: p.interpolation, targetMean: p.targetMean, targetVariance: p.targetVariance,
      patches, rotations, offsets,
    }, options);
    return queries.map((_, i) => scores.slice(offsets[i] as number, offsets[i + 1] as number));
  };
}
