import { Option, type Command } from 'commander';
import { invalidOption, type Zyx } from '@tme/formats';
import { PAD_MODES, SCORE_NAMES, listDevices, type DeviceSelection, type DeviceSpec } from '@tme/engine';
import {
  DEFAULT_MICROSCOPE, MICROSCOPE_RULE, SEARCH_DEFAULTS, parseDefocusValue, type SearchInput,
} from '@tme/search';

/**
 * The flags of a search as commander hands them over: text. `searchInput` turns them into @tme/search's typed
 * SearchInput and checks only their spelling (is it a number, a list of two); what the values may be is the
 * search layer's to check, once, in its words (which name these flags).
 */
export interface SearchFlags {
  target: string;
  /** The per-template flags are repeatable (several templates in one pass): one value, or one per --template. */
  template: string | string[];
  templateMask?: string | string[];
  maskRadius?: string | string[];
  maskEllipsoid?: string;
  maskThreshold?: string;
  maskDilation?: string;
  maskEdge?: string;
  targetMask?: string;
  angularStep?: string;
  rotations?: string;
  rotationsConvention?: string;
  symmetry: string | string[];
  score: string;
  device: string;
  threads?: string;
  tile: string;
  memory?: string;
  shard?: string;
  shardBy?: string;
  padTarget: string;
  interpolation: string;
  rotationMode: string;
  spectrumPrecision: string;
  background: string;
  priors?: string;
  priorCone?: string;
  priorRadius?: string;
  /** No commander default: a typed axis without --priors is refused, not ignored. */
  priorAxis?: string;
  tomoName?: string;
  tiltRange?: string;
  tiltAxis: string;
  tiltAngles?: string;
  dose?: string;
  defocus?: string;
  defocusHandedness?: string;
  /** Microscope flags: no commander defaults, so a typed value is told apart from a metadata file's. */
  voltage?: string;
  cs?: string;
  amplitudeContrast?: string;
  phaseShift?: string;
  phaseFlip?: boolean;
  cosineWeighting?: boolean;
  lowpass?: string;
  highpass?: string;
  whiten?: boolean;
  invertContrast?: boolean;
  resample?: boolean;
  modelResolution?: string;
  modelBfactor?: string;
  templateBox?: string;
}

/** A number as typed (range checks are the search's). */
function number(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw invalidOption(flag, 'a number', text);
  return v;
}

/** "a,b" → [a, b]. */
function pair(flag: string, text: string | undefined, what: string): [number, number] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.length !== 2 || parts.some((s) => s === '') || values.some((v) => !Number.isFinite(v))) throw invalidOption(flag, what, text);
  return [values[0] as number, values[1] as number];
}

/** "z,y,x" → [z, y, x]. */
function triple(flag: string, text: string | undefined, what: string): [number, number, number] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.length !== 3 || parts.some((s) => s === '') || values.some((v) => !Number.isFinite(v))) throw invalidOption(flag, what, text);
  return [values[0] as number, values[1] as number, values[2] as number];
}

/** A number (in the flag's unit) or a file name. */
function numberOrFile(text: string | undefined, asNumber: (t: string) => number | undefined): number | string | undefined {
  if (text === undefined) return undefined;
  return asNumber(text) ?? text;
}

/** A memory size as SLURM's --mem writes it: a number with K, M, G or T (binary units; "GiB", "GB" alike) or bytes. */
export function parseMemorySize(flag: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  const bytes = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()) : NaN;
  if (!(bytes >= 2 ** 20 && Number.isFinite(bytes))) throw invalidOption(flag, 'a memory size of at least 1M, like 8G, 512M or 16GiB', text);
  return Math.floor(bytes);
}

/** The host memory a command may use: the free memory (the CPU device's: MemAvailable, within the cgroup's limit),
 *  capped by its --memory; `limited` when the flag set the cap. */
