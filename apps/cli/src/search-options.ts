import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { TmeError, createVolume, invalidOption, readStructure, readVolume, type Volume } from '@tme/formats';
import { inFile } from './in-file';
import {
  DEFAULT_MICROSCOPE, buildTemplateFilter, buildTargetFilter, buildTilts, ctffindMicroscope, defocusZones, isIdentityFilter,
  mdocMicroscope, parseCtffind, parseDoseFile, parseImodDefocus, imodDefocusPerView, parseMdoc, parseRelionTiltSeries,
  parseRelionTomograms, parseTiltAngles, parseWarpXml, prepareTemplate, relionMicroscope, resolveMicroscope,
  selectRelionTomogram, simulateDensity, tiltsFromMdoc, tiltsFromRelion, tiltsFromWarp, warpMicroscope, whiteningProfile,
  type DefocusHandedness, type DefocusZones, type FilterFunction, type FilterOptions, type Microscope, type ResolvedMicroscope, type Tilt,
} from '@tme/template';

/**
 * The science flags shared by `tme match`, `tme run` and `tme estimate`: what shapes the template (contrast,
 * resampling, simulation from a model) and the Fourier filter (wedge, tilts, dose, CTF, band-pass, whitening).
 * Parsing and file reading live here; every computation is @tme/template's.
 */
export interface SearchFlags {
  template: string;
  /** The template mask's file (--template-mask), for messages. */
  templateMask?: string;
  /** The tomogram: chooses the row of a RELION tomograms.star given as --tilt-angles. */
  target?: string;
  tomoName?: string;
  tiltRange?: string;
  tiltAxis: string;
  tiltAngles?: string;
  dose?: string;
  defocus?: string;
  /** --defocus-handedness: 1, -1, 0 or undefined (the default: 1 with per-tilt defocus, else off). */
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

/** The rule for microscope values, stated once for every reader of metadata (mdoc, Warp XML, RELION STAR, CTFFIND). */
export const MICROSCOPE_RULE = 'a value you type wins over the metadata file (--tilt-angles, --defocus), the file over the default';

export function addSearchOptions(cmd: Command): Command {
  const d = DEFAULT_MICROSCOPE;
  return cmd
    .option('--tilt-range <min,max>', 'sampled tilt range in degrees, e.g. -60,60: a continuous missing wedge')
    .option('--tilt-axis <axis>', 'tilt axis of the tomogram: y or x', 'y')
    .option('--tilt-angles <file>', 'per-tilt angles (a weighted, stepped wedge): IMOD .tlt/.rawtlt, SerialEM .mdoc, Warp .xml, or RELION 5 tomograms.star / tilt-series .star (angles, doses, defocus, optics)')
    .option('--tomo-name <name>', 'tomogram name: the row of a RELION tomograms.star (default: the one matching --target); also rlnTomoName and file names of the exports')
    .option('--dose <file|e>', 'accumulated dose per tilt: a one-column file (e⁻/Å², tilt order) or the dose of each tilt (e⁻/Å²)')
    .option('--defocus <value|file>', 'defocus (positive = underfocus): 3um, 3µm, 30000A, 30000Å, 3e4 (a bare number is Å, ≥ 1000), or a file: IMOD .defocus or CTFFIND output')
    .option('--defocus-handedness <1|-1|0>', 'defocus gradient: each CTF zone of the tomogram gets the defocus at its height (and, per tilt, its distance from the tilt axis); 1 = IMOD/Dynamo\'s sign (the right side of a positive tilt is more underfocused), -1 the other, 0 one defocus everywhere (default: 1 with per-tilt defocus, else 0)')
    .option('--voltage <kV>', `acceleration voltage, kV (default: the metadata file's, else ${d.voltage}; ${MICROSCOPE_RULE})`)
    .option('--cs <mm>', `spherical aberration, mm (default: the metadata file's, else ${d.sphericalAberration})`)
    .option('--amplitude-contrast <fraction>', `amplitude contrast (default: the metadata file's, else ${d.amplitudeContrast})`)
    .option('--phase-shift <deg>', 'phase-plate shift, degrees (with a defocus; default 0)')
    .option('--phase-flip', 'the tomogram was phase-flipped: weight the template by |CTF| instead of the signed CTF (needs a defocus)')
    .option('--cosine-weighting', 'weight the wedge by cos(tilt): per tilt with --tilt-angles, per Fourier voxel (the tilt of its plane) with --tilt-range')
    .option('--lowpass <Å>', 'low-pass resolution in Å (Gaussian, gain 0.5 at the cut-off), template and target')
    .option('--highpass <Å>', 'high-pass resolution in Å (Gaussian), template and target')
    .option('--whiten', 'whiten template and target by the target\'s rotationally averaged power spectrum')
    .option('--invert-contrast', 'the tomogram has dark protein: multiply the template by −1 (and tme run inverts the subtomograms it exports)')
    .option('--resample', 'resample a template map whose voxel size differs from the target\'s')
    .option('--model-resolution <Å>', 'with an atomic model as template: low-pass the simulated density to this resolution', '')
    .option('--model-bfactor <Å²>', 'with an atomic model as template: B-factor added to every atom', '0')
    .option('--template-box <voxels>', 'template box edge (even); default: the fast even size around the template');
}

function num(flag: string, text: string, check: (v: number) => boolean, expected: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || !check(v)) throw invalidOption(flag, expected, text);
  return v;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TmeError('ERR_TME_IO', code === 'ENOENT' ? 'no such file' : `cannot read (${code ?? String(err)})`, { file, cause: err });
  }
}

