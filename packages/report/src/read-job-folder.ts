import * as fs from 'node:fs';
import * as path from 'node:path';
import { openJob, type JobRecord } from '@tme/engine';
import { scorePicks, type OrientedPosition } from '@tme/example';
import { TmeError, invalidOption, readVolume, volumeFormatOf, type Zyx } from '@tme/formats';
import {
  expectedFalsePositives, parseOrientationsTsv, statisticsFromJob, type PeakCallReport, type ScoreHistogram, type ScoreStatistics,
} from '@tme/peaks';
import { matrixToRelionEuler, relionEulerToMatrix } from '@tme/rotations';
import type { ReportData, ReportHistogram, ReportPick, ReportTruth } from './report-data';
import { REPORT_READ_BYTES, scoreHistogramOfSections, sectionsOfMrc, sectionsOfVolume, type SectionSource } from './sections';
import { PREVIEW_VOXELS, previewVolume } from './volume-preview';

export interface ReadReportOptions {
  /** The picks: an orientations TSV (pyTME layout); its `<name>.details.tsv` and `<name>.report.json` are read when
   * present. Default `<job>/picks.tsv`. */
  picks?: string;
  /** Ground truth to score the picks against: an orientations TSV (x, y, z, euler_x, euler_y, euler_z). */
  truth?: string;
  /** Voxels within which a pick finds a true particle. Default 2 (as `tme example` scores). */
  truthDistance?: number;
  /** Most voxels of each volume's preview. Default PREVIEW_VOXELS. */
  previewVoxels?: number;
  /** Most bytes read at once from the maps and an MRC tomogram, which are read a run of sections at a time (so the
   *  page is made within about this much memory however large the job). Default REPORT_READ_BYTES (64 MiB). */
  maxReadBytes?: number;
}

/** The report's data and the full volumes it was made from, read by sections (the PNG export draws a slab of them at
 *  full resolution). */
export interface ReportSource {
  data: ReportData;
  tomogram: SectionSource | null;
  /** The map the peaks were called on (data.scoresFile): scores.mrc or the job's --background map. */
  scores: SectionSource;
}

/** The sampling's directions on the page: enough to see the coverage, few enough to keep the page small. */
const MAX_SAMPLING_DIRECTIONS = 3000;

/** Where R (active, row-major, xyz) sends the template's z axis: (longitude, latitude) in degrees. */
export function zAxisDirection(r: ArrayLike<number>, offset = 0): [number, number] {
  const x = r[offset + 2]!, y = r[offset + 5]!, z = r[offset + 8]!;
  const round = (v: number): number => Math.round(v * 100) / 100 || 0;
  return [round((Math.atan2(y, x) * 180) / Math.PI), round((Math.asin(Math.max(-1, Math.min(1, z))) * 180) / Math.PI)];
}

