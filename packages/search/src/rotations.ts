import { sampleRotations, type RotationSet } from '@tme/rotations';
import { resolveSearchOptions } from './options';

/** The rotation set a search at this step and symmetry samples, its covering measured (`tme angles`). */
export function searchRotations(angularStep: number, symmetry: string): RotationSet {
  // The search's own checks, with its messages; target and template are not needed for the rotations.
  const o = resolveSearchOptions({ target: '-', template: '-', angularStep, symmetry });
  return sampleRotations({ angularStep: o.angularStep as number, symmetry: o.symmetry });
}