export function parseTiltRange(text: string): [number, number] {
  const parts = text.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 2 || parts.some((v) => !Number.isFinite(v) || Math.abs(v) > 90) || (parts[0] as number) >= (parts[1] as number)) {
    throw invalidOption('--tilt-range', 'MIN,MAX in degrees with −90 ≤ MIN < MAX ≤ 90', text);
  }
  return [parts[0] as number, parts[1] as number];
}

/** The microscope values the user typed (undefined where not typed), validated. */
function typedMicroscope(flags: SearchFlags): Partial<Microscope> {
  return {
    voltage: flags.voltage === undefined ? undefined : num('--voltage', flags.voltage, (v) => v > 0, 'a voltage > 0 kV'),
    sphericalAberration: flags.cs === undefined ? undefined : num('--cs', flags.cs, (v) => v >= 0, 'a spherical aberration ≥ 0 mm'),
    amplitudeContrast: flags.amplitudeContrast === undefined ? undefined
      : num('--amplitude-contrast', flags.amplitudeContrast, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)'),
  };
}

const DEFOCUS_VALUE = /^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(µm|μm|um|nm|å|a)?\s*$/i;
const DEFOCUS_UNIT: Record<string, number> = { 'µm': 1e4, 'μm': 1e4, um: 1e4, nm: 10, 'å': 1, a: 1 };

/**
 * One defocus typed as a value, in Å: "3um", "3µm", "3 μm", "3000nm", "30000A", "30000Å", "3e4" (a bare number is Å).
 * A bare number below 1000 Å is refused (3 Å of defocus is a unit mistake, not a tomogram). Undefined: not a value
 * (a file name).
 */
export function parseDefocusValue(text: string): number | undefined {
  const m = DEFOCUS_VALUE.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  const unit = m[2]?.toLowerCase();
  const angstrom = value * (unit === undefined ? 1 : (DEFOCUS_UNIT[unit] as number));
  if (!(angstrom > 0)) throw invalidOption('--defocus', 'a defocus > 0 (underfocus), e.g. 3um or 30000A', text);
  if (unit === undefined && angstrom < 1000) {
    throw new TmeError('ERR_TME_INVALID_OPTION',
      `Expected a defocus of at least 1000 Å for --defocus but received "${text.trim()}" (a bare number is Å): did you mean ${m[1]}um?`);
  }
  return angstrom;
}

