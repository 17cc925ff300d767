import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import {
  JOB_FILES, backgroundStatistics, openJob, peakCallingBytes, peakSlabMinimumBytes, peakSlabSections, readJob, type JobOnDisk,
} from '@tme/engine';
import { MrcRegionReader, TmeError, invalidOption, readMrc, readMrcHeader, writeFileAtomic, type Zyx } from '@tme/formats';
import {
  SLAB_BYTES_PER_VOXEL, callPeaks, callPeaksBySlabs, formatOrientationsTsv, formatPicksDetailsTsv, peakCallReport, slabHalo, statisticsFromJob,
  type CallPeaksOptions, type PeakSet, type RefinedOrientation, type ScoreHistogram, type ScoreSlabSource, type ScoreStatistics,
} from '@tme/peaks';
import { callReport, templateStarts } from '../pipeline';
import { describeRefinement, jobFromRecord, refinePicks } from '../refine';
import { allowedHostMemory, parseMemorySize } from '../search-flags';
import { memorySize } from '../units';

export interface PeaksCliOptions {
  output: string;
  number?: string;
  minDistance?: string;
  minScore?: string;
  falseAlarms?: string;
  zScore?: string;
  maxScore?: string;
  mask?: string;
  edge?: string;
  subvoxel?: boolean;
  refine?: boolean;
  force?: boolean;
  /** Call peaks on scores.mrc even when the job has a background map (--background). */
  plainScores?: boolean;
  /** A job of several templates: only the voxels this template (0-based, --template order) won. */
  templateIndex?: string;
  /** Host memory peak calling may use (e.g. 8G); maps larger than it are called slab by slab. */
  memory?: string;
}

export interface PeaksCliResult {
  set: PeakSet;
  files: { orientations: string; details: string; report: string };
}

function numberOption(flag: string, text: string | undefined, expected: string, ok: (v: number) => boolean): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!(text.trim() !== '' && Number.isFinite(v) && ok(v))) throw invalidOption(flag, expected, text);
  return v;
}

/** "12" → 12 voxels; "150A", "150 Å", "150Å" → 150 Å. */
export function parseDistance(text: string): { voxels: number } | { angstrom: number } {
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*(a|å|ang|angstrom)?\s*$/i.exec(text);
  if (!m) throw invalidOption('--min-distance', 'a number of voxels, or Å with a unit (e.g. 150A)', text);
  const v = Number(m[1]);
  return m[2] ? { angstrom: v } : { voxels: v };
}

function zyxOf(raw: unknown): Zyx | undefined {
  return Array.isArray(raw) && raw.length === 3 && raw.every((v) => Number.isInteger(v) && v > 0) ? [raw[0], raw[1], raw[2]] : undefined;
}

/** Output names next to the orientations TSV: picks.tsv → picks.details.tsv, picks.report.json. */
function outputFiles(output: string): PeaksCliResult['files'] {
  const base = output.replace(/\.tsv$/i, '');
  return { orientations: output, details: `${base}.details.tsv`, report: `${base}.report.json` };
}

/** The --mask of `tme peaks` and `tme run`: an MRC of the score map's shape; picks are called where it is ≥ 0.5. */
export function readPeakMask(file: string, shape: Zyx): Float32Array {
  const m = readMrc(file);
  if (!m.shape.every((n, i) => n === shape[i])) {
    throw new TmeError('ERR_TME_MISMATCH', `mask shape (z, y, x) = (${m.shape.join(', ')}) differs from the score map (${shape.join(', ')})`, { file });
  }
  return m.data;
}

