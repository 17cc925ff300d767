import * as path from 'node:path';
import { invalidOption, type Zyx } from '@tme/formats';
import { ANGULAR_STEP_RANGE, parseSymmetry, type RotationListConvention } from '@tme/rotations';
import {
  TEMPLATE_AXES, checkJobOptions, type Background, type TemplateAxis, type DeviceSelection, type Interpolation, type OptionNames, type PadMode, type RotationMode, type SpectrumPrecision, type ScoreName,
} from '@tme/engine';

/**
 * One search, as a user describes it: what is matched (template and masks), against what (target), over which
 * rotations, with which filters and score, on which device. Every value is typed (numbers in their units, files as
 * absolute paths once resolved), so a search is stored in job.json as it is and rebuilt from it without a string
 * round trip. Units: Å, degrees, e⁻/Å², kV, mm.
 */
export interface SearchOptions {
  target: string;
  /** A map (MRC/EM; the target's voxel size unless `resample`) or an atomic model (PDB/mmCIF, simulated). */
  template: string;
  /** A mask on the template's box; default a sphere of `maskRadius`. */
  templateMask?: string;
  /** Å; default the largest sphere inside the box. */
  maskRadius?: number;
  /** Semi-axes (Å, z, y, x) of an ellipsoidal mask about the box centre. */
  maskEllipsoid?: [number, number, number];
  /** A mask from the template itself: voxels above this fraction of its maximum (of the protein's density: its
   *  minimum with invertContrast), grown by maskDilation. */
  maskThreshold?: number;
  /** Å the threshold mask is grown by. */
  maskDilation?: number;
  /** Å of raised-cosine fall-off outside a radius, ellipsoid or threshold mask (default a hard edge). */
  maskEdge?: number;
  /** 0/1, the target's shape: needed by mcc, restricts the score statistics. */
  targetMask?: string;
  /** Degrees: the largest angle from any orientation to the nearest searched rotation. Required unless `rotations`;
   *  with it, the orientation refinement's scale (default: the list's measured covering angle). */
  angularStep?: number;
  /** A rotation list searched as given instead of a sampled set (text list or pyTME's quaternion .npy). */
  rotations?: string;
  /** Columns of a text `rotations` list; default relion (none for a .npy). */
  rotationsConvention?: RotationListConvention;
  symmetry: string;
  /** The `index`-th (from 0) of `count` contiguous parts of the rotations (a SLURM array task's). */
  shard?: { index: number; count: number };
  /** What a shard splits: the rotations (each shard searches the whole target) or the tile plan's tiles (each
   *  shard searches every rotation on its part of the target: a tomogram too large for one device). */
  shardBy?: 'rotations' | 'tiles';
  score: ScoreName;
  device: DeviceSelection;
  threads?: number;
  tile: 'auto' | Zyx;
  /** Bytes of host memory the job may use; default what is free. */
  memoryLimitBytes?: number;
  padTarget: PadMode;
  interpolation: Interpolation;
  rotationMode: RotationMode;
  /** Vulkan: the target's spectra on the device as float32 ('single') or float16 pairs ('half'). */
  spectrumPrecision: SpectrumPrecision;
  /** Features that score high for every rotation (membranes, gold): 'none', 'rotation-stats' (per voxel mean and σ
   *  over rotations, and (best − mean)/σ) or 'random-phase' (a second search with a phase-randomised template). */
  background: Background;
  /** Priors per position: a STAR or table of positions and vectors (priors.ts); around each, only rotations that turn
   *  the template's `priorAxis` to within `priorCone` of the vector are searched, within `priorRadius`. */
  priors?: string;
  /** Degrees: the half-angle of each prior's cone (required with `priors`). */
  priorCone?: number;
  /** Å: how far from each prior position its cone holds (required with `priors`); voxels farther from every prior
   *  are not searched. */
  priorRadius?: number;
  /** The template axis a prior's vector gives: 'z' (default), 'y' or 'x'. */
  priorAxis: TemplateAxis;