/** Reads a job folder into everything the page shows. Throws TmeError for a folder that is not a finished job. */
export function readReportSource(jobDir: string, options: ReadReportOptions = {}): ReportSource {
  const dir = path.resolve(jobDir);
  // Headers only: the maps (and an MRC tomogram) are read a run of sections at a time, never whole.
  const job = openJob(dir);
  const record = job.record;
  const maxReadBytes = options.maxReadBytes ?? REPORT_READ_BYTES;
  if (!(Number.isFinite(maxReadBytes) && maxReadBytes > 0)) throw invalidOption('maxReadBytes', 'a number of bytes > 0', maxReadBytes);
  const picksFile = path.resolve(options.picks ?? path.join(dir, 'picks.tsv'));
  const base = picksFile.replace(/\.tsv$/i, '');
  const detailsFile = `${base}.details.tsv`;
  const callFile = `${base}.report.json`;
  if (options.picks !== undefined && !fs.existsSync(picksFile)) throw new TmeError('ERR_TME_IO', 'no such picks file', { file: picksFile });
  const call = fs.existsSync(callFile) ? readCallReport(callFile) : null;

  let picks: ReportPick[] = [];
  let picksMissing: string | null = null;
  if (fs.existsSync(detailsFile)) picks = parseDetailsTsv(fs.readFileSync(detailsFile, 'utf8'), detailsFile);
  else if (fs.existsSync(picksFile)) picks = picksFromOrientations(fs.readFileSync(picksFile, 'utf8'), picksFile);
  else picksMissing = `no picks in this folder (${path.basename(picksFile)}): tme run writes it with --formats tsv, tme peaks with -o`;

  // The map the call used (tme run and tme peaks call on a --background map when the job has one).
  const calledOn = call?.scores ?? job.background?.file ?? 'scores.mrc';
  const onBackground = job.background !== undefined && calledOn === job.background.file;
  const map = sectionsOfMrc(onBackground ? (job.background as NonNullable<typeof job.background>).path : job.files.scores);
  const tomogram = readTomogram(record, job.shape);
  const templateShape = record.parameters.templateShape;
  // The noise model the call used; without a call, the search's own (it has no calling region: no curve is drawn).
  const statistics = statisticsFromJob(call ? call.searchStatistics : record.statistics);
  const truth = options.truth === undefined ? null : scoreAgainstTruth(picks, options.truth, options.truthDistance ?? 2);
  const previewVoxels = options.previewVoxels ?? PREVIEW_VOXELS;
  const ownHistogram = (): ScoreHistogram => scoreHistogramOfSections(map, sectionsOfMrc(job.files.rotations), { bins: 100, maxReadBytes });

  const data: ReportData = {
    title: path.basename(dir),
    jobDir: dir,
    createdAt: record.createdAt,
    tmeVersion: record.tmeVersion,
    shape: job.shape,
    voxelSize: job.voxelSize,
    markerRadius: Math.max(2, Math.round(Math.min(...templateShape) / 3)),
    tomogram: tomogram.volume
      ? { preview: previewVolume(tomogram.volume, { reduce: 'mean', window: 'percentiles', maxVoxels: previewVoxels, maxReadBytes }), file: tomogram.file as string }
      : { missing: tomogram.missing as string, file: tomogram.file },
    scores: previewVolume(map, { reduce: 'max', window: 'upper', maxVoxels: previewVoxels, maxReadBytes }),
    scoresFile: onBackground ? calledOn : 'scores.mrc',
    picks,
    picksFile: picksMissing === null ? (fs.existsSync(detailsFile) ? detailsFile : picksFile) : null,
    picksMissing,
    histogram: histogramOf(call, statistics, ownHistogram),
    angles: anglesOf(record, job.rotations),
    truth,
    job: jobRows(record, call),
    // tme run keeps its warnings in both files: each once.
    warnings: [...new Set([...stringList(record.inputs['warnings']), ...(call?.warnings ?? [])])],
  };
  return { data, tomogram: tomogram.volume, scores: map };
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

/** The call's report, checked for the fields the page uses (an unreadable one is an error: it names the file). */
function readCallReport(file: string): PeakCallReport {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TmeError('ERR_TME_FORMAT', `not valid JSON: ${(err as Error).message}`, { file, cause: err });
  }
  const r = parsed as Partial<PeakCallReport>;
  const h = r.histogram;
  if (typeof r.threshold !== 'object' || r.threshold === null || !h || !Array.isArray(h.edges) || !Array.isArray(h.counts)
    || h.edges.length !== h.counts.length + 1) {
    throw new TmeError('ERR_TME_FORMAT', 'is not a peak call report (no threshold, or no histogram with one more edge than counts)', { file });
  }
  return r as PeakCallReport;
}

/** The tomogram named in job.json (an MRC read by sections, an EM file whole), or why it cannot be shown. */
function readTomogram(record: JobRecord, shape: Zyx): { volume: SectionSource | null; file: string | null; missing?: string } {
  const file = typeof record.inputs['target'] === 'string' ? record.inputs['target'] : null;
  if (file === null) return { volume: null, file, missing: 'job.json names no tomogram' };
  if (!fs.existsSync(file)) return { volume: null, file, missing: `${file} is gone (moved or deleted since the search)` };
  let volume: SectionSource;
  try {
    volume = volumeFormatOf(file) === 'mrc' ? sectionsOfMrc(file) : sectionsOfVolume(readVolume(file));
  } catch (err) {
    return { volume: null, file, missing: `${file} cannot be read: ${err instanceof TmeError ? err.message : String(err)}` };
  }
  if (!volume.shape.every((n, i) => n === shape[i])) {
    return { volume: null, file, missing: `${file} is ${[...volume.shape].reverse().join('×')} voxels, the score map ${[...shape].reverse().join('×')}: not the tomogram that was searched` };
  }
  return { volume, file };
}

/** The details table tme writes next to the picks, by column name. */
export function parseDetailsTsv(text: string, file: string): ReportPick[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split('\t');
  const col = (name: string): number => header.indexOf(name);
  const need = ['x', 'y', 'z', 'score', 'rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi'];
  const missing = need.filter((n) => col(n) < 0);
  if (missing.length > 0) throw new TmeError('ERR_TME_FORMAT', `the header has no ${missing.join(', ')} column${missing.length === 1 ? '' : 's'}`, { file });
  return lines.slice(1).map((line, k) => {
    const cells = line.split('\t');
    const value = (name: string): number | null => {
      const i = col(name);
      const s = i < 0 ? '' : (cells[i] ?? '').trim();
      const v = Number(s);
      return s === '' || !Number.isFinite(v) ? null : v;
    };
    const must = (name: string): number => {
      const v = value(name);
      if (v === null) throw new TmeError('ERR_TME_FORMAT', `line ${k + 2}: ${name} is not a finite number`, { file });
      return v;
    };
    const [rot, tilt, psi] = [must('rlnAngleRot'), must('rlnAngleTilt'), must('rlnAnglePsi')];
    return {
      rank: value('rank') ?? k,
      x: must('x') + (value('shift_x') ?? 0), y: must('y') + (value('shift_y') ?? 0), z: must('z') + (value('shift_z') ?? 0),
      rot, tilt, psi, score: must('score'), zScore: value('z_score'), localSnr: value('local_snr'),
      refinedScore: value('refined_score'), angleChange: value('refined_angle_change'),
      direction: zAxisDirection(relionEulerToMatrix(rot, tilt, psi)),
    };
  });
}