/** Validates the peak flags shared by `tme peaks` and `tme run` into calling options. */
export function callOptionsFrom(o: Omit<PeaksCliOptions, 'output'>): CallPeaksOptions {
  const numPeaks = numberOption('--number', o.number, 'integer ≥ 1', (v) => Number.isInteger(v) && v >= 1);
  const thresholds = (['minScore', 'falseAlarms', 'zScore'] as const).filter((k) => o[k] !== undefined);
  if (thresholds.length > 1) {
    throw invalidOption('--min-score/--false-alarms/--z-score', 'at most one', thresholds.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(' and '));
  }
  const minScore = numberOption('--min-score', o.minScore, 'number', () => true);
  const falseAlarms = numberOption('--false-alarms', o.falseAlarms, 'number > 0', (v) => v > 0);
  const zScore = numberOption('--z-score', o.zScore, 'number', () => true);
  const maxScore = numberOption('--max-score', o.maxScore, 'number', () => true);
  const edge = numberOption('--edge', o.edge, 'integer ≥ 0 (voxels)', (v) => Number.isInteger(v) && v >= 0);
  const distance = o.minDistance !== undefined ? parseDistance(o.minDistance) : undefined;
  return {
    ...(numPeaks !== undefined ? { numPeaks } : {}),
    ...(distance && 'voxels' in distance ? { minDistance: distance.voxels } : {}),
    ...(distance && 'angstrom' in distance ? { minDistanceAngstrom: distance.angstrom } : {}),
    ...(minScore !== undefined ? { minScore } : {}),
    ...(falseAlarms !== undefined ? { falseAlarms } : {}),
    ...(zScore !== undefined ? { zScore } : {}),
    ...(maxScore !== undefined ? { maxScore } : {}),
    ...(edge !== undefined ? { edge } : {}),
    subvoxel: o.subvoxel === true,
  };
}

export const PEAK_MASK_HELP = 'only pick inside this mask (≥ 0.5; the target\'s shape); the search space of --false-alarms is its voxel count';

/** The peak flags, one spelling for `tme peaks` and `tme run`. */
export function addPeakOptions(cmd: Command): Command {
  return cmd
    .option('--number <N>', 'most picks (default 1000)')
    .option('--min-distance <d>', 'minimum distance between picks: voxels, or Å with a unit (150A) (default: half the template box)')
    .option('--min-score <S>', 'keep scores ≥ S')
    .option('--false-alarms <F>', 'threshold with F expected false positives in the searched region (default 1 when the job has statistics)')
    .option('--z-score <Z>', 'keep scores ≥ mean + Z·std of the best-score map in the region')
    .option('--max-score <S>', 'drop scores > S (gold beads, artefacts)')
    .option('--edge <voxels>', 'margin at the volume faces not called; default: 0 (call everywhere the score is defined, up to the faces)')
    .option('--subvoxel', 'sub-voxel positions (parabolic fit per axis)');
}

/** The line that says what a user-set --edge cost: the candidates above the threshold in the margin. */
export function describeEdge(set: PeakSet, prefix: string): string {
  const [z, y, x] = set.edge;
  const margin = z === y && y === x ? `${z} voxels` : `${x}/${y}/${z} voxels (x/y/z)`;
  const n = set.edgeDropped;
  return `${prefix}: edge ${margin} dropped ${n} candidate${n === 1 ? '' : 's'} above the threshold\n`;
}

/** The report of the threshold used, why, and the false positives it lets through. */
export function describeThreshold(set: PeakSet, prefix: string): string {
  const t = set.threshold;
  const fp = t.expectedFalsePositives === null ? 'unknown (no search statistics)' : Number(t.expectedFalsePositives.toPrecision(3)).toString();
  const value = Number.isFinite(t.value) ? Number(t.value.toPrecision(6)).toString() : 'none';
  const faces = t.faces
    ? `${prefix}: near the faces the best-score map's upper tail is wider: within ${t.faces.within} voxels of a face the threshold rises to up to ${Number(t.faces.highest.toPrecision(6))} (${t.faces.atDistance} voxels in, ${t.faces.spreadRatio.toFixed(2)}× the interior's spread), so noise peaks are as rare there as inside\n`
    : '';
  return `${prefix}: threshold ${value} (${t.kind}): ${t.reason}\n`
    + `${prefix}: expected false positives at this threshold: ${fp} over ${t.regionVoxels} voxels\n` + faces;
}

/**
 * The memory peak calling may use (free memory, capped by --memory) and whether the maps, as scores.mrc's header
 * gives their shape, fit it whole; undefined when the header cannot be read (readJob then says what is wrong).
 */
function peaksMemory(jobDir: string, memory: string | undefined): { shape: Zyx; available: number; fits: boolean } | undefined {
  const { available } = allowedHostMemory(memory);
  let shape: Zyx;
  try {
    shape = readMrcHeader(path.join(jobDir, JOB_FILES.scores)).shape;
  } catch {
    return undefined;
  }
  return { shape, available, fits: peakCallingBytes(shape) <= available };
}


