import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import {
  DEFAULT_MICROSCOPE, defaultBoxSize, matrixToPytmeEuler, matrixToRelionEuler, exportDynamo, exportImod, exportRelion, exportRelion5, exportStopgap, exportWarp, parseDynamoTable, prepareOutputs, readStarPicks, validatePicks,
  type CentreConvention, type Microscope, type EdgeMode, type ExportPick, type ExportSummary, type StarPicksConvention, type TomogramGeometry,
} from '@tme/export';
import { MrcRegionReader, inFile, invalidOption, readMrcHeader, readStar, TmeError, writeFileAtomic, type Zyx } from '@tme/formats';
import { formatOrientationsTsv, parseOrientationsTsv, type Pick } from '@tme/peaks';
import { describeFaceBoxes } from '../pipeline';


const FORMATS = ['relion', 'relion5', 'imod', 'dynamo', 'stopgap', 'warp', 'tsv'] as const;
type ExportFormat = (typeof FORMATS)[number];

interface ExportCliOptions {
  format: string;
  output: string;
  target?: string;
  box?: string;
  diameter?: string;
  tomoName?: string;
  voxelSize?: string;
  tomoSize?: string;
  tiltRange?: string;
  voltage?: string;
  cs?: string;
  amplitudeContrast?: string;
  faceBoxes: string;
  /** --invert / --no-invert; undefined: the job's --invert-contrast when the picks sit in a job folder. */
  invert?: boolean;
  normalise: boolean;
  binning?: string;
  tiltSeriesPixelSize?: string;
  centreConvention: string;
  tomogramsStar?: boolean;
  inputConvention?: string;
  sphereRadius?: string;
  force?: boolean;
}

// The orientations TSV (pyTME's layout) is @tme/peaks' format; these two hand over to it.
export function readPicksTsv(file: string): ExportPick[] {
  const records = parseOrientationsTsv(fs.readFileSync(file, 'utf8'), file);
  return records.map((r) => {
    if (r.rotation === undefined) throw new TmeError('ERR_TME_FORMAT', 'no euler_x, euler_y, euler_z columns: rotations are needed to export', { file });
    const score = Number.isFinite(r.score) ? r.score : 0;
    return { position: r.position, rotation: r.rotation, score, ...(r.detail >= 0 ? { detail: r.detail } : {}) };
  });
}

/** An export pick as @tme/peaks' Pick (what formatOrientationsTsv reads: position + shift, pyTME angles, score, template). */
function asPeaksPick(p: ExportPick): Pick {
  const position: Zyx = [Math.round(p.position[0]), Math.round(p.position[1]), Math.round(p.position[2])];
  return {
    position, shift: [p.position[0] - position[0], p.position[1] - position[1], p.position[2] - position[2]],
    positionAngstrom: [Number.NaN, Number.NaN, Number.NaN], score: p.score, rotationIndex: -1, rotation: p.rotation,
    pytmeEuler: matrixToPytmeEuler(p.rotation), relionEuler: matrixToRelionEuler(p.rotation),
    zScore: Number.NaN, searchSigmas: Number.NaN, localSnr: Number.NaN, template: p.detail ?? -1,
  };
}

function writePicksTsv(picks: readonly ExportPick[], outDir: string, force: boolean): ExportSummary {
  const [file] = prepareOutputs({ outDir, force }, ['orientations.tsv']) as [string];
  writeFileAtomic(file, formatOrientationsTsv(picks.map(asPeaksPick)));
  return { written: picks.length, padded: 0, skipped: 0, files: [file] };
}

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!(text.trim() !== '' && Number.isFinite(v) && v > 0)) throw invalidOption(name, 'number > 0', text);
  return v;
}

/** A number in [lo, hi] given as text, checked here so that the message names the flag (an empty value is not 0). */
function inRange(name: string, text: string | undefined, lo: number, hi: number, what: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!(text.trim() !== '' && v >= lo && v <= hi)) throw invalidOption(name, what, text);
  return v;
}

function numbers(name: string, text: string | undefined, count: number): number[] | undefined {
  if (text === undefined) return undefined;
  const v = text.split(',').map((s) => Number(s));
  if (v.length !== count || v.some((x, i) => !Number.isFinite(x) || text.split(',')[i]!.trim() === '')) {
    throw invalidOption(name, `${count} comma-separated numbers`, text);
  }
  return v;
}

function oneOf<T extends string>(name: string, text: string | undefined, allowed: readonly T[]): T | undefined {
  if (text === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(text)) throw invalidOption(name, `one of ${allowed.join(', ')}`, text);
  return text as T;
}

