import * as path from 'node:path';
import type { Command } from 'commander';
import { TmeError, invalidOption, readMrcHeader, type Zyx } from '@tme/formats';
import { BACKGROUND_FILES, isRegionSource, openJob, peakCallingBytes, readBackgroundMap, readJob, type MatchResult } from '@tme/engine';
import { REPORT_READ_BYTES } from '@tme/report';
import { RUN_FORMATS, describeFaceBoxes, pickAndExport, type PickAndExportSummary, type RunFormat } from '../pipeline';
import { describeRefinement, refinable } from '../refine';
import { addMatchOptions, executeMatch, setupMatch, type MatchFlags } from './match';
import { REPORT_FILE, writeReport } from './report';
import {
  PEAK_MASK_HELP, addPeakOptions, callJobBySlabs, callOptionsFrom, describeEdge, describeThreshold, readPeakMask, type PeaksCliOptions, type SlabCall,
} from './peaks';

export interface RunFlags extends MatchFlags, Omit<PeaksCliOptions, 'output' | 'force'> {
  formats: string;
  box?: string;
  /** The search is already in the output folder (a merge of SLURM shards): pick and export from it, match nothing. */
  fromJob?: boolean;
}

/** A finished job folder read back as the result its match returned: what the peaks and exports take. */
function resultOfJob(dir: string): MatchResult {
  const job = readJob(dir);
  const r = job.record;
  const s = r.statistics;
  const background = r.background?.kind === 'rotation-stats' ? {
    kind: 'rotation-stats' as const,
    rotationMean: readBackgroundMap(dir, BACKGROUND_FILES.rotationMean, job.scores),
    rotationStd: readBackgroundMap(dir, BACKGROUND_FILES.rotationStd, job.scores),
    normalised: readBackgroundMap(dir, BACKGROUND_FILES.normalised, job.scores),
  } : undefined;
  const device = { index: r.device.index, name: r.device.name, kind: r.device.kind as 'gpu' | 'cpu', memoryBytes: 0 };
  return {
    scores: job.scores, indices: job.indices, rotations: job.rotations,
    stats: {
      mean: s.mean, std: s.std, count: s.count, voxelCount: s.voxelCount, rotationCount: s.rotationCount, scope: s.scope,
      perRotationMax: Float32Array.from(s.perRotationMax),
      ...(s.perRotationMean && s.perRotationStd ? { perRotationMean: Float64Array.from(s.perRotationMean), perRotationStd: Float64Array.from(s.perRotationStd) } : {}),
    },
    ...(background ? { background } : {}),
    tilePlan: r.tilePlan, device: { ...device, backend: r.device.backend }, devices: [device], timings: r.timings, parameters: r.parameters, resumed: r.resumed,
  };
}

/** The --mask of tme run must have the tomogram's shape (its header read, not its voxels). */
function checkMaskShape(file: string, shape: Zyx): void {
  const m = readMrcHeader(file).shape;
  if (!m.every((n, i) => n === shape[i])) {
    throw new TmeError('ERR_TME_MISMATCH', `mask shape (z, y, x) = (${m.join(', ')}) differs from the score map (${shape.join(', ')})`, { file });
  }
}

export function parseFormats(text: string): RunFormat[] {
  const list = text.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0);
  const bad = list.filter((s) => !(RUN_FORMATS as readonly string[]).includes(s));
  if (list.length === 0 || bad.length > 0) throw invalidOption('--formats', `a comma-separated list of ${RUN_FORMATS.join(', ')}`, text);
  return list as RunFormat[];
}

/** --box: the RELION subtomograms' box, so only with relion among the outputs. */
export function parseRunBox(text: string | undefined, formats: readonly RunFormat[]): number | undefined {
  if (text === undefined) return undefined;
  const box = Number(text);
  if (!(Number.isInteger(box) && box >= 4 && box % 2 === 0)) throw invalidOption('--box', 'an even integer ≥ 4 (RELION needs even boxes)', text);
  if (!formats.includes('relion')) throw invalidOption('--box', `it only with relion in --formats (the subtomograms' box; --formats is ${formats.join(',')})`, text);
  return box;
}