/** An orientations TSV without tme's details (pyTME's own, or one edited by hand): pyTME angles made RELION. */
function picksFromOrientations(text: string, file: string): ReportPick[] {
  return parseOrientationsTsv(text, file).map((r, k) => {
    const [rot, tilt, psi] = r.rotation ? matrixToRelionEuler(r.rotation) : [NaN, NaN, NaN];
    return {
      rank: k, x: r.position[2], y: r.position[1], z: r.position[0], rot, tilt, psi, score: r.score,
      zScore: null, localSnr: null, refinedScore: null, angleChange: null,
      direction: r.rotation ? zAxisDirection(r.rotation) : [NaN, NaN],
    };
  });
}

/** Scores the picks against a truth file with @tme/example's matcher, and marks each pick found or not. */
function scoreAgainstTruth(picks: ReportPick[], file: string, maxDistance: number): ReportTruth {
  if (!(Number.isFinite(maxDistance) && maxDistance > 0)) throw invalidOption('truthDistance', 'number > 0 (voxels)', maxDistance);
  if (!fs.existsSync(file)) throw new TmeError('ERR_TME_IO', 'no such truth file', { file });
  const rows = parseOrientationsTsv(fs.readFileSync(file, 'utf8'), file);
  const truth: OrientedPosition[] = rows.map((r, k) => {
    if (!r.rotation) throw new TmeError('ERR_TME_FORMAT', `row ${k + 1} has no euler_x, euler_y, euler_z: the truth needs orientations`, { file });
    return { position: r.position, rotation: r.rotation };
  });
  const oriented: OrientedPosition[] = picks.map((p) => ({ position: [p.z, p.y, p.x], rotation: relionEulerToMatrix(p.rot, p.tilt, p.psi) }));
  const s = scorePicks(oriented, truth, maxDistance);
  const found = new Set<number>();
  for (const p of picks) p.truth = null;
  for (const [pick, index, distance, angularError] of s.pairs) {
    found.add(index);
    (picks[pick] as ReportPick).truth = { index, distance: round(distance, 3), angularError: round(angularError, 2) };
  }
  return {
    file: path.resolve(file), maxDistance, truthCount: s.truthCount, pickCount: s.pickCount, matched: s.matched,
    recall: s.recall, precision: s.precision, medianAngularError: Number.isFinite(s.medianAngularError) ? s.medianAngularError : null,
    particles: truth.map((t, k) => ({ x: t.position[2], y: t.position[1], z: t.position[0], found: found.has(k) })),
  };
}

function round(v: number, digits: number): number {
  return Number(v.toFixed(digits));
}

/** The call's histogram and threshold, or (no call report) the score map's own histogram without a threshold. */
function histogramOf(call: PeakCallReport | null, statistics: ScoreStatistics | undefined, ownHistogram: () => ScoreHistogram): ReportHistogram {
  const h = call?.histogram ?? (() => {
    const own = ownHistogram();
    return { edges: Array.from(own.edges), counts: Array.from(own.counts), fitted: Array.from(own.fitted), fit: own.fit };
  })();
  const t = call?.threshold;
  const regionVoxels = t?.regionVoxels ?? null;
  let curve: Array<[number, number]> | null = null;
  if (statistics && regionVoxels !== null && regionVoxels > 0) {
    curve = h.edges.map((e) => [e, expectedFalsePositives(statistics, e, regionVoxels)]);
  }
  return {
    edges: h.edges, counts: h.counts, fitted: h.fitted, fit: { mean: h.fit.mean, std: h.fit.std, method: h.fit.method },
    threshold: t?.value ?? null, thresholdKind: t?.kind ?? null, reason: t?.reason ?? null,
    expectedFalsePositives: t?.expectedFalsePositives ?? null, regionVoxels, falsePositiveCurve: curve,
    source: call ? 'call' : 'scores',
  };
}