/** What a --defocus gives: one value (Å), or per-tilt values from a file with the microscope its header states. */
interface DefocusInput { perTilt: number[]; file?: string; microscope: Partial<Microscope> }

/** One defocus for every tilt, or per tilt from an IMOD .defocus or CTFFIND file (U/V averaged). */
function readDefocus(value: string, tiltCount: number): DefocusInput {
  const single = parseDefocusValue(value);
  if (single !== undefined) return { perTilt: new Array<number>(Math.max(tiltCount, 1)).fill(single), microscope: {} };
  const text = readText(value);
  if (/\.defocus$/i.test(value)) {
    const perTilt = imodDefocusPerView(parseImodDefocus(text, { file: value }), tiltCount).map((e) => (e.defocus1 + e.defocus2) / 2);
    return { perTilt, file: value, microscope: {} };
  }
  const result = parseCtffind(text, { file: value });
  if (tiltCount > 0 && result.rows.length !== tiltCount) {
    throw new TmeError('ERR_TME_MISMATCH', `${result.rows.length} CTFFIND rows for ${tiltCount} tilts`, { file: value });
  }
  return { perTilt: result.rows.map((r) => (r.defocus1 + r.defocus2) / 2), file: value, microscope: ctffindMicroscope(result) };
}

/** Per-tilt angles and what else the file carries, and the microscope values the file states. */
interface TiltFile { tilts: Tilt[]; microscope: Partial<Microscope>; tomoName?: string }

/**
 * A RELION 5 STAR as --tilt-angles: a tomograms.star (the row chosen by --tomo-name or the target's file name, its
 * optics, and the tilt-series STAR it points to) or a tilt-series STAR itself (no optics).
 */
function readRelionTilts(file: string, text: string, flags: SearchFlags): TiltFile {
  if (text.includes('_rlnTomoNominalStageTiltAngle')) {
    return { tilts: tiltsFromRelion({ name: '' }, parseRelionTiltSeries(text, { file })), microscope: {} };
  }
  const row = selectRelionTomogram(parseRelionTomograms(text, { file }), { name: flags.tomoName, target: flags.target }, { file });
  if (row.tiltSeriesStarFile === undefined) {
    throw new TmeError('ERR_TME_FORMAT', `tomogram ${row.name} has no rlnTomoTiltSeriesStarFile (the per-tilt STAR is needed)`, { file });
  }
  const seriesFile = findTiltSeriesStar(row.tiltSeriesStarFile, file);
  const tilts = parseRelionTiltSeries(readText(seriesFile), { file: seriesFile });
  return { tilts: tiltsFromRelion(row, tilts), microscope: relionMicroscope(row), tomoName: row.name };
}

/**
 * RELION writes rlnTomoTiltSeriesStarFile relative to its project folder, an ancestor of the tomograms.star's
 * folder: try it as given, against each ancestor, then its file name next to the tomograms.star.
 */
function findTiltSeriesStar(recorded: string, tomogramsStar: string): string {
  if (path.isAbsolute(recorded)) return recorded;
  const tried: string[] = [];
  for (let dir = path.dirname(path.resolve(tomogramsStar)); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, recorded);
    tried.push(candidate);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  const beside = path.join(path.dirname(tomogramsStar), path.basename(recorded));
  if (fs.existsSync(beside)) return beside;
  throw new TmeError('ERR_TME_IO', `cannot find the tilt-series STAR ${recorded} it names (looked in the folders above it and beside it)`, { file: tomogramsStar });
}

/** Per-tilt angles (and whatever else the file carries) from .tlt/.rawtlt, .mdoc, Warp .xml or a RELION 5 .star. */
function readTiltFile(flags: SearchFlags): TiltFile {
  const file = flags.tiltAngles as string;
  // Values a file carries are checked after parsing (an angle of 1e300): those errors name the file too.
  return inFile(file, () => readTiltFileOf(file, flags));
}

