import type { Zyx } from '@tme/formats';
import { TmeError, invalidOption } from '@tme/formats';
import type { EulerTriple } from '@tme/rotations';
import { angleBetween, coneRotations, matrixFrom, matrixToPytmeEuler, matrixToRelionEuler } from '@tme/rotations';

/**
 * Scores rotations at positions with the search's own score and filters: for each query one score per rotation
 * (rotations: 9 numbers each, xyz frame, active template→tomogram). The engine supplies it (createOrientationScorer).
 */
export type OrientationScorer = (
  queries: ReadonlyArray<{ position: Zyx; rotations: Float64Array }>,
  options?: { signal?: AbortSignal },
) => Promise<Float32Array[]>;

export interface RefineOptions {
  /** Half-width of the local search, degrees: the cone half-angle of the axis and the in-plane range. Default 10
   * (use the global angular step). */
  range?: number;
  /** Angular step of the first level, degrees. Default range / 2. */
  step?: number;
  /** Levels: each searches ± the previous step around the best so far with half the step. Default 2. */
  levels?: number;
  /** Whether pick `pick` may take the rotation at `matrices[9k…9k+9)` (a search's priors: its cone); default every
   *  rotation. A candidate it refuses is never kept, so refinement cannot wander out of the cone. */
  allowed?: (pick: number, matrices: Float64Array, k: number) => boolean;
}

export interface RefinedOrientation {
  /** The best rotation found (the pick's own when nothing scored higher). */
  rotation: Float64Array;
  score: number;
  /** The pick's rotation re-scored by the scorer (the reference the refined score is compared with). */
  originalScore: number;
  pytmeEuler: EulerTriple;
  relionEuler: EulerTriple;
  /** Geodesic angle between the pick's rotation and the refined one, degrees. */
  angularChange: number;
  /** Rotations the scorer evaluated for this pick. */
  evaluated: number;
}

/**
 * Local orientation refinement at each pick: coarse-to-fine searches around the pick's rotation R with
 * @tme/rotations' coneRotations (template z-axis within `range` of R's, in-plane within ±range, at `step`; each
 * level recentres on the best so far with range = previous step and half the step), scored at the pick's voxel
 * by `scorer` (the same score and filters as the search). Keeps the rotation with the highest score; the result's
 * score is never below the re-scored original (the centre, index 0 of every level).
 */
export async function refineOrientations(
  picks: readonly { position: Zyx; rotation: Float64Array }[],
  scorer: OrientationScorer,
  options: RefineOptions & { signal?: AbortSignal } = {},
): Promise<RefinedOrientation[]> {
  const range = options.range ?? 10;
  if (!(Number.isFinite(range) && range > 0 && range <= 90)) throw invalidOption('range', 'number of degrees in (0, 90]', range);
  const step0 = options.step ?? range / 2;
  if (!(Number.isFinite(step0) && step0 > 0 && step0 <= range)) throw invalidOption('step', `number of degrees in (0, ${range}]`, step0);
  const levels = options.levels ?? 2;
  if (!(Number.isInteger(levels) && levels >= 1 && levels <= 6)) throw invalidOption('levels', 'integer in [1, 6]', levels);

  const schedule: Array<[number, number]> = [];
  for (let l = 0, r = range, st = step0; l < levels; l++, r = st, st /= 2) schedule.push([r, st]);

  const state = picks.map((pick) => ({ best: matrixFrom(pick.rotation), bestScore: -Infinity, originalScore: NaN, evaluated: 0 }));
  for (const [level, [r, st]] of schedule.entries()) {
    // Every pick's candidates of this level in one call: the scorer works off the event loop, on every core.
    const sets = state.map((s) => coneRotations({ center: s.best, coneAngle: r, angularStep: st, inplaneAngle: r, inplaneStep: st }));
    const scores = await scorer(picks.map((pick, i) => ({ position: pick.position, rotations: sets[i]!.matrices })), { signal: options.signal });
    if (!Array.isArray(scores) || scores.length !== picks.length) {
      throw new TmeError('ERR_TME_INTERNAL', `the orientation scorer answered ${Array.isArray(scores) ? scores.length : 'no'} queries for ${picks.length}`);
    }
    state.forEach((s, i) => {
      const n = sets[i]!.count;
      const got = scores[i];
      if (!ArrayBuffer.isView(got) || got.length !== n) { // isView: also for arrays made in another realm (native addon)
        throw new TmeError('ERR_TME_INTERNAL', `the orientation scorer returned ${got?.length} scores for ${n} rotations`);
      }
      s.evaluated += n;
      if (level === 0) s.originalScore = got[0]!; // index 0 is the centre itself
      let arg = -1;
      const allowed = options.allowed;
      for (let k = 0; k < n; k++) {
        if (got[k]! > s.bestScore && ((level === 0 && k === 0) || !allowed || allowed(i, sets[i]!.matrices, k))) { s.bestScore = got[k]!; arg = k; }
      }
      if (arg >= 0) s.best = matrixFrom(sets[i]!.matrices, 9 * arg);
    });
  }
  return state.map((s, i) => ({
    rotation: s.best, score: s.bestScore, originalScore: s.originalScore,
    pytmeEuler: matrixToPytmeEuler(s.best), relionEuler: matrixToRelionEuler(s.best),
    angularChange: angleBetween(picks[i]!.rotation, s.best), evaluated: s.evaluated,
  }));
}