/** The distinct z-axis directions of the searched rotations, and the sampling's covering angle. */
function anglesOf(record: JobRecord, rotations: Float64Array): ReportData['angles'] {
  const n = rotations.length / 9;
  const seen = new Map<string, [number, number]>();
  for (let i = 0; i < n; i++) {
    const d = zAxisDirection(rotations, 9 * i);
    seen.set(`${d[0].toFixed(1)},${d[1].toFixed(1)}`, d);
  }
  let sampling = [...seen.values()];
  if (sampling.length > MAX_SAMPLING_DIRECTIONS) {
    const step = sampling.length / MAX_SAMPLING_DIRECTIONS;
    sampling = Array.from({ length: MAX_SAMPLING_DIRECTIONS }, (_, k) => sampling[Math.floor(k * step)] as [number, number]);
  }
  const inputs = record.inputs;
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const measured = num(inputs['coveringAngle']);
  const bound = num(inputs['coveringBound']);
  return {
    sampling, rotations: n, symmetry: typeof inputs['symmetry'] === 'string' ? inputs['symmetry'] : null,
    angularStep: num(inputs['angularStep']),
    covering: measured ?? bound, coveringSource: measured !== null ? 'measured' : bound !== null ? 'bound' : null,
  };
}

function seconds(ms: unknown): string {
  return typeof ms === 'number' && Number.isFinite(ms) ? `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s` : '—';
}

function text(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (Array.isArray(v)) return v.map(text).join(', ');
  return JSON.stringify(v);
}

/** The job as rows of the page's job table. */
function jobRows(record: JobRecord, call: PeakCallReport | null): Array<[string, string]> {
  const i = record.inputs;
  const p = record.parameters;
  const rows: Array<[string, string]> = [
    ['tme version', `${record.tmeVersion} (engine ${record.engineVersion})`],
    ['finished', record.createdAt],
    ['command', text(i['command'])],
    ['tomogram', text(i['target'])],
    ['template', text(i['template'])],
  ];
  if (i['templateMask']) rows.push(['template mask', text(i['templateMask'])]);
  if (i['targetMask']) rows.push(['target mask', text(i['targetMask'])]);
  if (i['peakMask']) rows.push(['peak mask', text(i['peakMask'])]);
  rows.push(
    ['shape (x × y × z)', `${[...p.targetShape].reverse().join(' × ')} voxels of ${[...p.voxelSize].reverse().map((v) => text(v)).join(' × ')} Å`],
    ['template box', `${[...p.templateShape].reverse().join(' × ')} voxels${p.maskRadius !== null ? `, mask radius ${text(p.maskRadius)} Å` : ''}`],
    ['score', p.score],
    ['rotations', `${p.rotationCount}${i['symmetry'] ? `, symmetry ${text(i['symmetry'])}` : ''}${i['angularStep'] !== undefined ? `, angular step ${text(i['angularStep'])}°` : ''}${p.rotationRange ? `, shard ${p.rotationRange.join('–')}` : ''}`],
    ['rotation sampling', text(i['rotationMethod'])],
  );
  const filters = i['filters'];
  if (filters && typeof filters === 'object' && Object.keys(filters).length > 0) {
    rows.push(['filters', Object.entries(filters as Record<string, unknown>).map(([k, v]) => `${k} ${text(v)}`).join('; ')]);
  }
  if (record.background) rows.push(['background', `${record.background.kind}: peaks on ${record.background.peakMap}`]);
  rows.push(
    ['device', `${record.device.name} (${record.device.kind}${record.devices && record.devices.length > 1 ? `; ${record.devices.length} workers: ${record.devices.map((d) => d.name).join(', ')}` : ''})`],
    ['search', `${seconds(record.timings.totalMs)} (prepare ${seconds(record.timings.prepareMs)}, match ${seconds(record.timings.matchMs)}; ${text(Math.round(record.timings.rotationsPerSecond))} rotations/s)${record.resumed ? ', resumed' : ''}`],
    ['tiles', `${record.tilePlan.tiles.length} (${record.tilePlan.reason})`],
    ['score statistics', `mean ${text(record.statistics.mean)} ± ${text(record.statistics.std)} over ${text(record.statistics.count)} scores`],
  );
  if (call) {
    const s = call.settings;
    const t = call.timings;
    rows.push(['peak calling', `${call.picks} picks of ${call.candidates} candidates; at most ${s.numPeaks}, min distance ${text(s.minDistanceVoxels)} voxels, edge ${s.edgeVoxels.join('/')} voxels${s.maxScore !== null ? `, max score ${text(s.maxScore)}` : ''}`]);
    if (t) rows.push(['after the search', `peaks ${seconds(t.peaksMs)}${t.refineMs !== undefined ? `, refinement ${seconds(t.refineMs)}` : ''}, exports ${seconds(t.exportMs)}`]);
  }
  return rows;
}