/** `tme run`: match, call peaks and export, into one folder, with the flags of the separate commands. */
export async function runAll(flags: RunFlags): Promise<void> {
  const formats = parseFormats(flags.formats);
  const peaks = callOptionsFrom({ ...flags, refine: false });
  const box = parseRunBox(flags.box, formats);
  // The peak mask is checked before the match: a wrong file must not cost a search (its shape from the header: a
  // tomogram matched out of core has a mask read slab by slab).
  const targetShape = readMrcHeader(flags.target).shape;
  if (flags.mask !== undefined) checkMaskShape(flags.mask, targetShape);
  const setup = await setupMatch(flags, { createDir: flags.fromJob !== true });
  // Out of core nothing is held whole: the maps are called slab by slab where they do not fit, refinement and the
  // RELION export read each pick's box by region. The maps read back take the search's own rotation matrices (angles.tsv
  // gives them to the last bits only, and refinement starts from them).
  const outOfCore = isRegionSource(setup.target);
  const memory = { shape: targetShape, available: setup.memory.availableBytes, limit: setup.memory.limit };
  const slabWise = outOfCore && peakCallingBytes(targetShape) > memory.available;
  if (flags.mask !== undefined) setup.inputs['peakMask'] = path.resolve(flags.mask);
  // Refinement is on by default (measured: the median angular error drops below half the step, for ~0.1 s a pick);
  // mcc cannot be re-scored per voxel, so its angles stay those of the global search, and the run says so.
  const refine = flags.refine !== false && refinable(setup.job);
  // Out of core a target filter's filtered tomogram stays on disk until refinement has read it (not filtered again).
  const matched = flags.fromJob ? undefined : await executeMatch(setup, flags, 'tme run', { keepFilteredTarget: refine && outOfCore });
  const filtered = matched && 'filteredTarget' in matched ? matched.filteredTarget : undefined;
  let summary: PickAndExportSummary;
  let slabs: SlabCall | undefined;
  try {
    const result = slabWise
      ? { slabs: callJobBySlabs(setup.dir, peaks, memory, { ...(flags.mask === undefined ? {} : { maskFile: flags.mask }), ...(matched ? { rotations: matched.rotations } : {}) }) }
      : matched === undefined ? resultOfJob(setup.dir)
        : 'outOfCore' in matched ? { ...resultOfJob(setup.dir), rotations: matched.rotations } : matched;
    const peakMask = flags.mask === undefined || slabWise ? undefined : readPeakMask(flags.mask, targetShape);
    const templateShape = 'slabs' in result ? openJob(setup.dir).record.parameters.templateShape : result.parameters.templateShape;
    const tomoName = flags.tomoName ?? setup.filters.tomoName
      ?? path.basename(flags.target).replace(/\.[^.]+$/, '').replace(/[^A-Za-z0-9._+-]/g, '_');
    // With several templates the box is the largest one's (job.json's templateShape): picks' distance and RELION's box.
    if ('slabs' in result) slabs = result.slabs;
    summary = await pickAndExport({
      dir: setup.dir, result, target: setup.target, templateShape, tomoName, peaks, ...(peakMask ? { peakMask } : {}), formats,
      tiltRange: setup.filters.tiltRange, tiltAxis: setup.options.tiltAxis,
      microscope: setup.filters.microscope.microscope, micrographName: setup.options.target,
      // Dark protein in the tomogram (the template was inverted to match it): RELION must average bright protein.
      invertSubtomograms: setup.options.invertContrast,
      box, force: flags.force === true || flags.resume === true,
      refine: refine ? { job: setup.job, angularStep: setup.angularStep, ...(filtered ? { filtered } : {}) } : undefined, warnings: setup.warnings,
    });
  } finally {
    filtered?.release();
  }
  // Last: the page shows everything the run wrote.
  // Maps that do not fit are read for the page a run of sections at a time, within a quarter of the memory allowed.
  const reportReads = slabWise ? { maxReadBytes: Math.max(2 ** 20, Math.min(REPORT_READ_BYTES, memory.available / 4)) } : {};
  const report = formats.includes('report') ? writeReport(setup.dir, path.join(setup.dir, REPORT_FILE), reportReads) : undefined;
  if (!flags.quiet) {
    if (slabs) process.stdout.write(slabs.describe('tme run'));
    process.stdout.write(describeThreshold(summary.peaks, 'tme run'));
    if (flags.edge !== undefined) process.stdout.write(describeEdge(summary.peaks, 'tme run'));
    if (summary.refined) process.stdout.write(describeRefinement(summary.refined, 'tme run', summary.refinedOnSearchFilter));
    else if (flags.refine !== false) process.stdout.write('tme run: orientations not refined: the mcc score cannot be re-scored at single voxels (flc and flc-sphere can)\n');
    const r = summary.relion;
    const relion = r ? `; RELION: ${r.written} subtomograms${flags.invertContrast ? ' (inverted: bright protein)' : ''}, ${describeFaceBoxes(r)}` : '';
    process.stdout.write(`tme run: ${summary.peaks.picks.length} picks → ${formats.join(', ')} in ${setup.dir}${relion}\n`);
    if (report !== undefined) process.stdout.write(`tme run: report ${report}\n`);
  }
}

/** What tme run (and tme batch, per tomogram) does after the match: the picks' mask and refinement, the outputs. */
export function addRunOutputOptions(cmd: Command): Command {
  return cmd
    .option('--mask <mrc>', PEAK_MASK_HELP)
    .option('--no-refine', 'keep the global search\'s orientations (default: refine each pick\'s orientation by a local search at half and a quarter of the angular step, re-scored with the search\'s own score and filters; not for mcc)')
    .option('--formats <list>', `outputs after the match: ${RUN_FORMATS.join(', ')}`, RUN_FORMATS.join(','))
    .option('--box <voxels>', 'RELION subtomogram box (even); default: an even fast size ≥ 1.5× the template box. A box that crosses a tomogram face is kept: its outside is filled with the mean of its voxels inside the tomogram (0 after normalisation) and it is marked (tmeBoxOutsideFraction)');
}

export function register(program: Command): void {
  const cmd = program
    .command('run')
    .description('The whole job in one go: match, call peaks, and export (orientations TSV, RELION particles with subtomograms, IMOD model, HTML report)');
  addMatchOptions(cmd);
  addPeakOptions(cmd);
  addRunOutputOptions(cmd)
    .option('--resume', 'continue the match in the output folder from its checkpoint')
    .option('--force', 'overwrite the job in the output folder')
    .option('--quiet', 'print nothing but errors')
    .option('--progress', 'draw progress even when stderr is not a terminal or CI is set')
    .requiredOption('-o, --output <dir>', 'output folder: the job files, picks.tsv, relion/, imod/, report.html')
    .action(async (flags: RunFlags) => runAll(flags));
}