  /** A continuous missing wedge, degrees [min, max]. */
  tiltRange?: [number, number];
  tiltAxis: 'y' | 'x';
  /** Per-tilt angles: IMOD .tlt/.rawtlt, SerialEM .mdoc, Warp .xml, RELION 5 tomograms.star / tilt-series .star. */
  tiltAngles?: string;
  /** The row of a RELION tomograms.star; also the name of the exports. */
  tomoName?: string;
  /** e⁻/Å² per tilt (accumulated from 0° outwards), or a file of accumulated doses. */
  dose?: number | string;
  /** Å (positive = underfocus), or an IMOD .defocus / CTFFIND file. */
  defocus?: number | string;
  /** The defocus gradient: each CTF zone gets the defocus at its height (and, per tilt, its distance from the tilt
   *  axis); 1 = IMOD/Dynamo's sign, −1 the other, 0 one defocus everywhere. Default 0 (measured: README, "Defocus gradient"). */
  defocusHandedness?: -1 | 0 | 1;
  /** kV; default the metadata's, else DEFAULT_MICROSCOPE's. */
  voltage?: number;
  /** mm. */
  sphericalAberration?: number;
  amplitudeContrast?: number;
  /** Degrees. */
  phaseShift?: number;
  phaseFlip: boolean;
  cosineWeighting: boolean;
  /** Å. */
  lowpass?: number;
  highpass?: number;
  whiten: boolean;
  invertContrast: boolean;
  resample: boolean;
  /** Å, for an atomic model. */
  modelResolution?: number;
  /** Å², for an atomic model. */
  modelBfactor: number;
  /** Voxels (even). */
  templateBox?: number;
  /** Templates 1, 2, … searched in the same pass as `template` (template 0), each with its own mask, radius and
   *  symmetry; the mask shape flags (ellipsoid, threshold, edge), filters and template box apply to every template.
   *  Absent: one template. */
  moreTemplates?: MoreTemplate[];
}

/** A further template of a search (tme's --template given again), with what belongs to it alone. */
export interface MoreTemplate {
  template: string;
  templateMask?: string;
  /** Å; default the largest sphere inside its box. */
  maskRadius?: number;
  symmetry: string;
}

/** What a caller must give; everything else has a default. */
export type SearchInput = Partial<Omit<SearchOptions, 'score'>> & Pick<SearchOptions, 'target' | 'template'> & {
  /** A score name or pyTME's (CC, LCC, CORR, CAM, FLC, FLCSphericalMask, MCC). */
  score?: ScoreName | string;
};

/** Every default of a search, stated once (the CLI shows these in its help). */
export const SEARCH_DEFAULTS = Object.freeze({
  symmetry: 'C1',
  shardBy: 'rotations' as 'rotations' | 'tiles',
  score: 'flc-sphere' as ScoreName,
  device: 'auto' as DeviceSelection,
  tile: 'auto' as const,
  padTarget: 'mean' as PadMode,
  interpolation: 'linear' as Interpolation,
  rotationMode: 'real' as RotationMode,
  // Until a GPU has measured it (test/gpu/check.sh times both): README, "On a cluster GPU node".
  spectrumPrecision: 'single' as SpectrumPrecision,
  background: 'none' as Background,
  priorAxis: 'z' as TemplateAxis,
  tiltAxis: 'y' as const,
  phaseFlip: false,
  cosineWeighting: false,
  whiten: false,
  invertContrast: false,
  resample: false,
  modelBfactor: 0,
});

