import * as path from 'node:path';
import { writeFileAtomic, type Volume, type VolumeRegionSource, type Zyx } from '@tme/formats';
import { BACKGROUND_FILES, backgroundStatistics, type FilteredVolume, type MatchJob, type MatchParameters, type MatchResult } from '@tme/engine';
import {
  callPeaks, formatOrientationsTsv, formatPicksDetailsTsv, peakCallReport, scoreHistogram,
  type CallPeaksOptions, type PeakCallReport, type PeakSet, type Pick, type RefinedOrientation, type ScoreMaps, type ScoreStatistics,
} from '@tme/peaks';
import { RELION_OUTSIDE_LABEL, exportImod, exportRelion, defaultBoxSize, type ExportPick, type ExportSummary } from '@tme/export';
import type { Microscope } from '@tme/export';
import { refinePicks } from './refine';
import type { SlabCall } from './commands/peaks';

/** The outputs `tme run` writes after the match, each in its own place inside OUTDIR. */
export type RunFormat = 'tsv' | 'relion' | 'imod' | 'report';
export const RUN_FORMATS: readonly RunFormat[] = ['tsv', 'relion', 'imod', 'report'];

/** The peak call's report next to the picks (`tme report` rebuilds its page from it). */
export const CALL_REPORT_FILE = 'picks.report.json';

/**
 * The call's report: its summary, the noise model it used, and the histogram (with the fitted Gaussian) of `map`, the
 * map of the job folder named `mapFile` that the peaks were called on.
 */
export function callReport(
  jobDir: string, mapFile: string, set: PeakSet, map: Float32Array, indices: Int32Array, mask: Float32Array | undefined,
  statistics: ScoreStatistics | undefined, extra: { warnings?: string[]; timings?: PeakCallReport['timings'] } = {},
): PeakCallReport {
  const histogram = scoreHistogram(map, {
    rotationIndices: indices, ...(mask ? { mask } : {}), bins: 100,
    ...(Number.isFinite(set.threshold.value) ? { threshold: set.threshold.value } : {}),
  });
  return peakCallReport(path.resolve(jobDir), mapFile, set, histogram, statistics, extra);
}

export interface PickAndExportOptions {
  dir: string;
  /** The search's maps in memory, or its peaks already called slab by slab from the job folder (a tomogram matched
   *  out of core whose maps do not fit memory: `tme run`'s callJobBySlabs). */
  result: MatchResult | { slabs: SlabCall };
  /** The tomogram as matched (subtomograms are cut from it): held whole, or on disk (read one box at a time). */
  target: Volume | VolumeRegionSource;
  templateShape: Zyx;
  tomoName: string;
  peaks: CallPeaksOptions;
  /** Call peaks only where this mask (target shape) is ≥ 0.5. */
  peakMask?: Float32Array;
  formats: readonly RunFormat[];
  /** For RELION's optics table and wedge volume. */
  tiltRange?: readonly [number, number];
  tiltAxis?: 'y' | 'x';
  microscope?: Microscope;
  /** rlnMicrographName: the tomogram file the boxes are cut from. */
  micrographName?: string;
  /** RELION subtomogram box (even); default from the template size. */
  box?: number;
  /** Subtomograms with dark protein are inverted so RELION sees bright density. */
  invertSubtomograms?: boolean;
  force?: boolean;
  /** Refine each pick's orientation locally with the search's own score and filters (out of core with a target
   *  filter: `filtered`, the search's filtered tomogram, is read rather than filtered again). */
  refine?: { job: MatchJob; angularStep: number; filtered?: FilteredVolume };
  /** What the run printed as warnings, kept in the call's report. */
  warnings?: readonly string[];
}

export interface PickAndExportSummary {
  peaks: PeakSet;
  /** The picks as exported (refined orientations when asked for). */
  picks: Pick[];
  refined?: RefinedOrientation[];
  /** Refinement read the search's filtered tomogram (refine.filtered) instead of filtering it again. */
  refinedOnSearchFilter?: boolean;
  files: string[];
  relion?: ExportSummary;
}

export function toExportPicks(picks: readonly Pick[]): ExportPick[] {
  return picks.map((p) => ({
    position: [p.position[0] + p.shift[0], p.position[1] + p.shift[1], p.position[2] + p.shift[2]] as Zyx,
    rotation: p.rotation,
    score: p.score,
    detail: p.template,
  }));
}

/**
 * Several templates in one pass: where each template's rotations start in the job's table, for the peak call (each
 * pick's template, the TSV's detail). Undefined with one template.
 */
export function templateStarts(parameters: { templates?: MatchParameters['templates'] } | undefined): number[] | undefined {
  const t = parameters?.templates;
  return t !== undefined && t.length > 1 ? t.map((e) => e.rotationStart) : undefined;
}

/** The map peaks are called on: the --background map when the search made one (with its noise model), else scores. */
function peakMapOf(result: MatchResult): { map: Volume; file: string; statistics: ScoreMaps['statistics'] } {
  const s = result.stats;
  const b = result.background;
  if (b) {
    const statistics = backgroundStatistics(b.kind, s.rotationCount, s.voxelCount);
    return b.kind === 'rotation-stats'
      ? { map: b.normalised, file: BACKGROUND_FILES.normalised, statistics }
      : { map: b.corrected, file: BACKGROUND_FILES.corrected, statistics };
  }
  return {
    map: result.scores, file: 'scores.mrc',
    statistics: {
      mean: s.mean, std: s.std, count: s.count, voxels: s.voxelCount, rotations: s.rotationCount,
      ...(s.perRotationMean && s.perRotationStd ? { perRotation: { mean: s.perRotationMean, std: s.perRotationStd } } : {}),
    },
  };
}