export function allowedHostMemory(memory: string | undefined): { available: number; limited: boolean } {
  const limit = memory === undefined ? undefined : parseMemorySize('--memory', memory);
  const free = listDevices().devices.find((d) => d.index === 'cpu')?.memoryBytes ?? Infinity;
  return { available: Math.min(free, limit ?? Infinity), limited: limit !== undefined };
}

/** What --device takes, for its help and its errors. */
export const DEVICE_CHOICES = 'auto, gpu, cpu, vulkan-cpu, a device index, gpu:all (every GPU), or a comma-separated list (e.g. 0,1 or 0,cpu) that splits the rotations across the devices';

export function parseDevice(text: string): DeviceSelection {
  if (text === 'gpu:all') return text;
  const specs: DeviceSpec[] = [];
  for (const part of text.split(',').map((s) => s.trim())) {
    if (part === 'auto' || part === 'gpu' || part === 'cpu' || part === 'vulkan-cpu') specs.push(part);
    else if (/^\d+$/.test(part)) specs.push(Number(part));
    else throw invalidOption('--device', DEVICE_CHOICES, text);
  }
  return specs.length === 1 ? specs[0] as DeviceSpec : specs;
}

export function parseTile(text: string): 'auto' | Zyx {
  if (text === 'auto') return 'auto';
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length !== 3 || !parts.every((s) => /^\d+$/.test(s))) throw invalidOption('--tile', 'auto or Z,Y,X (three integers ≥ 1, voxels)', text);
  return [Number(parts[0]), Number(parts[1]), Number(parts[2])];
}

/** `i/n` → { index: i, count: n }. */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw invalidOption('--shard', 'i/n with 0 ≤ i < n (the i-th of n parts of the rotations, from 0)', text);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/** commander's collector for a flag that may be given once per template: every value, in order. */
export function repeated(value: string, previous: string | string[] | undefined): string[] {
  // The first value replaces the flag's default (a string); later ones add to the list.
  return Array.isArray(previous) ? [...previous, value] : [value];
}

const listOf = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * The per-template flags matched to the templates by position: --template-mask once per --template (a mask fits one
 * box), --mask-radius and --symmetry once for every template or once per --template.
 */
function perTemplate(flags: SearchFlags): Array<{ template: string; templateMask?: string; maskRadius?: string; symmetry: string }> {
  const templates = listOf(flags.template);
  const masks = listOf(flags.templateMask);
  const radii = listOf(flags.maskRadius);
  const symmetries = listOf(flags.symmetry);
  const n = templates.length;
  const counts = (flag: string, values: string[], once: boolean): void => {
    if (values.length === 0 || values.length === n || (once && values.length === 1)) return;
    throw invalidOption(flag, `${once ? 'one value for every template or ' : ''}one per --template (${n})`, `${values.length} value${values.length === 1 ? '' : 's'}: ${values.join(' ')}`);
  };
  if (n > 1) {
    counts('--template-mask', masks, false);
    counts('--mask-radius', radii, true);
    counts('--symmetry', symmetries, true);
  }
  // One template: a flag given twice means its last value, as for every other flag.
  const at = (values: string[], k: number): string | undefined => (n === 1 ? values[values.length - 1] : values.length === 1 ? values[0] : values[k]);
  return templates.map((template, k) => ({
    template, templateMask: at(masks, k), maskRadius: at(radii, k), symmetry: at(symmetries, k) ?? SEARCH_DEFAULTS.symmetry,
  }));
}

