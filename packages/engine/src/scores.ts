import { invalidOption } from '@tme/formats';
import type { BackendScore } from './backend';

/** The scores tme offers, by the names users already type (pyTME's names are accepted as aliases). */
export const SCORE_NAMES = ['cc', 'lcc', 'corr', 'cam', 'flc', 'flc-sphere', 'mcc'] as const;
export type ScoreName = (typeof SCORE_NAMES)[number];

export const DEFAULT_SCORE: ScoreName = 'flc-sphere';

const ALIASES: Record<string, ScoreName> = {
  cc: 'cc',
  lcc: 'lcc',
  corr: 'corr',
  cam: 'cam',
  flc: 'flc',
  'flc-sphere': 'flc-sphere',
  flcsphericalmask: 'flc-sphere',
  mcc: 'mcc',
};

/** A score name or pyTME alias (case-insensitive: CC, LCC, CORR, CAM, FLC, FLCSphericalMask, MCC) → tme's name. */
export function resolveScore(name: string, option = 'score'): ScoreName {
  const score = ALIASES[name.toLowerCase()];
  if (score === undefined) {
    throw invalidOption(option, `one of ${SCORE_NAMES.join(', ')} (or pyTME's CC, LCC, CORR, CAM, FLC, FLCSphericalMask, MCC)`, name);
  }
  return score;
}

/** How a user score runs on a backend: the backend score and what the engine does to the inputs first. */
export interface ScorePlan {
  backendScore: BackendScore;
  /** Replace target and template by their discrete 6-neighbour Laplacian (lcc). */
  laplace: boolean;
  /** Standardise target and template globally to zero mean, unit variance (cam). */
  standardise: boolean;
  /** The target mask is required (mcc). */
  needsTargetMask: boolean;
  /** Full-size FFTs per rotation with real-space rotation, without and with a Fourier filter. */
  fftsPerRotation: number;
}

export function planScore(score: ScoreName): ScorePlan {
  switch (score) {
    case 'cc':
      return { backendScore: 'cc', laplace: false, standardise: false, needsTargetMask: false, fftsPerRotation: 2 };
    case 'lcc':
      return { backendScore: 'cc', laplace: true, standardise: false, needsTargetMask: false, fftsPerRotation: 2 };
    // corr (Lewis's fast normalised cross-correlation with the unrotated mask) is algebraically flc-sphere.
    case 'corr':
    case 'flc-sphere':
      return { backendScore: 'flc-sphere', laplace: false, standardise: false, needsTargetMask: false, fftsPerRotation: 2 };
    case 'cam':
      return { backendScore: 'flc-sphere', laplace: false, standardise: true, needsTargetMask: false, fftsPerRotation: 2 };
    case 'flc':
      return { backendScore: 'flc', laplace: false, standardise: false, needsTargetMask: false, fftsPerRotation: 5 };
    case 'mcc':
      return { backendScore: 'mcc', laplace: false, standardise: false, needsTargetMask: true, fftsPerRotation: 9 };
  }
}