function stem(file: string): string {
  return path.basename(file).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._+-]/g, '_');
}

interface Inputs { picks: ExportPick[]; tomoName?: string }

function readPicks(file: string, shape: Zyx | undefined, voxelSize: number | undefined, o: ExportCliOptions): Inputs {
  const inputs = readPicksOf(file, shape, voxelSize, o);
  inFile(file, () => validatePicks(inputs.picks));
  return inputs;
}

function readPicksOf(file: string, shape: Zyx | undefined, voxelSize: number | undefined, o: ExportCliOptions): Inputs {
  if (!fs.existsSync(file)) throw new TmeError('ERR_TME_IO', 'cannot read: no such file', { file });
  const ext = path.extname(file).toLowerCase();
  if (ext === '.star') {
    const convention = oneOf<StarPicksConvention>('--input-convention', o.inputConvention, ['pytme-relion4', 'pytme-relion5', 'relion', 'relion5']);
    const r = readStarPicks(readStar(file), {
      convention, shape, voxelSize, binning: positive('--binning', o.binning),
      centreConvention: oneOf<CentreConvention>('--centre-convention', o.centreConvention, ['relion', 'minus-one']),
    }, file);
    return { picks: r.picks, ...(r.tomoName ? { tomoName: r.tomoName } : {}) };
  }
  if (ext === '.tbl') return { picks: parseDynamoTable(fs.readFileSync(file, 'utf8'), file) };
  return { picks: readPicksTsv(file) };
}

function summaryLine(format: ExportFormat, s: ExportSummary, outDir: string, normalise: boolean): string {
  const listed = s.files.map((f) => path.relative(outDir, f)).filter((f) => !/^Subtomograms\/.*_\d+\.mrc$/.test(f));
  const boxes = format === 'relion' ? ` (${describeFaceBoxes(s, normalise)})` : '';
  const subtomograms = format === 'relion' ? `, ${s.written} subtomograms in Subtomograms/` : '';
  return `tme export: ${s.written} picks${boxes} → ${outDir}: ${listed.join(', ')}${subtomograms}\n`;
}

/** What a job folder's job.json says that an export needs (every field optional: older jobs lack some). */
export interface JobDefaults {
  file: string;
  target?: string;
  targetShape?: Zyx;
  voxelSize?: number;
  templateShape?: Zyx;
  tiltRange?: [number, number];
  tiltAxis: 'y' | 'x';
  microscope: Partial<Microscope>;
  tomoName?: string;
  invertContrast: boolean;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const zyx = (v: unknown): Zyx | undefined => (Array.isArray(v) && v.length === 3 && v.every((n) => finite(n) && n > 0) ? [v[0], v[1], v[2]] : undefined);

/**
 * The job.json next to a picks file (a TSV in a `tme match`/`tme run` folder), or undefined. Relative paths in an
 * older job.json are taken relative to its folder.
 */
export function readJobDefaults(picksFile: string): JobDefaults | undefined {
  const file = path.join(path.dirname(path.resolve(picksFile)), 'job.json');
  if (!fs.existsSync(file)) return undefined;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new TmeError('ERR_TME_FORMAT', `not JSON (${(err as Error).message})`, { file, cause: err });
  }
  const params = (record.parameters ?? {}) as Record<string, unknown>;
  const inputs = (record.inputs ?? {}) as Record<string, unknown>;
  const filters = (inputs.filters ?? {}) as Record<string, unknown>;
  const scope = (inputs.microscope ?? {}) as Record<string, unknown>;
  // A job from before the microscope was recorded: its typed flags (the defaults then were flags too).
  const typed = (key: string): number | undefined => (finite(scope[key]) ? scope[key] as number : undefined);
  const flagValue = (key: string): number | undefined => (typeof filters[key] === 'string' && Number.isFinite(Number(filters[key])) ? Number(filters[key]) : undefined);
  const microscope: Partial<Microscope> = {
    voltage: typed('voltage') ?? flagValue('voltage'),
    sphericalAberration: typed('sphericalAberration') ?? flagValue('cs'),
    amplitudeContrast: typed('amplitudeContrast') ?? flagValue('amplitudeContrast'),
  };
  const range = inputs.tiltRange;
  const tiltRange: [number, number] | undefined = Array.isArray(range) && range.length === 2 && range.every(finite)
    ? [range[0] as number, range[1] as number]
    : typeof filters.tiltRange === 'string' ? numbers('--tilt-range', filters.tiltRange, 2) as [number, number] : undefined;
  const voxel = zyx(params.voxelSize);
  const target = typeof inputs.target === 'string' ? path.resolve(path.dirname(file), inputs.target) : undefined;
  return {
    file, target, targetShape: zyx(params.targetShape), voxelSize: voxel?.[2], templateShape: zyx(params.templateShape), tiltRange,
    tiltAxis: filters.tiltAxis === 'x' ? 'x' : 'y', microscope,
    tomoName: typeof inputs.tomoName === 'string' ? inputs.tomoName : undefined, invertContrast: filters.invertContrast === true,
  };
}