/** The flags as a typed search; values are checked by @tme/search. */
export function searchInput(flags: SearchFlags): SearchInput {
  const [first, ...more] = perTemplate(flags);
  return {
    target: flags.target, template: first?.template as string, templateMask: first?.templateMask,
    ...(more.length > 0 ? {
      moreTemplates: more.map((t) => ({
        template: t.template, symmetry: t.symmetry,
        ...(t.templateMask === undefined ? {} : { templateMask: t.templateMask }),
        ...(t.maskRadius === undefined ? {} : { maskRadius: number('--mask-radius', t.maskRadius) as number }),
      })),
    } : {}),
    maskRadius: number('--mask-radius', first?.maskRadius), maskEllipsoid: triple('--mask-ellipsoid', flags.maskEllipsoid, 'Z,Y,X semi-axes > 0 Å'),
    maskThreshold: number('--mask-threshold', flags.maskThreshold), maskDilation: number('--mask-dilation', flags.maskDilation),
    maskEdge: number('--mask-edge', flags.maskEdge), targetMask: flags.targetMask,
    angularStep: number('--angular-step', flags.angularStep), rotations: flags.rotations,
    rotationsConvention: flags.rotationsConvention as SearchInput['rotationsConvention'],
    symmetry: first?.symmetry, shard: flags.shard === undefined ? undefined : parseShard(flags.shard),
    shardBy: flags.shardBy as SearchInput['shardBy'],
    score: flags.score, device: parseDevice(flags.device), threads: number('--threads', flags.threads), tile: parseTile(flags.tile),
    memoryLimitBytes: flags.memory === undefined ? undefined : parseMemorySize('--memory', flags.memory),
    padTarget: flags.padTarget as SearchInput['padTarget'], interpolation: flags.interpolation as SearchInput['interpolation'],
    rotationMode: flags.rotationMode as SearchInput['rotationMode'],
    spectrumPrecision: flags.spectrumPrecision as SearchInput['spectrumPrecision'], background: flags.background as SearchInput['background'],
    priors: flags.priors, priorCone: number('--prior-cone', flags.priorCone), priorRadius: number('--prior-radius', flags.priorRadius),
    priorAxis: flags.priorAxis as SearchInput['priorAxis'],
    tiltRange: pair('--tilt-range', flags.tiltRange, 'MIN,MAX in degrees with −90 ≤ MIN < MAX ≤ 90'),
    tiltAxis: flags.tiltAxis as SearchInput['tiltAxis'], tiltAngles: flags.tiltAngles, tomoName: flags.tomoName,
    dose: numberOrFile(flags.dose, (t) => (t.trim() !== '' && Number.isFinite(Number(t)) ? Number(t) : undefined)),
    defocus: numberOrFile(flags.defocus, parseDefocusValue),
    defocusHandedness: number('--defocus-handedness', flags.defocusHandedness) as SearchInput['defocusHandedness'],
    voltage: number('--voltage', flags.voltage), sphericalAberration: number('--cs', flags.cs),
    amplitudeContrast: number('--amplitude-contrast', flags.amplitudeContrast), phaseShift: number('--phase-shift', flags.phaseShift),
    phaseFlip: flags.phaseFlip === true, cosineWeighting: flags.cosineWeighting === true,
    lowpass: number('--lowpass', flags.lowpass), highpass: number('--highpass', flags.highpass), whiten: flags.whiten === true,
    invertContrast: flags.invertContrast === true, resample: flags.resample === true,
    modelResolution: number('--model-resolution', flags.modelResolution === '' ? undefined : flags.modelResolution),
    modelBfactor: number('--model-bfactor', flags.modelBfactor), templateBox: number('--template-box', flags.templateBox),
  };
}

const D = SEARCH_DEFAULTS;

