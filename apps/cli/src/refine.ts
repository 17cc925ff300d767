import { TmeError, type Zyx } from '@tme/formats';
import { createOrientationScorer, type JobRecord, type MatchJob } from '@tme/engine';
import { refineOrientations, type PeakSet, type Pick, type RefinedOrientation } from '@tme/peaks';
import { setupMatch, type MatchFlags } from './commands/match';

/**
 * Local orientation refinement of every pick with the job's own score and filters (a cone and in-plane search at
 * half, then a quarter, of the global step, re-scored at the pick), so the angles users average in RELION are
 * finer than the global sampling. Returns the picks with refined rotations, and the refinement records.
 */
export async function refinePicks(
  set: PeakSet, job: MatchJob, angularStep: number, signal?: AbortSignal,
): Promise<{ picks: Pick[]; refined: RefinedOrientation[] }> {
  const scorer = createOrientationScorer(job);
  const refined = await refineOrientations(
    set.picks.map((p) => ({ position: p.position, rotation: p.rotation })),
    scorer,
    { range: angularStep, step: angularStep / 2, levels: 2, signal },
  );
  const picks = set.picks.map((p, i) => {
    const r = refined[i] as RefinedOrientation;
    return { ...p, rotation: r.rotation, pytmeEuler: r.pytmeEuler, relionEuler: r.relionEuler };
  });
  return { picks, refined };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? (s[s.length >> 1] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

/** The line that reports a refinement: how far the orientations moved and what the scores gained. */
export function describeRefinement(refined: readonly RefinedOrientation[], prefix: string): string {
  return `${prefix}: refined ${refined.length} orientations: median change ${median(refined.map((r) => r.angularChange)).toFixed(1)}°, `
    + `median score gain ${median(refined.map((r) => r.score - r.originalScore)).toFixed(4)}\n`;
}

/** Whether a job's score can be re-scored per voxel (mcc needs whole-tile overlaps). */
export function refinable(job: MatchJob): boolean {
  return (job.score ?? 'flc-sphere').toString().toLowerCase() !== 'mcc';
}

const text = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));

/** Rebuilds a finished job's search (inputs, template, filters) from its job.json, for `tme peaks --refine`. */
export async function jobFromRecord(record: JobRecord, dir: string): Promise<{ job: MatchJob; angularStep: number }> {
  const inputs = (record.inputs ?? {}) as Record<string, unknown>;
  const params = record.parameters;
  if (typeof inputs['target'] !== 'string' || typeof inputs['template'] !== 'string' || typeof inputs['angularStep'] !== 'number') {
    throw new TmeError('ERR_TME_FORMAT', 'job.json does not name its target, template and angular step (was it written by tme match?)', { file: dir });
  }
  const filters = (inputs['filters'] ?? {}) as Record<string, unknown>;
  const flags: MatchFlags = {
    target: inputs['target'], template: inputs['template'], templateMask: text(inputs['templateMask']),
    maskRadius: inputs['templateMask'] ? undefined : text(params.maskRadius), targetMask: text(inputs['targetMask']),
    angularStep: String(inputs['angularStep']), symmetry: 'C1', score: params.score, device: 'cpu', tile: 'auto',
    padTarget: params.padTarget, interpolation: params.interpolation, rotationMode: 'real', background: 'none',
    tiltAxis: text(filters['tiltAxis']) ?? 'y', voltage: text(filters['voltage']), cs: text(filters['cs']),
    amplitudeContrast: text(filters['amplitudeContrast']), phaseShift: text(filters['phaseShift']), tomoName: text(inputs['tomoName']),
    tiltRange: text(filters['tiltRange']), tiltAngles: text(filters['tiltAngles']), dose: text(filters['dose']),
    defocus: text(filters['defocus']), phaseFlip: filters['phaseFlip'] === true, cosineWeighting: filters['cosineWeighting'] === true,
    lowpass: text(filters['lowpass']), highpass: text(filters['highpass']), whiten: filters['whiten'] === true,
    invertContrast: filters['invertContrast'] === true, resample: filters['resample'] === true,
    modelResolution: text(filters['modelResolution']), modelBfactor: text(filters['modelBfactor']) ?? '0',
    templateBox: text(filters['templateBox']), output: dir,
  };
  const setup = await setupMatch(flags, { createDir: false });
  const shape: Zyx = setup.job.target.shape;
  if (shape.some((n, i) => n !== (params.targetShape[i] as number))) {
    throw new TmeError('ERR_TME_MISMATCH', `the target now has shape (${shape.join(', ')}), the job searched (${params.targetShape.join(', ')})`, { file: flags.target });
  }
  return { job: setup.job, angularStep: inputs['angularStep'] };
}