/** The flags each output format reads (beyond --format, -o, --force); a STAR input also reads STAR_INPUT_FLAGS. */
const FORMAT_FLAGS: Record<ExportFormat, ReadonlyArray<keyof ExportCliOptions>> = {
  relion: ['target', 'box', 'diameter', 'tomoName', 'voxelSize', 'tomoSize', 'tiltRange', 'voltage', 'cs', 'amplitudeContrast', 'faceBoxes', 'invert', 'normalise', 'binning'],
  relion5: ['target', 'tomoName', 'voxelSize', 'tomoSize', 'voltage', 'cs', 'amplitudeContrast', 'binning', 'tiltSeriesPixelSize', 'centreConvention', 'tomogramsStar'],
  imod: ['target', 'tomoName', 'voxelSize', 'tomoSize', 'diameter', 'sphereRadius'],
  dynamo: ['tiltRange'],
  stopgap: [],
  warp: ['target', 'tomoName', 'voxelSize', 'tomoSize'],
  tsv: [],
};
/** What reading a STAR file's centred coordinates takes: the tomogram's size and voxel size, its conventions. */
const STAR_INPUT_FLAGS: ReadonlyArray<keyof ExportCliOptions> = ['target', 'voxelSize', 'tomoSize', 'binning', 'centreConvention', 'inputConvention'];
const FLAG_NAMES: Partial<Record<keyof ExportCliOptions, string>> = {
  target: '--target', box: '--box', diameter: '--diameter', tomoName: '--tomo-name', voxelSize: '--voxel-size', tomoSize: '--tomo-size',
  tiltRange: '--tilt-range', voltage: '--voltage', cs: '--cs', amplitudeContrast: '--amplitude-contrast', faceBoxes: '--face-boxes',
  invert: '--invert/--no-invert', normalise: '--no-normalise', binning: '--binning', tiltSeriesPixelSize: '--tilt-series-pixel-size',
  centreConvention: '--centre-convention', tomogramsStar: '--tomograms-star', inputConvention: '--input-convention', sphereRadius: '--sphere-radius',
};

/** A flag is never accepted and ignored: one the format (and the input) does not read is refused, naming both. */
function refuseUnusedFlags(format: ExportFormat, picksFile: string, given: (key: keyof ExportCliOptions) => string | undefined): void {
  const star = path.extname(picksFile).toLowerCase() === '.star';
  const used = new Set([...FORMAT_FLAGS[format], ...(star ? STAR_INPUT_FLAGS : [])]);
  for (const key of Object.keys(FLAG_NAMES) as Array<keyof ExportCliOptions>) {
    if (given(key) !== 'cli' || used.has(key)) continue;
    const formats = FORMATS.filter((f) => FORMAT_FLAGS[f].includes(key));
    const where = [...formats.map((f) => `--format ${f}`), ...(STAR_INPUT_FLAGS.includes(key) ? ['a .star input'] : [])];
    throw new TmeError('ERR_TME_INVALID_OPTION', `${FLAG_NAMES[key]} is not used by --format ${format}${star ? ' from a .star input' : ''}`
      + (where.length > 0 ? ` (it is for ${where.join(', ')})` : ''));
  }
}