function readTiltFileOf(file: string, flags: SearchFlags): TiltFile {
  const text = readText(file);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.mdoc') {
    const mdoc = parseMdoc(text, { file });
    return { tilts: tiltsFromMdoc(mdoc), microscope: mdocMicroscope(mdoc) };
  }
  if (ext === '.xml') {
    const xml = parseWarpXml(text, { file });
    return { tilts: tiltsFromWarp(xml), microscope: warpMicroscope(xml) };
  }
  if (ext === '.star') return readRelionTilts(file, text, flags);
  return { tilts: buildTilts({ angles: parseTiltAngles(text, { file }) }), microscope: {} };
}

/** Doses from --dose (a file, or one dose per tilt accumulated in collection order). */
function readDoses(value: string, tilts: readonly Tilt[]): number[] {
  const perTilt = Number(value);
  const doses = Number.isFinite(perTilt) && value.trim() !== ''
    ? collectionDoses(tilts, num('--dose', value, (v) => v >= 0, 'a dose ≥ 0 e⁻/Å² per tilt or a file'))
    : parseDoseFile(readText(value), { file: value });
  if (doses.length !== tilts.length) {
    throw new TmeError('ERR_TME_MISMATCH', `${doses.length} doses for ${tilts.length} tilts`, { file: value });
  }
  return doses;
}

/**
 * Accumulated dose when every tilt got the same dose: collected from 0° outwards as a dose-symmetric scheme does
 * (the order of a plain tilt list does not say the collection order, so this is the usual assumption; give a
 * dose file for any other scheme).
 */