/** How each option is spelled on tme's command line: messages name the flag the user typed. */
export const SEARCH_FLAGS: Readonly<Record<keyof SearchOptions, string>> = Object.freeze({
  target: '--target', template: '--template', templateMask: '--template-mask', maskRadius: '--mask-radius',
  maskEllipsoid: '--mask-ellipsoid', maskThreshold: '--mask-threshold', maskDilation: '--mask-dilation', maskEdge: '--mask-edge',
  targetMask: '--target-mask', angularStep: '--angular-step', rotations: '--rotations', rotationsConvention: '--rotations-convention',
  symmetry: '--symmetry', shard: '--shard', shardBy: '--shard-by', score: '--score', device: '--device', threads: '--threads', tile: '--tile',
  memoryLimitBytes: '--memory', padTarget: '--pad-target', interpolation: '--interpolation', rotationMode: '--rotation-mode', spectrumPrecision: '--spectrum-precision',
  background: '--background', priors: '--priors', priorCone: '--prior-cone', priorRadius: '--prior-radius', priorAxis: '--prior-axis',
  tiltRange: '--tilt-range', tiltAxis: '--tilt-axis', tiltAngles: '--tilt-angles', tomoName: '--tomo-name', dose: '--dose',
  defocus: '--defocus', defocusHandedness: '--defocus-handedness', voltage: '--voltage', sphericalAberration: '--cs', amplitudeContrast: '--amplitude-contrast',
  phaseShift: '--phase-shift', phaseFlip: '--phase-flip', cosineWeighting: '--cosine-weighting', lowpass: '--lowpass',
  highpass: '--highpass', whiten: '--whiten', invertContrast: '--invert-contrast', resample: '--resample',
  modelResolution: '--model-resolution', modelBfactor: '--model-bfactor', templateBox: '--template-box',
  moreTemplates: '--template',
});

const ENGINE_NAMES: OptionNames = {
  score: SEARCH_FLAGS.score, device: SEARCH_FLAGS.device, threads: SEARCH_FLAGS.threads, tile: SEARCH_FLAGS.tile,
  padTarget: SEARCH_FLAGS.padTarget, interpolation: SEARCH_FLAGS.interpolation, rotationMode: SEARCH_FLAGS.rotationMode,
  spectrumPrecision: SEARCH_FLAGS.spectrumPrecision,
  memoryLimitBytes: SEARCH_FLAGS.memoryLimitBytes, maskRadius: SEARCH_FLAGS.maskRadius, background: SEARCH_FLAGS.background,
  sharded: SEARCH_FLAGS.shard,
  zoned: SEARCH_FLAGS.defocusHandedness,
};

const CONVENTIONS: readonly RotationListConvention[] = ['relion', 'pytme', 'matrix'];

/** Whether the options ask for a Fourier filter of the template. */
export function isFiltered(o: Pick<SearchOptions, 'tiltRange' | 'tiltAngles' | 'defocus' | 'lowpass' | 'highpass' | 'whiten'>): boolean {
  return o.tiltRange !== undefined || o.tiltAngles !== undefined || o.defocus !== undefined
    || o.lowpass !== undefined || o.highpass !== undefined || o.whiten;
}