/** `tme export`: picks (TSV, STAR, Dynamo table) → RELION 3.1/4, RELION 5, IMOD, Dynamo, STOPGAP, Warp or pyTME TSV. */
export async function runExport(
  picksFile: string, o: ExportCliOptions, given: (key: keyof ExportCliOptions) => string | undefined,
): Promise<ExportSummary> {
  const format = oneOf<ExportFormat>('--format', o.format, FORMATS)!;
  refuseUnusedFlags(format, picksFile, given);
  // A picks file in a job folder: the job says what the flags would (flags win).
  const job = readJobDefaults(picksFile);
  const targetFile = o.target ?? job?.target;
  if (o.target === undefined && targetFile !== undefined && !fs.existsSync(targetFile)) {
    throw new TmeError('ERR_TME_IO', `no such file (the target ${job!.file} records; give --target)`, { file: targetFile });
  }
  const header = targetFile !== undefined ? readMrcHeader(targetFile) : undefined;
  const headerVoxel = header ? header.voxelSize[2] : undefined;
  const voxelSize = positive('--voxel-size', o.voxelSize) ?? (headerVoxel !== undefined && headerVoxel > 0 ? headerVoxel : job?.voxelSize);
  const size = numbers('--tomo-size', o.tomoSize, 3);
  const shape: Zyx | undefined = header ? header.shape : size ? [size[2]!, size[1]!, size[0]!] : job?.targetShape;
  const inputs = readPicks(picksFile, shape, voxelSize, o);
  const name = o.tomoName ?? inputs.tomoName ?? job?.tomoName ?? (targetFile ? stem(targetFile) : stem(picksFile));
  const outDir = o.output;
  const force = o.force ?? false;
  const scope = job?.microscope ?? {};
  const optics = {
    voltage: positive('--voltage', o.voltage) ?? scope.voltage,
    sphericalAberration: inRange('--cs', o.cs, 0, Infinity, 'number ≥ 0 (mm)') ?? scope.sphericalAberration,
    amplitudeContrast: inRange('--amplitude-contrast', o.amplitudeContrast, 0, 1, 'number in [0, 1]') ?? scope.amplitudeContrast,
  };
  const tilt = (numbers('--tilt-range', o.tiltRange, 2) as [number, number] | undefined) ?? job?.tiltRange;
  const needGeometry = (): TomogramGeometry => {
    if (shape === undefined) throw new TmeError('ERR_TME_INVALID_OPTION', `--format ${format} needs the tomogram size: give --target T.mrc or --tomo-size X,Y,Z`);
    if (voxelSize === undefined) throw new TmeError('ERR_TME_INVALID_OPTION', `--format ${format} needs the voxel size: give --target T.mrc or --voxel-size Å`);
    return { shape, voxelSize, name };
  };
  const diameter = positive('--diameter', o.diameter);
  const normalise = o.normalise;
  let summary: ExportSummary;
  switch (format) {
    case 'relion': {
      if (targetFile === undefined) throw new TmeError('ERR_TME_INVALID_OPTION', '--format relion extracts subtomograms: give the matched tomogram with --target T.mrc');
      const geometry = needGeometry();
      const boxText = o.box;
      let box: number;
      if (boxText !== undefined) {
        box = Number(boxText);
        if (!/^\s*\d+\s*$/.test(boxText)) throw invalidOption('--box', 'even integer ≥ 2 (voxels)', boxText);
      } else if (diameter !== undefined) {
        box = defaultBoxSize(diameter / geometry.voxelSize);
      } else if (job?.templateShape !== undefined) {
        box = defaultBoxSize(Math.max(...job.templateShape)); // as tme run chooses it
      } else {
        throw new TmeError('ERR_TME_INVALID_OPTION', '--format relion needs a box: give --box N (even) or --diameter Å (box = even fast size ≥ 1.5× diameter)');
      }
      // Each pick's box read by region: the tomogram is never held (it may be larger than memory).
      const tomogram = new MrcRegionReader(targetFile);
      try {
        summary = exportRelion(inputs.picks, tomogram, geometry, {
          outDir, force, box, ...optics, edge: oneOf<EdgeMode>('--face-boxes', o.faceBoxes, ['pad', 'skip']), micrographName: path.resolve(targetFile),
          invert: o.invert ?? job?.invertContrast ?? false, normalise, binning: positive('--binning', o.binning),
          ...(tilt ? { tiltRange: tilt, tiltAxis: job?.tiltAxis ?? 'y' } : {}),
        });
      } finally {
        tomogram.close();
      }
      break;
    }
    case 'relion5':
      summary = exportRelion5(inputs.picks, needGeometry(), {
        outDir, force, ...optics, binning: positive('--binning', o.binning), tiltSeriesPixelSize: positive('--tilt-series-pixel-size', o.tiltSeriesPixelSize),
        centreConvention: oneOf<CentreConvention>('--centre-convention', o.centreConvention, ['relion', 'minus-one']), tomogramsStar: o.tomogramsStar ?? false,
      });
      break;
    case 'imod': {
      const geometry = needGeometry();
      const radius = o.sphereRadius !== undefined ? inRange('--sphere-radius', o.sphereRadius, 0, Infinity, 'number ≥ 0 (pixels)') : diameter !== undefined ? diameter / 2 / geometry.voxelSize : undefined;
      summary = exportImod(inputs.picks, geometry, { outDir, force, ...(radius !== undefined ? { sphereRadius: radius } : {}) });
      break;
    }
    case 'dynamo':
      summary = exportDynamo(inputs.picks, { outDir, force, ...(tilt ? { tiltRange: tilt } : {}) });
      break;
    case 'stopgap':
      summary = exportStopgap(inputs.picks, { outDir, force });
      break;
    case 'warp':
      summary = exportWarp(inputs.picks, needGeometry(), { outDir, force });
      break;
    case 'tsv':
      summary = writePicksTsv(inputs.picks, outDir, force);
      break;
  }
  process.stdout.write(summaryLine(format, summary, outDir, normalise));
  return summary;
}