function collectionDoses(tilts: readonly Tilt[], perTilt: number): number[] {
  const order = tilts.map((t, i) => [Math.abs(t.angle), i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const doses = new Array<number>(tilts.length).fill(0);
  order.forEach(([, i], rank) => { doses[i] = rank * perTilt; });
  return doses;
}

/** The search's filters and what they were made from. */
export interface SearchFilters {
  options: FilterOptions;
  /** Voltage, Cs and amplitude contrast after the rule (typed > file > default), and where each came from. */
  microscope: ResolvedMicroscope;
  /** The sampled tilt range: --tilt-range, or the extreme angles of --tilt-angles (RELION's wedge volume). */
  tiltRange?: [number, number];
  /** The tomograms.star row used, when --tilt-angles is one. */
  tomoName?: string;
}

/**
 * The filter options the flags ask for (no whitening: that needs the target). Every flag acts or is refused here:
 * a flag that would do nothing in this combination is an error, never silently dropped.
 */
export function searchFiltersFrom(flags: SearchFlags): SearchFilters {
  const options: FilterOptions = {};
  const tiltAxis = flags.tiltAxis === 'x' ? 'x' : flags.tiltAxis === 'y' ? 'y' : undefined;
  if (tiltAxis === undefined) throw invalidOption('--tilt-axis', 'y or x', flags.tiltAxis);
  if (flags.tiltRange !== undefined && flags.tiltAngles !== undefined) {
    throw invalidOption('--tilt-range/--tilt-angles', 'only one of --tilt-range and --tilt-angles (the angles give the range)', 'both');
  }
  if (flags.cosineWeighting && flags.tiltRange === undefined && flags.tiltAngles === undefined) {
    throw invalidOption('--cosine-weighting', 'a tilt range or angles to weight (--tilt-range or --tilt-angles)', 'neither');
  }
  if (flags.dose !== undefined && flags.tiltAngles === undefined) throw invalidOption('--dose', 'per-tilt angles as well (--tilt-angles)', flags.dose);
  const typed = typedMicroscope(flags);
  const phaseShift = flags.phaseShift === undefined ? undefined : num('--phase-shift', flags.phaseShift, () => true, 'a phase shift in degrees');
  const flipPhase = flags.phaseFlip === true;
  const cosineWeighting = flags.cosineWeighting === true;

  let tiltRange: [number, number] | undefined;
  let microscope: ResolvedMicroscope;
  let hasCtf: boolean;
  let tomoName: string | undefined;
  if (flags.tiltAngles !== undefined) {
    const read = readTiltFile(flags);
    tomoName = read.tomoName;
    let tilts = read.tilts;
    if (flags.dose !== undefined) {
      const doses = readDoses(flags.dose, tilts);
      tilts = tilts.map((t, i) => ({ ...t, dose: doses[i] as number }));
    }
    const defocus = flags.defocus === undefined ? undefined : readDefocus(flags.defocus, tilts.length);
    // Files in the order they are read: the tilt file's values first, a CTFFIND header fills what it leaves open.
    microscope = resolveMicroscope(typed, { ...defined(defocus?.microscope ?? {}), ...defined(read.microscope) });
    const scope = microscope.microscope;
    tilts = tilts.map((t, i) => {
      // A typed defocus (or defocus file) replaces the metadata's. Astigmatic defocus (RELION U/V, Warp ± delta) is
      // averaged as for IMOD and CTFFIND files: its azimuth is in the micrograph frame, not the tomogram's.
      const own = t.ctf === undefined ? undefined : (t.ctf.defocus + (t.ctf.defocus2 ?? t.ctf.defocus)) / 2;
      const value = defocus !== undefined ? defocus.perTilt[i] as number : own;
      if (value === undefined) return t;
      return { ...t, ctf: { ...scope, defocus: value, phaseShift: phaseShift ?? t.ctf?.phaseShift ?? 0 } };
    });
    hasCtf = tilts.some((t) => t.ctf !== undefined);
    const angles = tilts.map((t) => t.angle);
    tiltRange = [Math.min(...angles), Math.max(...angles)];
    options.tiltWeighting = { tilts, tiltAxis, cosineWeighting, flipPhase, slabWidth: 'spacing' };
  } else {
    if (flags.tiltRange !== undefined) {
      tiltRange = parseTiltRange(flags.tiltRange);
      options.wedge = { tiltRange, tiltAxis, cosineWeighting };
    }
    const defocus = flags.defocus === undefined ? undefined : readDefocus(flags.defocus, 0);
    microscope = resolveMicroscope(typed, defocus?.microscope ?? {});
    hasCtf = defocus !== undefined;
    if (defocus !== undefined) {
      const mean = defocus.perTilt.reduce((a, b) => a + b, 0) / defocus.perTilt.length;
      options.ctf = { ctf: { ...microscope.microscope, defocus: mean, phaseShift: phaseShift ?? 0 }, flipPhase, tiltAxis };
    }
  }
  if (!hasCtf && (flipPhase || phaseShift !== undefined)) {
    const flag = flipPhase ? '--phase-flip' : '--phase-shift';
    throw invalidOption(`${flag}/--defocus`, `a defocus with ${flag} (--defocus, or per-tilt defocus in --tilt-angles)`, 'no defocus');
  }
  const lowpass = flags.lowpass === undefined ? undefined : num('--lowpass', flags.lowpass, (v) => v > 0, 'a resolution > 0 Å');
  const highpass = flags.highpass === undefined ? undefined : num('--highpass', flags.highpass, (v) => v > 0, 'a resolution > 0 Å');
  if (lowpass !== undefined && highpass !== undefined && highpass <= lowpass) {
    throw invalidOption('--highpass', `a resolution coarser (larger) than --lowpass ${lowpass} Å`, flags.highpass);
  }
  if (lowpass !== undefined || highpass !== undefined) options.bandPass = { lowpassAngstrom: lowpass, highpassAngstrom: highpass };
  return { options, microscope, tiltRange, tomoName };
}

/** The entries of `o` that are set (a file that does not state a value must not hide another file's). */
function defined(o: Partial<Microscope>): Partial<Microscope> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && Number.isFinite(v))) as Partial<Microscope>;
}