/** The filter flags shared by `tme match`, `tme run`, `tme estimate`, `tme template` and `tme batch`. */
export function addFilterOptions(cmd: Command): Command {
  const m = DEFAULT_MICROSCOPE;
  return cmd
    .option('--tilt-range <min,max>', 'sampled tilt range in degrees, e.g. -60,60: a continuous missing wedge')
    .option('--tilt-axis <axis>', 'tilt axis of the tomogram: y or x', D.tiltAxis)
    .option('--tilt-angles <file>', 'per-tilt angles (a weighted, stepped wedge): IMOD .tlt/.rawtlt, SerialEM .mdoc, Warp .xml, or RELION 5 tomograms.star / tilt-series .star (angles, doses, defocus, optics)')
    .option('--tomo-name <name>', 'tomogram name: the row of a RELION tomograms.star (default: the one matching --target); also rlnTomoName and file names of the exports')
    .option('--dose <file|e>', 'accumulated dose per tilt: a one-column file (e⁻/Å², tilt order) or the dose of each tilt (e⁻/Å²)')
    .option('--defocus <value|file>', 'defocus (positive = underfocus): 3um, 3µm, 30000A, 30000Å, 3e4 (a bare number is Å, ≥ 1000), or a file: IMOD .defocus or CTFFIND output')
    .option('--defocus-handedness <1|-1|0>', 'defocus gradient: each CTF zone of the tomogram gets the defocus at its height (and, per tilt, its distance from the tilt axis); 1 = IMOD/Dynamo\'s sign (the right side of a positive tilt is more underfocused), -1 the other, 0 one defocus everywhere (default 0: measured on thick tilted lamellae, the right hand raised the particles\' scores by 0.0–0.1 % at 3 and 5 Å voxels and found no more particles, the wrong hand lost 3× that; tme estimate says how many zones ±1 would make)')
    .option('--voltage <kV>', `acceleration voltage, kV (default: the metadata file's, else ${m.voltage}; ${MICROSCOPE_RULE})`)
    .option('--cs <mm>', `spherical aberration, mm (default: the metadata file's, else ${m.sphericalAberration})`)
    .option('--amplitude-contrast <fraction>', `amplitude contrast (default: the metadata file's, else ${m.amplitudeContrast})`)
    .option('--phase-shift <deg>', 'phase-plate shift, degrees (with a defocus; default 0)')
    .option('--phase-flip', 'the tomogram was phase-flipped: weight the template by |CTF| instead of the signed CTF (needs a defocus)')
    .option('--cosine-weighting', 'weight the wedge by cos(tilt): per tilt with --tilt-angles, per Fourier voxel (the tilt of its plane) with --tilt-range')
    .option('--lowpass <Å>', 'low-pass resolution in Å (Gaussian, gain 0.5 at the cut-off), template and target')
    .option('--highpass <Å>', 'high-pass resolution in Å (Gaussian), template and target')
    .option('--whiten', 'whiten template and target by the target\'s rotationally averaged power spectrum')
    .option('--invert-contrast', 'the tomogram has dark protein: multiply the template by −1 (and tme run inverts the subtomograms it exports)')
    .option('--resample', 'resample a template map whose voxel size differs from the target\'s')
    .option('--model-resolution <Å>', 'with an atomic model as template: low-pass the simulated density to this resolution')
    .option('--model-bfactor <Å²>', 'with an atomic model as template: B-factor added to every atom', String(D.modelBfactor))
    .option('--template-box <voxels>', 'template box edge (even); default: the fast even size around the template');
}

/** The template's flags: what is matched. */
export function addTemplateOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--template <file>', 'template: a map (MRC/EM; same voxel size as the target unless --resample) or an atomic model (PDB/mmCIF, simulated at the target voxel size); give it again for several templates in one pass (per voxel the best)', repeated)
    .option('--template-mask <file>', 'template mask (MRC, template box); default: a sphere (see --mask-radius); with several templates, one per --template', repeated)
    .option('--mask-radius <Å>', 'radius of a spherical template mask in Å; default: the largest sphere inside the box; with several templates, one for all or one per --template', repeated)
    .option('--mask-ellipsoid <Z,Y,X>', 'an ellipsoidal template mask about the box centre: semi-axes in Å (z, y, x)')
    .option('--mask-threshold <fraction>', 'a template mask from the template itself: voxels above this fraction of its maximum density (e.g. 0.2)')
    .option('--mask-dilation <Å>', 'grow the --mask-threshold mask by this distance')
    .option('--mask-edge <Å>', 'soft (raised-cosine) fall-off of a --mask-radius, --mask-ellipsoid or --mask-threshold mask, outside it');
}