function check(ok: boolean, field: keyof SearchOptions, expected: string, value: unknown): void {
  if (!ok) throw invalidOption(SEARCH_FLAGS[field], expected, value);
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isFile = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/**
 * The search's defaults filled in, every value checked, files made absolute (against `cwd`): the one place a
 * search's options are validated. Messages name tme's flags ("Expected … for --angular-step but received …").
 * Checks that need the inputs themselves (a template box against the target's size, a rotation list's length
 * against --shard) are the plan's.
 */
export function resolveSearchOptions(input: SearchInput, cwd = process.cwd()): SearchOptions {
  const o: SearchOptions = { ...SEARCH_DEFAULTS, ...stripUndefined(input) } as SearchOptions;
  const file = (field: 'target' | 'template' | 'templateMask' | 'targetMask' | 'rotations' | 'tiltAngles' | 'priors'): void => {
    const v = o[field];
    if (v === undefined && field !== 'target' && field !== 'template') return;
    check(isFile(v), field, 'a file name', v);
    o[field] = path.resolve(cwd, v as string);
  };
  for (const f of ['target', 'template', 'templateMask', 'targetMask', 'rotations', 'tiltAngles', 'priors'] as const) file(f);
  for (const f of ['dose', 'defocus'] as const) if (typeof o[f] === 'string') o[f] = path.resolve(cwd, o[f] as string);

  const masks = (['templateMask', 'maskRadius', 'maskEllipsoid', 'maskThreshold'] as const).filter((k) => o[k] !== undefined);
  check(masks.length <= 1, masks[1] ?? 'maskRadius', `only one of ${masks.map((k) => SEARCH_FLAGS[k]).join(' and ')}`, 'both');
  if (o.maskEllipsoid !== undefined) {
    check(Array.isArray(o.maskEllipsoid) && o.maskEllipsoid.length === 3 && o.maskEllipsoid.every((r) => finite(r) && r > 0), 'maskEllipsoid',
      'Z,Y,X semi-axes > 0 Å', String(o.maskEllipsoid));
  }
  if (o.maskThreshold !== undefined) check(finite(o.maskThreshold) && o.maskThreshold > 0 && o.maskThreshold < 1, 'maskThreshold', 'a fraction of the template\'s maximum in (0, 1)', o.maskThreshold);
  if (o.maskDilation !== undefined) {
    check(o.maskThreshold !== undefined, 'maskDilation', 'a threshold mask to grow (--mask-threshold)', o.maskDilation);
    check(finite(o.maskDilation) && o.maskDilation >= 0, 'maskDilation', 'a distance ≥ 0 Å', o.maskDilation);
  }
  if (o.maskEdge !== undefined) {
    check(o.maskRadius !== undefined || o.maskEllipsoid !== undefined || o.maskThreshold !== undefined, 'maskEdge',
      'a mask tme makes to soften (--mask-radius, --mask-ellipsoid or --mask-threshold)', o.maskEdge);
    check(finite(o.maskEdge) && o.maskEdge >= 0, 'maskEdge', 'a width ≥ 0 Å', o.maskEdge);
  }
  // Priors: the cone and radius are the user's to state (how far the vectors may be off, how far a prior reaches);
  // none of the three acts without a prior file, so none is taken without one.
  if (o.priors === undefined) {
    for (const k of ['priorCone', 'priorRadius'] as const) check(input[k] === undefined, k, `it only with ${SEARCH_FLAGS.priors} <file>`, input[k]);
    // The default axis passes (a resolved search is resolved again as it is); another one would act on nothing.
    check(o.priorAxis === SEARCH_DEFAULTS.priorAxis, 'priorAxis', `it only with ${SEARCH_FLAGS.priors} <file>`, o.priorAxis);
  } else {
    check(finite(o.priorCone) && o.priorCone > 0 && o.priorCone <= 180, 'priorCone', 'a cone half-angle in (0, 180] degrees', o.priorCone);
    check(finite(o.priorRadius) && o.priorRadius > 0, 'priorRadius', 'a radius > 0 Å around each prior', o.priorRadius);
    check(TEMPLATE_AXES.includes(o.priorAxis), 'priorAxis', 'z, y or x (the template axis the vectors give)', o.priorAxis);
    check(o.background === 'none', 'background', `none with ${SEARCH_FLAGS.priors} (a voxel's statistics over rotations would mix its cone's rotations with others)`, o.background);
  }
  const engine = checkJobOptions({ ...o, zoned: (o.defocusHandedness ?? 0) !== 0, sharded: o.shard !== undefined }, ENGINE_NAMES);
  o.score = engine.score;

  // Rotations: a sampled set, or a list searched as given.
  const [minStep, maxStep] = ANGULAR_STEP_RANGE;
  if (o.angularStep !== undefined) {
    check(finite(o.angularStep) && o.angularStep >= minStep && o.angularStep <= maxStep, 'angularStep', `a number of degrees from ${minStep} to ${maxStep}`, o.angularStep);
  }
  o.symmetry = parseSymmetry(o.symmetry, SEARCH_FLAGS.symmetry).name;
  if (o.rotations !== undefined) {
    check(o.symmetry === 'C1', 'symmetry', 'C1 with --rotations (a rotation list is searched as given; list only the asymmetric unit)', o.symmetry);
    const npy = o.rotations.toLowerCase().endsWith('.npy');
    if (npy) {
      check(o.rotationsConvention === undefined, 'rotationsConvention', 'no convention for a .npy rotation list (it holds quaternions x, y, z, w as pyTME\'s sets do)', o.rotationsConvention);
    } else {
      o.rotationsConvention ??= 'relion';
      check(CONVENTIONS.includes(o.rotationsConvention), 'rotationsConvention', CONVENTIONS.join(', '), o.rotationsConvention);
    }
  } else {
    check(o.rotationsConvention === undefined, 'rotationsConvention', 'it only with --rotations <file>', o.rotationsConvention);
  }
  // A split by tiles without a shard would be accepted and ignored: refused (rotations is every search's default).
  check(input.shardBy !== 'tiles' || input.shard !== undefined, 'shardBy', 'a shard to split by (--shard i/n)', input.shardBy);
  check(o.shardBy === 'rotations' || o.shardBy === 'tiles', 'shardBy', 'rotations or tiles', o.shardBy);
  if (o.shard !== undefined) {
    const { index, count } = o.shard;
    check(Number.isInteger(index) && Number.isInteger(count) && count >= 1 && index >= 0 && index < count, 'shard',
      'i/n with 0 ≤ i < n (the i-th of n parts of the rotations, from 0)', `${index}/${count}`);
  }

  // Filters: every flag acts or is refused; none is silently dropped.
  check(o.tiltAxis === 'y' || o.tiltAxis === 'x', 'tiltAxis', 'y or x', o.tiltAxis);
  if (o.tiltRange !== undefined) {
    const [lo, hi] = o.tiltRange;
    check(o.tiltRange.length === 2 && finite(lo) && finite(hi) && Math.abs(lo) <= 90 && Math.abs(hi) <= 90 && lo < hi, 'tiltRange',
      'MIN,MAX in degrees with −90 ≤ MIN < MAX ≤ 90', o.tiltRange.join(','));
    check(o.tiltAngles === undefined, 'tiltRange', 'only one of --tilt-range and --tilt-angles (the angles give the range)', 'both');
  }
  check(!(o.cosineWeighting && o.tiltRange === undefined && o.tiltAngles === undefined), 'cosineWeighting',
    'a tilt range or angles to weight (--tilt-range or --tilt-angles)', 'neither');
  if (o.dose !== undefined) {
    check(o.tiltAngles !== undefined, 'dose', 'per-tilt angles as well (--tilt-angles)', o.dose);
    if (typeof o.dose === 'number') check(finite(o.dose) && o.dose >= 0, 'dose', 'a dose ≥ 0 e⁻/Å² per tilt or a file', o.dose);
  }
  if (typeof o.defocus === 'number') check(finite(o.defocus) && o.defocus > 0, 'defocus', 'a defocus > 0 (underfocus), e.g. 3um or 30000A', o.defocus);
  if (o.defocusHandedness !== undefined) {
    check(([-1, 0, 1] as unknown[]).includes(o.defocusHandedness), 'defocusHandedness', '1, -1 or 0', o.defocusHandedness);
  }
  if (o.voltage !== undefined) check(finite(o.voltage) && o.voltage > 0, 'voltage', 'a voltage > 0 kV', o.voltage);
  if (o.sphericalAberration !== undefined) {
    check(finite(o.sphericalAberration) && o.sphericalAberration >= 0, 'sphericalAberration', 'a spherical aberration ≥ 0 mm', o.sphericalAberration);
  }
  if (o.amplitudeContrast !== undefined) {
    check(finite(o.amplitudeContrast) && o.amplitudeContrast >= 0 && o.amplitudeContrast < 1, 'amplitudeContrast', 'a fraction in [0, 1)', o.amplitudeContrast);
  }
  if (o.phaseShift !== undefined) check(finite(o.phaseShift), 'phaseShift', 'a phase shift in degrees', o.phaseShift);
  if (o.lowpass !== undefined) check(finite(o.lowpass) && o.lowpass > 0, 'lowpass', 'a resolution > 0 Å', o.lowpass);
  if (o.highpass !== undefined) {
    check(finite(o.highpass) && o.highpass > 0, 'highpass', 'a resolution > 0 Å', o.highpass);
    if (o.lowpass !== undefined) check(o.highpass > o.lowpass, 'highpass', `a resolution coarser (larger) than --lowpass ${o.lowpass} Å`, o.highpass);
  }
  if (o.modelResolution !== undefined) check(finite(o.modelResolution) && o.modelResolution > 0, 'modelResolution', 'a resolution > 0 Å', o.modelResolution);
  check(finite(o.modelBfactor) && o.modelBfactor >= 0, 'modelBfactor', 'a B-factor ≥ 0 Å²', o.modelBfactor);
  if (o.templateBox !== undefined) {
    check(Number.isInteger(o.templateBox) && o.templateBox >= 4 && o.templateBox % 2 === 0, 'templateBox', 'an even integer ≥ 4', o.templateBox);
  }
  if (o.moreTemplates !== undefined) resolveMoreTemplates(o, cwd);
  return o;
}

/** Each further template checked as template 0's fields are, with its own mask, radius and symmetry. */
function resolveMoreTemplates(o: SearchOptions, cwd: string): void {
  const more = o.moreTemplates as MoreTemplate[];
  check(Array.isArray(more), 'moreTemplates', 'a list of templates', more);
  if (more.length === 0) {
    delete o.moreTemplates;
    return;
  }
  // Shards split one rotation set and background maps are per template: neither is built for several templates.
  check(o.shard === undefined, 'shard', `no shard with several templates (${SEARCH_FLAGS.template} given ${more.length + 1} times)`, `${o.shard?.index}/${o.shard?.count}`);
  check(o.background === 'none', 'background', `none with several templates (${SEARCH_FLAGS.template} given ${more.length + 1} times)`, o.background);
  // Priors restrict one template's axis: with several, which axis of which template would be meant is not defined.
  check(o.priors === undefined, 'priors', `no priors with several templates (${SEARCH_FLAGS.template} given ${more.length + 1} times)`, o.priors);
  o.moreTemplates = more.map((t) => {
    check(isFile(t.template), 'template', 'a file name', t.template);
    const entry: MoreTemplate = { template: path.resolve(cwd, t.template), symmetry: parseSymmetry(t.symmetry ?? SEARCH_DEFAULTS.symmetry, SEARCH_FLAGS.symmetry).name };
    if (t.templateMask !== undefined) {
      check(isFile(t.templateMask), 'templateMask', 'a file name', t.templateMask);
      const made = (['maskEllipsoid', 'maskThreshold'] as const).filter((k) => o[k] !== undefined);
      check(made.length === 0 && t.maskRadius === undefined, 'templateMask', `only one of ${SEARCH_FLAGS.templateMask} and ${[...made.map((k) => SEARCH_FLAGS[k]), ...(t.maskRadius === undefined ? [] : [SEARCH_FLAGS.maskRadius])].join(', ')}`, 'both');
      entry.templateMask = path.resolve(cwd, t.templateMask);
    }
    if (t.maskRadius !== undefined) {
      check(finite(t.maskRadius) && t.maskRadius > 0, 'maskRadius', 'a radius > 0 Å', t.maskRadius);
      entry.maskRadius = t.maskRadius;
    }
    if (o.rotations !== undefined) {
      check(entry.symmetry === 'C1', 'symmetry', 'C1 with --rotations (a rotation list is searched as given; list only the asymmetric unit)', entry.symmetry);
    }
    return entry;
  });
}

/** A search (not a look at its template) needs rotations: a step to sample, or a list. */
export function checkRotationsGiven(o: SearchOptions): void {
  const [minStep, maxStep] = ANGULAR_STEP_RANGE;
  if (o.rotations === undefined) {
    check(o.angularStep !== undefined, 'angularStep', `a number of degrees from ${minStep} to ${maxStep} (or a rotation list, --rotations <file>)`, undefined);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
