import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { TmeError, createVolume, invalidOption, readStructure, readVolume, type Volume } from '@tme/formats';
import {
  buildTemplateFilter, buildTargetFilter, buildTilts, isIdentityFilter, parseCtffind, parseDoseFile,
  parseImodDefocus, imodDefocusPerView, parseMdoc, parseTiltAngles, parseWarpXml, prepareTemplate,
  simulateDensity, tiltsFromMdoc, tiltsFromWarp, whiteningProfile,
  type FilterFunction, type FilterOptions, type Microscope, type Tilt,
} from '@tme/template';

/**
 * The science flags shared by `tme match`, `tme run` and `tme estimate`: what shapes the template (contrast,
 * resampling, simulation from a model) and the Fourier filter (wedge, tilts, dose, CTF, band-pass, whitening).
 * Parsing and file reading live here; every computation is @tme/template's.
 */
export interface SearchFlags {
  template: string;
  tiltRange?: string;
  tiltAxis: string;
  tiltAngles?: string;
  dose?: string;
  defocus?: string;
  voltage: string;
  cs: string;
  amplitudeContrast: string;
  phaseShift: string;
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

export function addSearchOptions(cmd: Command): Command {
  return cmd
    .option('--tilt-range <min,max>', 'sampled tilt range in degrees, e.g. -60,60: a continuous missing wedge')
    .option('--tilt-axis <axis>', 'tilt axis of the tomogram: y or x', 'y')
    .option('--tilt-angles <file>', 'per-tilt angles: IMOD .tlt/.rawtlt, SerialEM .mdoc or Warp .xml (a weighted, stepped wedge)')
    .option('--dose <file|e>', 'accumulated dose per tilt: a one-column file (e⁻/Å², tilt order) or the dose of each tilt (e⁻/Å²)')
    .option('--defocus <Å|file>', 'defocus in Å (positive = underfocus) or a file: IMOD .defocus or CTFFIND output')
    .option('--voltage <kV>', 'acceleration voltage, kV', '300')
    .option('--cs <mm>', 'spherical aberration, mm', '2.7')
    .option('--amplitude-contrast <fraction>', 'amplitude contrast', '0.07')
    .option('--phase-shift <deg>', 'phase-plate shift, degrees', '0')
    .option('--phase-flip', 'the tomogram was phase-flipped: weight the template by |CTF| instead of the signed CTF')
    .option('--cosine-weighting', 'weight each tilt by cos(angle) (with --tilt-angles)')
    .option('--lowpass <Å>', 'low-pass resolution in Å (Gaussian, gain 0.5 at the cut-off), template and target')
    .option('--highpass <Å>', 'high-pass resolution in Å (Gaussian), template and target')
    .option('--whiten', 'whiten template and target by the target\'s rotationally averaged power spectrum')
    .option('--invert-contrast', 'multiply the template by −1 (for maps with dark protein on a bright background)')
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

function microscope(flags: SearchFlags): Microscope {
  return {
    voltage: num('--voltage', flags.voltage, (v) => v > 0, 'a voltage > 0 kV'),
    sphericalAberration: num('--cs', flags.cs, (v) => v >= 0, 'a spherical aberration ≥ 0 mm'),
    amplitudeContrast: num('--amplitude-contrast', flags.amplitudeContrast, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)'),
  };
}

/** Per-tilt angles (and whatever else the file carries) from .tlt/.rawtlt, .mdoc or Warp .xml. */
function readTilts(flags: SearchFlags, scope: Microscope): Tilt[] {
  const file = flags.tiltAngles as string;
  const text = readText(file);
  const ext = path.extname(file).toLowerCase();
  let tilts: Tilt[];
  if (ext === '.mdoc') tilts = tiltsFromMdoc(parseMdoc(text, { file }), scope);
  else if (ext === '.xml') tilts = tiltsFromWarp(parseWarpXml(text, { file }));
  else tilts = buildTilts({ angles: parseTiltAngles(text, { file }) });

  if (flags.dose !== undefined) {
    const perTilt = Number(flags.dose);
    const doses = Number.isFinite(perTilt) && flags.dose.trim() !== ''
      ? collectionDoses(tilts, num('--dose', flags.dose, (v) => v >= 0, 'a dose ≥ 0 e⁻/Å² per tilt or a file'))
      : parseDoseFile(readText(flags.dose), { file: flags.dose });
    if (doses.length !== tilts.length) {
      throw new TmeError('ERR_TME_MISMATCH', `${doses.length} doses for ${tilts.length} tilts`, { file: flags.dose });
    }
    tilts = tilts.map((t, i) => ({ ...t, dose: doses[i] as number }));
  }
  if (flags.defocus !== undefined) {
    const defocus = readDefocus(flags.defocus, tilts.length);
    tilts = tilts.map((t, i) => ({
      ...t,
      ctf: { ...scope, ...t.ctf, defocus: defocus[i] as number, phaseShift: Number(flags.phaseShift) },
    }));
  }
  return tilts;
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

/** One defocus for every tilt (a number in Å), or per tilt from an IMOD .defocus or CTFFIND file. */
function readDefocus(value: string, tiltCount: number): number[] {
  const single = Number(value);
  if (value.trim() !== '' && Number.isFinite(single)) {
    if (!(single > 0)) throw invalidOption('--defocus', 'a defocus > 0 Å (underfocus) or a file', value);
    return new Array<number>(Math.max(tiltCount, 1)).fill(single);
  }
  const text = readText(value);
  if (/\.defocus$/i.test(value)) {
    return imodDefocusPerView(parseImodDefocus(text, { file: value }), tiltCount).map((e) => (e.defocus1 + e.defocus2) / 2);
  }
  const rows = parseCtffind(text, { file: value }).rows;
  if (tiltCount > 0 && rows.length !== tiltCount) {
    throw new TmeError('ERR_TME_MISMATCH', `${rows.length} CTFFIND rows for ${tiltCount} tilts`, { file: value });
  }
  return rows.map((r) => (r.defocus1 + r.defocus2) / 2);
}

/** The filter options the flags ask for (no whitening: that needs the target). */
export function filterOptionsFrom(flags: SearchFlags): FilterOptions {
  const options: FilterOptions = {};
  const tiltAxis = flags.tiltAxis === 'x' ? 'x' : flags.tiltAxis === 'y' ? 'y' : undefined;
  if (tiltAxis === undefined) throw invalidOption('--tilt-axis', 'y or x', flags.tiltAxis);
  const scope = microscope(flags);
  const flipPhase = flags.phaseFlip === true;
  if (flags.tiltAngles !== undefined) {
    options.tiltWeighting = {
      tilts: readTilts(flags, scope), tiltAxis, cosineWeighting: flags.cosineWeighting === true, flipPhase, slabWidth: 'spacing',
    };
  } else {
    if (flags.dose !== undefined) throw invalidOption('--dose', 'per-tilt angles as well (--tilt-angles)', flags.dose);
    if (flags.tiltRange !== undefined) options.wedge = { tiltRange: parseTiltRange(flags.tiltRange), tiltAxis };
    if (flags.defocus !== undefined) {
      const defocus = readDefocus(flags.defocus, 0);
      const mean = defocus.reduce((a, b) => a + b, 0) / defocus.length;
      options.ctf = { ctf: { ...scope, defocus: mean, phaseShift: Number(flags.phaseShift) }, flipPhase, tiltAxis };
    }
  }
  const lowpass = flags.lowpass === undefined ? undefined : num('--lowpass', flags.lowpass, (v) => v > 0, 'a resolution > 0 Å');
  const highpass = flags.highpass === undefined ? undefined : num('--highpass', flags.highpass, (v) => v > 0, 'a resolution > 0 Å');
  if (lowpass !== undefined && highpass !== undefined && highpass <= lowpass) {
    throw invalidOption('--highpass', `a resolution coarser (larger) than --lowpass ${lowpass} Å`, flags.highpass);
  }
  if (lowpass !== undefined || highpass !== undefined) options.bandPass = { lowpassAngstrom: lowpass, highpassAngstrom: highpass };
  return options;
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
  /** What was done to the template, for job.json. */
  templateSource: { kind: 'map' | 'model'; file: string; atoms?: number; resampledFrom?: number };
}

function looksLikeModel(file: string): boolean {
  return /\.(pdb|ent|cif|mmcif|pdb\.gz|cif\.gz|ent\.gz)$/i.test(file);
}

/** Reads and shapes the template (a map or an atomic model) for this target, and builds the filters. */
export async function prepareSearch(flags: SearchFlags, target: Volume, mask?: Volume): Promise<PreparedSearch> {
  const filterOptions = filterOptionsFrom(flags);
  const voxel = target.voxelSize[2];
  const box = flags.templateBox === undefined ? undefined
    : num('--template-box', flags.templateBox, (v) => Number.isInteger(v) && v >= 4 && v % 2 === 0, 'an even integer ≥ 4');
  let template: Volume;
  let templateMask: Volume | undefined;
  let templateSource: PreparedSearch['templateSource'];
  if (looksLikeModel(flags.template)) {
    const model = await readStructure(flags.template);
    if (model.x.length === 0) throw new TmeError('ERR_TME_FORMAT', 'the model has no atoms', { file: flags.template });
    const resolution = flags.modelResolution === undefined || flags.modelResolution === '' ? undefined
      : num('--model-resolution', flags.modelResolution, (v) => v > 0, 'a resolution > 0 Å');
    const bfactor = num('--model-bfactor', flags.modelBfactor ?? '0', (v) => v >= 0, 'a B-factor ≥ 0 Å²');
    const simulated = simulateDensity(model, { voxelSize: voxel, lowpassAngstrom: resolution, extraBFactor: bfactor, unknownElements: 'carbon' });
    if (mask) throw invalidOption('--template-mask', 'no mask with an atomic model (its box is made here; use --mask-radius)', flags.template);
    template = prepareTemplate(simulated.volume, { invertContrast: flags.invertContrast === true, boxSize: box, center: false });
    templateSource = { kind: 'model', file: flags.template, atoms: simulated.atomCount };
  } else {
    const map = readVolume(flags.template);
    const mapVoxel = map.voxelSize[2];
    const differs = Math.abs(mapVoxel - voxel) > 0.01 * voxel;
    if (differs && !flags.resample) {
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
    template = prepareTemplate(map, { ...shaping, invertContrast: flags.invertContrast === true });
    if (mask) {
      if (mask.shape.some((n, i) => n !== map.shape[i])) {
        throw new TmeError('ERR_TME_MISMATCH', `template mask box (${[...mask.shape].reverse().join('×')}) differs from the template's (${[...map.shape].reverse().join('×')})`);
      }
      const shaped = prepareTemplate(mask, { ...shaping, normalize: false });
      templateMask = createVolume(shaped.data.map((v) => Math.min(1, Math.max(0, v))), shaped.shape, shaped.voxelSize, shaped.origin);
    }
    templateSource = { kind: 'map', file: flags.template, resampledFrom: differs ? mapVoxel : undefined };
  }
  if (template.shape.some((n, i) => n > (target.shape[i] as number))) {
    throw new TmeError('ERR_TME_MISMATCH', `template box ${template.shape[2]} voxels is larger than the target`, { file: flags.template });
  }
  if (flags.whiten) filterOptions.whitening = whiteningProfile(target);
  const filter = isIdentityFilter(filterOptions) ? undefined : buildTemplateFilter(filterOptions);
  // The target gets the band-pass and whitening too, and the binary wedge of its tilt range (as pyTME does): noise
  // where the template has no signal would only lower every score.
  const targeted = filterOptions.bandPass || filterOptions.whitening || filterOptions.wedge || filterOptions.tiltWeighting;
  const targetFilter = targeted ? buildTargetFilter({ ...filterOptions, applyWedgeToTarget: true }) : undefined;
  return { template, templateMask, filter, targetFilter, filterOptions, templateSource };
}
