import * as fs from 'node:fs';
import type { Command } from 'commander';
import { invalidOption, TmeError, writeFileAtomic } from '@tme/formats';
import { SEARCH_DEFAULTS, formatAnglesTsv, searchRotations, type RotationSet } from '@tme/search';

export interface AnglesCliOptions {
  /** Degrees (string as typed). */
  angularStep: string;
  symmetry?: string;
  output: string;
  force?: boolean;
}

/** Writes the rotation set of a search as angles.tsv (the job's layout) and prints its size and covering. */
export function runAngles(o: AnglesCliOptions): RotationSet {
  const step = Number(o.angularStep);
  if (String(o.angularStep).trim() === '' || !Number.isFinite(step)) throw invalidOption('--angular-step', 'a number of degrees', o.angularStep);
  if (!o.force && fs.existsSync(o.output)) {
    throw new TmeError('ERR_TME_EXISTS', 'exists (use --force to replace it)', { file: o.output });
  }
  const set = searchRotations(step, o.symmetry ?? SEARCH_DEFAULTS.symmetry);
  writeFileAtomic(o.output, formatAnglesTsv(set));
  process.stdout.write(
    `${set.count} rotations, ${set.symmetry}, step ${set.angularStep}°: measured covering ${set.coveringAngle.toFixed(2)}°`
    + ` (proven bound ${set.coveringBound.toFixed(2)}°) → ${o.output}\n`,
  );
  return set;
}

export function register(program: Command): void {
  program
    .command('angles')
    .description('write the rotations a search at this angular step uses (angles.tsv: index, RELION rot/tilt/psi in degrees)')
    .requiredOption('--angular-step <deg>', 'largest angle from any orientation to the nearest sampled rotation, degrees (2–180)')
    .option('--symmetry <group>', 'template symmetry: C1, Cn, Dn, T, O, I (RELION orientations); only an asymmetric unit is written', SEARCH_DEFAULTS.symmetry)
    .requiredOption('-o, --output <file>', 'output angles.tsv')
    .option('--force', 'replace an existing output')
    .action((options: AnglesCliOptions) => { runAngles(options); });
}