/** The options every command that matches shares (match, run, estimate, slurm, batch), with one spelling per concept. */
export function addSearchFlags(cmd: Command, options: { target?: boolean } = {}): Command {
  // tme batch takes its tomograms from a manifest.
  if (options.target !== false) cmd.requiredOption('--target <file>', 'tomogram (MRC or EM)');
  addTemplateOptions(cmd)
    .option('--target-mask <file>', 'target mask (MRC, target shape, values 0 or 1): required by mcc, restricts score statistics')
    .option('--angular-step <deg>', 'largest angle from any orientation to the nearest searched rotation, degrees (required unless --rotations; with it, the scale of the orientation refinement)')
    .option('--rotations <file>', 'search exactly these rotations instead of a sampled set: a text list (one rotation per line; see --rotations-convention) or pyTME\'s rotation set (.npy of quaternions x, y, z, w[, weight])')
    .option('--rotations-convention <name>', 'columns of a text --rotations list: relion (rot tilt psi), pytme (euler_x euler_y euler_z of its orientations TSV) or matrix (9 entries, row-major, active template→tomogram); default relion')
    .option('--symmetry <group>', 'template symmetry (C1, Cn, Dn, T, O, I): only an asymmetric unit is searched; with several templates, one for all or one per --template', repeated, D.symmetry)
    .option('--score <name>', `${SCORE_NAMES.join(', ')} (pyTME names accepted)`, D.score)
    .option('--device <device>', `${DEVICE_CHOICES} (see tme devices)`, String(D.device))
    .option('--threads <n>', 'CPU threads for the CPU path (default: all cores)')
    .option('--memory <size>', 'host memory the job may use, e.g. 8G (a cluster allocation); default: what is free when it starts')
    .option('--tile <auto|Z,Y,X>', 'split the target into tiles of Z,Y,X voxels (core + template support − 1; the support is the box or, with a mask, less: tme estimate shows it; an axis one tile spans may read only half the support beyond its core: tme estimate says); auto: only to fit memory', D.tile)
    .option('--pad-target <mode>', `how the target continues beyond its edges: ${PAD_MODES.join(', ')}`, D.padTarget)
    .option('--interpolation <kind>', 'template rotation: linear or cubic', D.interpolation)
    .option('--rotation-mode <mode>', 'real (rotate in real space) or fourier (sample the spectrum)', D.rotationMode)
    .option('--spectrum-precision <p>', 'GPU: the target spectra as single (float32) or half (float16: half their memory and read traffic)', D.spectrumPrecision)
    .option('--background <kind>', 'features that score high for every rotation (membranes, gold): none; rotation-stats (per voxel mean and σ over rotations, writes scores-normalised.mrc = (best − mean)/σ); random-phase (a second search with a phase-randomised template, writes scores-corrected.mrc)', D.background)
    .option('--priors <file>', 'cones of allowed orientations per position: a STAR (rlnCoordinateX/Y/Z in voxels or rlnCenteredCoordinateX/Y/ZAngst; the vector: where rlnAngleTilt/rlnAnglePsi turn the template z axis, or tmeVectorX/Y/Z) or a table with columns x y z (voxels) vx vy vz; voxels farther than --prior-radius from every prior are not searched')
    .option('--prior-cone <deg>', 'with --priors: half-angle of each cone, degrees (the template axis may lie this far from the vector)')
    .option('--prior-radius <A>', 'with --priors: how far from each prior position its cone holds, Å')
    .option('--prior-axis <axis>', `with --priors: the template axis the vectors give, z, y or x (default ${D.priorAxis})`)
    .addOption(new Option('--checkpoint-interval <s>', 'seconds between checkpoints (0: after every batch); default 30').hideHelp());
  return addFilterOptions(cmd);
}