export function register(program: Command): void {
  program
    .command('export')
    .description('Write picks for RELION 3.1/4 (subtomograms + STAR), RELION 5, IMOD, Dynamo, STOPGAP (motive list), Warp (its template-matching STAR) or as a pyTME orientations TSV')
    .argument('<picks>', 'picks: tme/pyTME orientations .tsv, a particles .star (tme, RELION, pyTME relion4/relion5) or a Dynamo .tbl')
    .requiredOption('--format <format>', `output format: ${FORMATS.join(', ')}`)
    .requiredOption('-o, --output <dir>', 'output folder (created if missing)')
    .option('--target <mrc>', 'the matched tomogram (shape, voxel size; relion: subtomograms are cut from it); default: the job\'s, when the picks sit in a job folder')
    .option('--box <n>', 'relion: cubic subtomogram box, voxels, EVEN (default: even fast size ≥ 1.5× --diameter, else the job\'s template box as tme run chooses it)')
    .option('--diameter <A>', 'particle diameter, Å (default box, IMOD sphere size)')
    .option('--tomo-name <name>', 'tomogram name (rlnTomoName, file names, warp: <name>.tomostar, the Warp tilt-series name; default from the input, the job or --target)')
    .option('--voxel-size <A>', 'voxel size of the matched tomogram, Å (default: from --target, else the job)')
    .option('--tomo-size <x,y,z>', 'size of the matched tomogram, voxels, when there is no --target')
    .option('--tilt-range <min,max>', 'tilt range, degrees: relion writes a missing-wedge volume (rlnCtfImage); dynamo ftype 1 (default: the job\'s)')
    .option('--voltage <kV>', `acceleration voltage, kV (default: the job's, else ${DEFAULT_MICROSCOPE.voltage})`)
    .option('--cs <mm>', `spherical aberration, mm (default: the job's, else ${DEFAULT_MICROSCOPE.sphericalAberration})`)
    .option('--amplitude-contrast <A>', `amplitude contrast, 0–1 (default: the job's, else ${DEFAULT_MICROSCOPE.amplitudeContrast})`)
    .option('--face-boxes <mode>', 'relion: boxes that cross a tomogram face: pad (keep: the outside filled with the mean of the box\'s voxels inside the tomogram, 0 after normalisation; marked in tmeBoxOutsideFraction) or skip', 'pad')
    .option('--invert', 'relion: multiply subtomograms by −1 (dark protein → bright); default: the job\'s --invert-contrast')
    .option('--no-invert', 'relion: do not invert, whatever the job did')
    .option('--no-normalise', 'relion: keep raw values (default: mean 0, std 1 per subtomogram over its voxels inside the tomogram)')
    .option('--binning <B>', 'binning of the matched tomogram vs the tilt series: coordinates in bin-1 pixels (default 1)')
    .option('--tilt-series-pixel-size <A>', 'relion5: rlnTomoTiltSeriesPixelSize, Å (sets the binning)')
    .option('--centre-convention <c>', 'relion5: centred-coordinate zero at size/2 (relion) or size/2 − 1 (minus-one)', 'relion')
    .option('--tomograms-star', 'relion5: also write a tomograms.star stub')
    .option('--input-convention <c>', 'STAR input: pytme-relion4, pytme-relion5, relion or relion5 (default: detected)')
    .option('--sphere-radius <px>', 'imod: sphere radius, pixels (default --diameter/2, else 5)')
    .option('--force', 'replace existing outputs')
    .action(async (picks: string, options: ExportCliOptions, command: Command) => {
      await runExport(picks, options, (key) => command.getOptionValueSource(key));
    });
}