/**
 * Maps larger than the memory available are called slab by slab: scores (or the background map), rotations.mrc and
 * the mask read a z-slab at a time by region, with the halo calling reads around a voxel; the same picks.
 */
function slabSource(job: JobOnDisk, mapFile: string, maskFile: string | undefined): ScoreSlabSource & { close: () => void } {
  const [, ny, nx] = job.shape;
  const plane = ny * nx;
  const readers: MrcRegionReader[] = [];
  const open = (file: string): MrcRegionReader => {
    const r = new MrcRegionReader(file);
    readers.push(r);
    return r;
  };
  try {
    const scores = open(mapFile);
    const rotations = open(job.files.rotations);
    const mask = maskFile === undefined ? undefined : open(maskFile);
    if (mask && !mask.shape.every((n, i) => n === job.shape[i])) {
      throw new TmeError('ERR_TME_MISMATCH', `mask shape (z, y, x) = (${mask.shape.join(', ')}) differs from the score map (${job.shape.join(', ')})`, { file: mask.file });
    }
    const n = job.angles.length / 3;
    return {
      shape: job.shape,
      read: (z0, sections) => {
        const box: Zyx = [sections, ny, nx];
        const rot = rotations.readRegion([z0, 0, 0], box);
        for (let i = 0; i < rot.length; i++) {
          const v = rot[i] as number;
          if (!Number.isInteger(v) || v < -1 || v >= n) {
            throw new TmeError('ERR_TME_FORMAT', `voxel ${z0 * plane + i} holds ${v}, not a rotation index in [−1, ${n - 1}]`, { file: rotations.file });
          }
        }
        return { scores: scores.readRegion([z0, 0, 0], box), rot, ...(mask ? { mask: mask.readRegion([z0, 0, 0], box) } : {}) };
      },
      close: () => { for (const r of readers) r.close(); },
    };
  } catch (err) {
    for (const r of readers) r.close();
    throw err;
  }
}

/** `tme peaks`: call peaks on a finished job and write the orientations TSV, the details table and a report. */
export async function runPeaks(jobDir: string, o: PeaksCliOptions): Promise<PeaksCliResult> {
  const options = callOptionsFrom(o);
  const files = outputFiles(o.output);
  if (!o.force) {
    for (const f of Object.values(files)) if (fs.existsSync(f)) throw new TmeError('ERR_TME_EXISTS', 'exists (use --force to replace it)', { file: f });
  }

  const memory = peaksMemory(jobDir, o.memory);
  if (memory && !memory.fits) return runPeaksBySlabs(jobDir, o, options, files, memory);
  const job = readJob(jobDir);
  // A job searched with --background calls peaks on its background map (scores-normalised.mrc or scores-corrected.mrc),
  // with that map's own noise model.
  const background = o.plainScores === true ? undefined : job.background;
  const map = background ? background.peakMap : job.scores;
  const { statistics, templateShape, starts, onlyTemplate } = fromRecord(job.record, background?.kind, o.templateIndex);
  const mask = o.mask === undefined ? undefined : readPeakMask(o.mask, job.scores.shape);
  const set = callPeaks({
    scores: map.data, rotationIndices: job.indices, shape: job.scores.shape, rotations: job.rotations,
    voxelSize: job.scores.voxelSize, origin: job.scores.origin,
    ...(statistics ? { statistics } : {}), ...(mask ? { mask } : {}), ...(templateShape ? { templateShape } : {}),
  }, { ...options, ...(starts ? { templateStarts: starts } : {}), ...(onlyTemplate !== undefined ? { onlyTemplate } : {}) });
  let picks = set.picks;
  let refined: RefinedOrientation[] | undefined;
  if (o.refine) {
    const limit = o.memory === undefined ? undefined : parseMemorySize('--memory', o.memory);
    const { job: search, angularStep } = await jobFromRecord(job.record, jobDir, limit);
    ({ picks, refined } = await refinePicks(set, search, angularStep, undefined, jobDir));
  }
  writeFileAtomic(files.orientations, formatOrientationsTsv(picks));
  writeFileAtomic(files.details, formatPicksDetailsTsv(picks, refined));
  const report = callReport(jobDir, background ? background.file : 'scores.mrc', set, map.data, job.indices, mask, statistics);
  writeFileAtomic(files.report, `${JSON.stringify(report, null, 2)}\n`);

  process.stdout.write(
    (background ? `tme peaks: on ${background.file} (the job's --background ${background.kind} map; --plain-scores for scores.mrc)\n` : '')
    + describeThreshold(set, 'tme peaks')
    + (o.edge !== undefined ? describeEdge(set, 'tme peaks') : '')
    + (refined ? describeRefinement(refined, 'tme peaks') : '')
    + `tme peaks: ${set.picks.length} picks from ${set.candidates} candidates (min distance ${Number(set.minDistance.toPrecision(4))} voxels, edge ${set.edge.join('/')} voxels) → ${files.orientations}, ${files.details}, ${files.report}\n`,
  );
  return { set, files };
}

