import { TmeError, type Zyx } from '@tme/formats';
import {
  checkPriors, createDiskOrientationScorer, createOrientationScorer, isRegionSource, priorConeAt, templateJob, withinCone, type FilteredVolume,
  type JobRecord, type MatchJob,
} from '@tme/engine';
import { refineOrientations, type PeakSet, type Pick, type RefinedOrientation } from '@tme/peaks';
import { planSearch, searchFromRecord } from '@tme/search';

/**
 * Local orientation refinement of every pick with the job's own score and filters (a cone and in-plane search at
 * half, then a quarter, of the global step, re-scored at the pick), so the angles users average in RELION are
 * finer than the global sampling. Returns the picks with refined rotations, and the refinement records. A target on
 * disk (matched out of core) is read per pick by region; a target filter's temporary volume goes in `dir`, unless
 * `filtered` (the search's, still on disk) is that filter of that tomogram.
 */
export async function refinePicks(
  set: PeakSet, job: MatchJob, angularStep: number, signal?: AbortSignal, dir?: string, filtered?: FilteredVolume,
): Promise<{ picks: Pick[]; refined: RefinedOrientation[]; reusedFilter?: boolean }> {
  // Under priors each pick keeps to the cone of its nearest prior (the one the search used at its voxel).
  const priors = job.priors === undefined ? undefined : checkPriors(job.priors);
  const cones = priors && set.picks.map((p) => priorConeAt(priors, p.position, job.target.voxelSize)?.index);
  // Each pick is re-scored with the template it matched (several templates in one pass: its `template`).
  const refined = new Array<RefinedOrientation>(set.picks.length);
  const templates = [...new Set(set.picks.map((p) => p.template))];
  let reusedFilter = false;
  for (const k of templates) {
    const which = set.picks.flatMap((p, i) => (p.template === k ? [i] : []));
    const allowed = priors && cones
      ? (pick: number, matrices: Float64Array, r: number): boolean => {
        const cone = cones[which[pick] as number];
        return cone !== undefined && withinCone(priors, cone, matrices, r);
      }
      : undefined;
    const disk = isRegionSource(job.target)
      ? await createDiskOrientationScorer(templateJob(job, k), { dir: dir ?? process.cwd(), ...(signal ? { signal } : {}), ...(filtered ? { filtered } : {}) })
      : undefined;
    if (disk?.reusedFilter) reusedFilter = true;
    let out: RefinedOrientation[];
    try {
      out = await refineOrientations(
        which.map((i) => ({ position: (set.picks[i] as Pick).position, rotation: (set.picks[i] as Pick).rotation })),
        disk ? disk.scorer : createOrientationScorer(templateJob(job, k)),
        { range: angularStep, step: angularStep / 2, levels: 2, signal, ...(allowed ? { allowed } : {}) },
      );
    } finally {
      disk?.release();
    }
    which.forEach((i, j) => { refined[i] = out[j] as RefinedOrientation; });
  }
  const picks = set.picks.map((p, i) => {
    const r = refined[i] as RefinedOrientation;
    return { ...p, rotation: r.rotation, pytmeEuler: r.pytmeEuler, relionEuler: r.relionEuler };
  });
  return { picks, refined, ...(reusedFilter ? { reusedFilter } : {}) };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? (s[s.length >> 1] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

/** The line that reports a refinement: how far the orientations moved and what the scores gained. */
export function describeRefinement(refined: readonly RefinedOrientation[], prefix: string, onSearchFilter = false): string {
  return `${prefix}: refined ${refined.length} orientations: median change ${median(refined.map((r) => r.angularChange)).toFixed(1)}°, `
    + `median score gain ${median(refined.map((r) => r.score - r.originalScore)).toFixed(4)}`
    + `${onSearchFilter ? ' (on the search\'s filtered tomogram, not filtered again)' : ''}\n`;
}

/** Whether a job's score can be re-scored per voxel (mcc needs whole-tile overlaps). */
export function refinable(job: MatchJob): boolean {
  return (job.score ?? 'flc-sphere').toString().toLowerCase() !== 'mcc';
}

/**
 * Rebuilds a finished job's search from its job.json (the stored search, not flags), for `tme peaks --refine`: the
 * template, filters and score to re-score orientations with, on the CPU. No rotation set is sampled. A tomogram
 * larger than memory is opened by region (refinePicks then reads each pick's box).
 */
export async function jobFromRecord(record: JobRecord, dir: string, memoryLimitBytes?: number): Promise<{ job: MatchJob; angularStep: number }> {
  const search = searchFromRecord(record, dir);
  // The tomogram is read whole where it fits the memory (--memory of the command, else the search's), else by region.
  const plan = await planSearch({
    ...search, device: 'cpu', tile: 'auto', rotationMode: 'real', shard: undefined, background: 'none',
    ...(memoryLimitBytes === undefined ? {} : { memoryLimitBytes }),
  }, { purpose: 'rescore' });
  const shape: Zyx = plan.job.target.shape;
  const searched = record.parameters.targetShape;
  if (shape.some((n, i) => n !== (searched[i] as number))) {
    throw new TmeError('ERR_TME_MISMATCH', `the target now has shape (${shape.join(', ')}), the job searched (${searched.join(', ')})`, { file: search.target });
  }
  // A rotation list's scale is its measured covering angle, which the job recorded.
  const recorded = record.inputs['angularStep'];
  return { job: plan.job, angularStep: search.angularStep ?? (typeof recorded === 'number' ? recorded : plan.angularStep) };
}