/**
 * Peaks on the best-score map (or the --background map), then every requested export, then the call's report
 * (picks.report.json).
 */
export async function pickAndExport(o: PickAndExportOptions): Promise<PickAndExportSummary> {
  const started = performance.now();
  const call = 'slabs' in o.result ? slabCall(o.dir, o.result.slabs) : callOnMaps(o, o.result);
  const peaks = call.peaks;
  const files: string[] = [];
  const summary: PickAndExportSummary = { peaks, picks: peaks.picks, files };
  const calledAt = performance.now();
  if (o.refine) {
    const r = await refinePicks(peaks, o.refine.job, o.refine.angularStep, undefined, o.dir, o.refine.filtered);
    summary.picks = r.picks;
    summary.refined = r.refined;
    if (r.reusedFilter) summary.refinedOnSearchFilter = true;
  }
  const refined = performance.now();
  const picks = toExportPicks(summary.picks);
  const geometry = { shape: o.target.shape, voxelSize: o.target.voxelSize[2], name: o.tomoName };
  if (o.formats.includes('relion')) {
    const box = o.box ?? defaultBoxSize(Math.max(...o.templateShape));
    summary.relion = exportRelion(picks, o.target, geometry, {
      outDir: path.join(o.dir, 'relion'), box, force: o.force, tiltRange: o.tiltRange ? [o.tiltRange[0], o.tiltRange[1]] : undefined,
      tiltAxis: o.tiltAxis, invert: o.invertSubtomograms, ...o.microscope, micrographName: o.micrographName,
    });
    files.push(...summary.relion.files.slice(-1));
  }
  if (o.formats.includes('tsv')) {
    const tsv = path.join(o.dir, 'picks.tsv');
    writeFileAtomic(tsv, formatOrientationsTsv(summary.picks));
    const details = path.join(o.dir, 'picks.details.tsv');
    writeFileAtomic(details, formatPicksDetailsTsv(summary.picks, summary.refined, summary.relion?.outsideFractions));
    files.push(tsv, details);
  }
  if (o.formats.includes('imod')) {
    const r = exportImod(picks, geometry, { outDir: path.join(o.dir, 'imod'), force: o.force, sphereRadius: Math.max(1, Math.round(Math.min(...o.templateShape) / 4)) });
    files.push(...r.files);
  }
  const timings = {
    peaksMs: Math.round(calledAt - started + call.elapsedMs), ...(o.refine ? { refineMs: Math.round(refined - calledAt) } : {}),
    exportMs: Math.round(performance.now() - refined),
  };
  const extra = { warnings: [...(o.warnings ?? [])], timings };
  const report = call.report(extra);
  const reportFile = path.join(o.dir, CALL_REPORT_FILE);
  writeFileAtomic(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  files.push(reportFile);
  return summary;
}

/** A peak call and the report of it (its histogram from the maps it read), and any time spent before pickAndExport. */
interface PeakCall {
  peaks: PeakSet;
  elapsedMs: number;
  report: (extra: { warnings: string[]; timings: PeakCallReport['timings'] }) => PeakCallReport;
}

/** Peaks on a search's maps held in memory: the best-score map (or the --background map). */
function callOnMaps(o: PickAndExportOptions, result: MatchResult): PeakCall {
  const { map, file, statistics } = peakMapOf(result);
  const starts = templateStarts(result.parameters);
  const peaks = callPeaks(
    {
      scores: map.data,
      rotationIndices: result.indices,
      shape: result.scores.shape,
      rotations: result.rotations,
      ...(statistics ? { statistics } : {}),
      voxelSize: result.scores.voxelSize,
      origin: result.scores.origin,
      templateShape: o.templateShape,
      ...(o.peakMask ? { mask: o.peakMask } : {}),
    },
    { ...o.peaks, ...(starts ? { templateStarts: starts } : {}) },
  );
  return { peaks, elapsedMs: 0, report: (extra) => callReport(o.dir, file, peaks, map.data, result.indices, o.peakMask, statistics, extra) };
}

/** Peaks called slab by slab before (callJobBySlabs): its histogram was gathered on the way. */
function slabCall(dir: string, slabs: SlabCall): PeakCall {
  return {
    peaks: slabs.set, elapsedMs: slabs.elapsedMs,
    report: (extra) => peakCallReport(path.resolve(dir), slabs.mapFile, slabs.set, slabs.histogram, slabs.statistics, extra),
  };
}

/**
 * What the RELION export did with boxes that cross a tomogram face, for the summary lines of `tme run` and
 * `tme export`: "1 box crosses a face: outside filled with the mean of its voxels inside the tomogram (0 after
 * normalisation), marked in tmeBoxOutsideFraction; 0 skipped".
 */
export function describeFaceBoxes(s: ExportSummary, normalise = true): string {
  const crossing = `${s.padded} box${s.padded === 1 ? '' : 'es'} cross${s.padded === 1 ? 'es' : ''} a face`;
  const fill = s.padded === 0 ? '' : `: outside filled with the mean of its voxels inside the tomogram${normalise ? ' (0 after normalisation)' : ''}, `
    + `marked in ${RELION_OUTSIDE_LABEL}`;
  return `${crossing}${fill}; ${s.skipped} skipped`;
}