/**
 * What peak calling takes from a job's record: the noise statistics (a background map's own where peaks are called on
 * one), the template's box, where each template's rotations start, and the template --template-index keeps.
 */
function fromRecord(record: JobOnDisk['record'], backgroundKind: 'rotation-stats' | 'random-phase' | undefined, templateIndex: string | undefined) {
  const plainStatistics = statisticsFromJob(record.statistics);
  const statistics = backgroundKind
    ? (plainStatistics ? backgroundStatistics(backgroundKind, plainStatistics.rotations, plainStatistics.voxels) : undefined)
    : plainStatistics;
  const templateShape = zyxOf(record.parameters?.templateShape);
  const starts = templateStarts(record.parameters);
  let onlyTemplate: number | undefined;
  if (templateIndex !== undefined) {
    const n = starts?.length ?? 1;
    onlyTemplate = numberOption('--template-index', templateIndex, `a template index from 0 to ${n - 1} (the job searched ${n} template${n === 1 ? '' : 's'})`,
      (v) => starts !== undefined && Number.isInteger(v) && v >= 0 && v < n);
  }
  return { statistics, templateShape, starts, onlyTemplate };
}

/** A peak call of a job's maps slab by slab (callJobBySlabs): the picks, the report's histogram and what it read. */
export interface SlabCall {
  set: PeakSet;
  histogram: ScoreHistogram;
  statistics: ScoreStatistics | undefined;
  /** The map of the job folder the peaks were called on (scores.mrc or a background map). */
  mapFile: string;
  /** The lines that say why and how it was called slab by slab (and on which map). */
  describe: (prefix: string) => string;
  /** Wall time of the call, ms. */
  elapsedMs: number;
}

/**
 * Calls peaks on a job's maps slab by slab (callPeaksBySlabs) within `memory.available`: tme peaks on maps larger than
 * memory, and tme run on a tomogram matched out of core. The mask (`maskFile`) is read by region too.
 */
export function callJobBySlabs(
  jobDir: string, options: CallPeaksOptions, memory: { shape: Zyx; available: number; limit: boolean },
  o: {
    maskFile?: string; plainScores?: boolean; templateIndex?: string;
    /** The search's rotation matrices as it matched them (tme run): angles.tsv's text gives them to the last bits only. */
    rotations?: Float64Array;
  },
): SlabCall {
  const started = performance.now();
  const heldWhole = `the score and rotation maps (${[...memory.shape].reverse().join('×')} voxels, ≈ ${memorySize(peakCallingBytes(memory.shape))} to hold) `
    + `do not fit the ${memorySize(memory.available)} ${memory.limit ? '--memory allows' : 'free'} and are called slab by slab`;
  const job = openJob(jobDir);
  const background = o.plainScores === true ? undefined : job.background;
  const { statistics, templateShape, starts, onlyTemplate } = fromRecord(job.record, background?.kind, o.templateIndex);
  const call: CallPeaksOptions = { ...options, ...(starts ? { templateStarts: starts } : {}), ...(onlyTemplate !== undefined ? { onlyTemplate } : {}) };
  const geometry = { voxelSize: job.voxelSize, origin: job.origin, ...(templateShape ? { templateShape } : {}) };
  const halo = slabHalo(job.shape, { ...call, ...geometry }, true);
  const sections = peakSlabSections(job.shape, memory.available, SLAB_BYTES_PER_VOXEL, halo);
  if (sections < 1) {
    throw new TmeError('ERR_TME_DEVICE_MEMORY', `${heldWhole}, but slabs of one section with their halo of ${halo} need ${memorySize(peakSlabMinimumBytes(job.shape, SLAB_BYTES_PER_VOXEL, halo))}`, { file: job.files.scores });
  }
  const source = slabSource(job, background ? background.path : job.files.scores, o.maskFile);
  let result: ReturnType<typeof callPeaksBySlabs>;
  try {
    result = callPeaksBySlabs(source, { rotations: o.rotations ?? job.rotations, ...geometry, ...(statistics ? { statistics } : {}) }, call, sections, { bins: 100 });
  } finally {
    source.close();
  }
  const { histogram, ...set } = result;
  if (!histogram) throw new TmeError('ERR_TME_INTERNAL', 'slab-wise peak calling returned no histogram');
  const slabs = Math.ceil(job.shape[0] / sections);
  return {
    set, histogram, statistics, mapFile: background ? background.file : 'scores.mrc', elapsedMs: performance.now() - started,
    describe: (prefix) => `${prefix}: ${heldWhole}: ${slabs} slab${slabs === 1 ? '' : 's'} of ${sections} section${sections === 1 ? '' : 's'} (and ${halo} each side)\n`
      + (background ? `${prefix}: on ${background.file} (the job's --background ${background.kind} map; --plain-scores for scores.mrc)\n` : ''),
  };
}