/** Whether --defocus / --dose name files (they are recorded as absolute paths in job.json). */
export function isDefocusFile(value: string): boolean {
  return DEFOCUS_VALUE.exec(value) === null;
}

export interface PreparedSearch {
  template: Volume;
  /** The user's template mask, put on the template's final box (same resampling and reboxing), or undefined. */
  templateMask: Volume | undefined;
  /** The template's filter (wedge or tilts, CTF, band-pass, whitening) and the target's (band-pass, whitening, the
   *  sampled tilt range's binary wedge); the engine applies both. */
  filter: FilterFunction | undefined;
  targetFilter: FilterFunction | undefined;
  filterOptions: FilterOptions;
  /** The microscope, tilt range and tomograms.star row the filters were made with (job.json, the RELION export). */
  filters: SearchFilters;
  /** What was done to the template, for job.json. */
  templateSource: { kind: 'map' | 'model'; file: string; atoms?: number; resampledFrom?: number };
  /** CTF zones along the defocus gradient (one zone: none of them differs, or the gradient is off). */
  zones: DefocusZones;
  /** The handedness the zones were made with (0: off). */
  defocusHandedness: DefocusHandedness;
}

function looksLikeModel(file: string): boolean {
  return /\.(pdb|ent|cif|mmcif|pdb\.gz|cif\.gz|ent\.gz)$/i.test(file);
}