/**
 * `tme peaks` on maps larger than the memory available: slab by slab (callJobBySlabs), the same outputs; --refine
 * reads each pick's box of the tomogram by region where the tomogram does not fit either.
 */
async function runPeaksBySlabs(
  jobDir: string, o: PeaksCliOptions, options: CallPeaksOptions, files: PeaksCliResult['files'], memory: { shape: Zyx; available: number },
): Promise<PeaksCliResult> {
  const { set, histogram, statistics, mapFile, describe } = callJobBySlabs(jobDir, options, { ...memory, limit: o.memory !== undefined }, {
    ...(o.mask === undefined ? {} : { maskFile: o.mask }), plainScores: o.plainScores, templateIndex: o.templateIndex,
  });
  let picks = set.picks;
  let refined: RefinedOrientation[] | undefined;
  if (o.refine) {
    const limit = o.memory === undefined ? undefined : parseMemorySize('--memory', o.memory);
    const { job: search, angularStep } = await jobFromRecord(openJob(jobDir).record, jobDir, limit);
    ({ picks, refined } = await refinePicks(set, search, angularStep, undefined, jobDir));
  }
  writeFileAtomic(files.orientations, formatOrientationsTsv(picks));
  writeFileAtomic(files.details, formatPicksDetailsTsv(picks, refined));
  const report = peakCallReport(path.resolve(jobDir), mapFile, set, histogram, statistics);
  writeFileAtomic(files.report, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    describe('tme peaks')
    + describeThreshold(set, 'tme peaks')
    + (o.edge !== undefined ? describeEdge(set, 'tme peaks') : '')
    + (refined ? describeRefinement(refined, 'tme peaks') : '')
    + `tme peaks: ${set.picks.length} picks from ${set.candidates} candidates (min distance ${Number(set.minDistance.toPrecision(4))} voxels, edge ${set.edge.join('/')} voxels) → ${files.orientations}, ${files.details}, ${files.report}\n`,
  );
  return { set, files };
}

export function register(program: Command): void {
  const cmd = program
    .command('peaks')
    .description('Call peaks on a finished job: threshold (false alarms, z-score or score), exact minimum distance, top N; writes a pyTME orientations TSV')
    .argument('<job>', 'job folder written by tme match (scores.mrc, rotations.mrc, angles.tsv, job.json)')
    .requiredOption('-o, --output <tsv>', 'orientations TSV (pyTME layout); <name>.details.tsv and <name>.report.json go next to it');
  addPeakOptions(cmd)
    .option('--mask <mrc>', PEAK_MASK_HELP)
    .option('--refine', 'refine each pick\'s orientation by a local search at half and a quarter of the global step, re-scored with the job\'s score and filters')
    .option('--force', 'replace existing outputs')
    .option('--plain-scores', 'call peaks on scores.mrc even when the job has a --background map')
    .option('--memory <size>', 'host memory peak calling may use, e.g. 8G; maps larger than it are called slab by slab (the same picks); default: what is free')
    .option('--template-index <k>', 'a job of several templates: pick only where template k (0-based, in --template order) scored best; default: every template at once, one pick per particle')
    .action(async (job: string, options: PeaksCliOptions) => { await runPeaks(job, options); });
}