/** Reads and shapes the template (a map or an atomic model) for this target, and builds the filters. */
export async function prepareSearch(
  flags: SearchFlags, target: Volume, mask?: Volume,
  options: { targetVoxelUnknown?: boolean; read?: (file: string) => ReturnType<typeof readVolume> } = {},
): Promise<PreparedSearch> {
  const filters = searchFiltersFrom(flags);
  const filterOptions = filters.options;
  const voxel = target.voxelSize[2];
  const largest = Math.max(...target.shape);
  const box = flags.templateBox === undefined ? undefined
    : num('--template-box', flags.templateBox, (v) => Number.isInteger(v) && v >= 4 && v % 2 === 0 && v <= largest, `an even integer from 4 to the target's largest edge (${largest})`);
  let template: Volume;
  let templateMask: Volume | undefined;
  let templateSource: PreparedSearch['templateSource'];
  if (looksLikeModel(flags.template)) {
    const model = await readStructure(flags.template);
    if (model.x.length === 0) throw new TmeError('ERR_TME_FORMAT', 'the model has no atoms', { file: flags.template });
    const resolution = flags.modelResolution === undefined || flags.modelResolution === '' ? undefined
      : num('--model-resolution', flags.modelResolution, (v) => v > 0, 'a resolution > 0 Å');
    const bfactor = num('--model-bfactor', flags.modelBfactor ?? '0', (v) => v >= 0, 'a B-factor ≥ 0 Å²');
    // The template must fit in the target: a model that needs a larger box is refused before it is simulated.
    const simulated = simulateDensity(model, {
      voxelSize: voxel, lowpassAngstrom: resolution, extraBFactor: bfactor, unknownElements: 'carbon',
      maxEdge: Math.max(...target.shape), file: flags.template,
    });
    if (mask) throw invalidOption('--template-mask', 'no mask with an atomic model (its box is made here; use --mask-radius)', flags.template);
    template = inFile(flags.template, () => prepareTemplate(simulated.volume, { invertContrast: flags.invertContrast === true, boxSize: box, center: false }));
    templateSource = { kind: 'model', file: flags.template, atoms: simulated.atomCount };
  } else {
    const map = (options.read ?? readVolume)(flags.template);
    const mapVoxel = map.voxelSize[2];
    const differs = Math.abs(mapVoxel - voxel) > 0.01 * voxel;
    if (differs && !flags.resample) {
      // When the target's header gives no voxel size, that is the problem to name, not the template's.
      if (options.targetVoxelUnknown) {
        throw new TmeError('ERR_TME_FORMAT', `its header gives no voxel size (taken as 1 Å), and the template's is ${mapVoxel.toFixed(2)} Å: set the target's voxel size in its header (CELLA / MX)`, { file: flags.target });
      }
      throw new TmeError(
        'ERR_TME_MISMATCH',
        `voxel size ${mapVoxel.toFixed(2)} Å differs from target ${voxel.toFixed(2)} Å — pass --resample or resample the template`,
        { file: flags.template },
      );
    }
    if (map.shape.some((n, i) => n > (target.shape[i] as number))) {
      throw new TmeError('ERR_TME_MISMATCH', `template (${[...map.shape].reverse().join('×')}) is larger than the target (${[...target.shape].reverse().join('×')})`, { file: flags.template });
    }
    // A map keeps its own centre (box//2 stays the particle position users and RELION expect) and, when cubic,
    // its box: it is only resampled, made cubic, inverted and normalised.
    const [mz, my, mx] = map.shape;
    const keep = mz === my && my === mx && !differs ? mz : undefined;
    const shaping = { voxelSize: differs ? voxel : undefined, boxSize: box ?? keep, center: false };
    template = inFile(flags.template, () => prepareTemplate(map, { ...shaping, invertContrast: flags.invertContrast === true }));
    if (mask) {
      if (mask.shape.some((n, i) => n !== map.shape[i])) {
        throw new TmeError('ERR_TME_MISMATCH', `template mask box (${[...mask.shape].reverse().join('×')}) differs from the template's (${[...map.shape].reverse().join('×')})`, { file: flags.templateMask });
      }
      const shaped = inFile(flags.templateMask, () => prepareTemplate(mask, { ...shaping, normalize: false }));
      templateMask = createVolume(shaped.data.map((v) => Math.min(1, Math.max(0, v))), shaped.shape, shaped.voxelSize, shaped.origin);
    }
    templateSource = { kind: 'map', file: flags.template, resampledFrom: differs ? mapVoxel : undefined };
  }
  if (template.shape.some((n, i) => n > (target.shape[i] as number))) {
    throw new TmeError('ERR_TME_MISMATCH', `template box ${template.shape[2]} voxels is larger than the target`, { file: flags.template });
  }
  if (flags.whiten) filterOptions.whitening = whiteningProfile(target);
  const filter = isIdentityFilter(filterOptions) ? undefined : buildTemplateFilter(filterOptions);
  const hasDefocus = filterOptions.ctf !== undefined || (filterOptions.tiltWeighting?.tilts.some((t) => t.ctf !== undefined) ?? false);
  let defocusHandedness: DefocusHandedness;
  if (flags.defocusHandedness === undefined) {
    defocusHandedness = filterOptions.tiltWeighting && hasDefocus ? 1 : 0;
  } else {
    const h = flags.defocusHandedness.trim();
    if (h !== '1' && h !== '-1' && h !== '0' && h !== '+1') throw invalidOption('--defocus-handedness', '1, -1 or 0', flags.defocusHandedness);
    defocusHandedness = Number(h) as DefocusHandedness;
    if (defocusHandedness !== 0 && !hasDefocus) {
      throw invalidOption('--defocus-handedness', 'a defocus to follow (--defocus, or per-tilt defocus in --tilt-angles)', flags.defocusHandedness);
    }
  }
  const zones = defocusZones({ options: filterOptions, shape: target.shape, voxelSize: target.voxelSize, handedness: defocusHandedness });
  // The target gets the band-pass and whitening too, and the binary wedge of its tilt range (as pyTME does): noise
  // where the template has no signal would only lower every score.
  const targeted = filterOptions.bandPass || filterOptions.whitening || filterOptions.wedge || filterOptions.tiltWeighting;
  const targetFilter = targeted ? buildTargetFilter({ ...filterOptions, applyWedgeToTarget: true }) : undefined;
  return { template, templateMask, filter, targetFilter, filterOptions, filters, templateSource, zones, defocusHandedness };
}
