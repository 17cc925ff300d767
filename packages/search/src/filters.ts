import * as fs from 'node:fs';
import * as path from 'node:path';
import { TmeError, inFile, invalidOption } from '@tme/formats';
import {
  buildTilts, ctffindMicroscope, imodDefocusPerView, mdocMicroscope, parseCtffind, parseDoseFile, parseImodDefocus, parseMdoc,
  parseRelionTiltSeries, parseRelionTomograms, parseTiltAngles, parseWarpXml, relionMicroscope, resolveMicroscope,
  selectRelionTomogram, tiltsFromMdoc, tiltsFromRelion, tiltsFromWarp, warpMicroscope,
  type FilterOptions, type Microscope, type ResolvedMicroscope, type Tilt,
} from '@tme/template';
import { SEARCH_FLAGS, type SearchOptions } from './options';

/** The rule for microscope values, stated once for every reader of metadata (mdoc, Warp XML, RELION STAR, CTFFIND). */
export const MICROSCOPE_RULE = 'a value you type wins over the metadata file (--tilt-angles, --defocus), the file over the default';

/** The search's filters and what they were made from. */
export interface SearchFilters {
  options: FilterOptions;
  /** Voltage, Cs and amplitude contrast after the rule (typed > file > default), and where each came from. */
  microscope: ResolvedMicroscope;
  /** The sampled tilt range: tiltRange, or the extreme angles of tiltAngles (RELION's wedge volume). */
  tiltRange?: [number, number];
  /** The tomograms.star row used, when tiltAngles is one. */
  tomoName?: string;
}

/** The options that shape the filters. */
export type FilterFlags = Pick<SearchOptions,
  'target' | 'tiltRange' | 'tiltAxis' | 'tiltAngles' | 'tomoName' | 'dose' | 'defocus' | 'voltage' | 'sphericalAberration'
  | 'amplitudeContrast' | 'phaseShift' | 'phaseFlip' | 'cosineWeighting' | 'lowpass' | 'highpass'>;

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TmeError('ERR_TME_IO', code === 'ENOENT' ? 'no such file' : `cannot read (${code ?? String(err)})`, { file, cause: err });
  }
}

/** What a defocus gives: per-tilt values (Å) and the microscope a file's header states. */
interface DefocusInput { perTilt: number[]; microscope: Partial<Microscope> }

/** One defocus for every tilt, or per tilt from an IMOD .defocus or CTFFIND file (U/V averaged). */
function readDefocus(value: number | string, tiltCount: number): DefocusInput {
  if (typeof value === 'number') return { perTilt: new Array<number>(Math.max(tiltCount, 1)).fill(value), microscope: {} };
  const text = readText(value);
  if (/\.defocus$/i.test(value)) {
    const perTilt = imodDefocusPerView(parseImodDefocus(text, { file: value }), tiltCount).map((e) => (e.defocus1 + e.defocus2) / 2);
    return { perTilt, microscope: {} };
  }
  const result = parseCtffind(text, { file: value });
  if (tiltCount > 0 && result.rows.length !== tiltCount) {
    throw new TmeError('ERR_TME_MISMATCH', `${result.rows.length} CTFFIND rows for ${tiltCount} tilts`, { file: value });
  }
  return { perTilt: result.rows.map((r) => (r.defocus1 + r.defocus2) / 2), microscope: ctffindMicroscope(result) };
}

/** Per-tilt angles and what else the file carries, and the microscope values the file states. */
interface TiltFile { tilts: Tilt[]; microscope: Partial<Microscope>; tomoName?: string }

/**
 * A RELION 5 STAR as tilt angles: a tomograms.star (the row chosen by the tomogram's name or the target's file name,
 * its optics, and the tilt-series STAR it points to) or a tilt-series STAR itself (no optics).
 */
function readRelionTilts(file: string, text: string, o: FilterFlags): TiltFile {
  if (text.includes('_rlnTomoNominalStageTiltAngle')) {
    return { tilts: tiltsFromRelion({ name: '' }, parseRelionTiltSeries(text, { file })), microscope: {} };
  }
  const row = selectRelionTomogram(parseRelionTomograms(text, { file }), { name: o.tomoName, target: o.target }, { file });
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
  for (let dir = path.dirname(path.resolve(tomogramsStar)); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, recorded);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  const beside = path.join(path.dirname(tomogramsStar), path.basename(recorded));
  if (fs.existsSync(beside)) return beside;
  throw new TmeError('ERR_TME_IO', `cannot find the tilt-series STAR ${recorded} it names (looked in the folders above it and beside it)`, { file: tomogramsStar });
}

/** Per-tilt angles (and whatever else the file carries) from .tlt/.rawtlt, .mdoc, Warp .xml or a RELION 5 .star. */
function readTiltFile(file: string, o: FilterFlags): TiltFile {
  // Values a file carries are checked after parsing (an angle of 1e300): those errors name the file too.
  return inFile(file, () => {
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
    if (ext === '.star') return readRelionTilts(file, text, o);
    return { tilts: buildTilts({ angles: parseTiltAngles(text, { file }) }), microscope: {} };
  });
}

/** Accumulated doses: a file, or one dose per tilt accumulated in collection order. */
function readDoses(value: number | string, tilts: readonly Tilt[]): number[] {
  const doses = typeof value === 'number' ? collectionDoses(tilts, value) : parseDoseFile(readText(value), { file: value });
  if (doses.length !== tilts.length) {
    throw new TmeError('ERR_TME_MISMATCH', `${doses.length} doses for ${tilts.length} tilts`, { file: typeof value === 'string' ? value : undefined });
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

/**
 * The filter options a search asks for (no whitening: that needs the target), from its typed options and the
 * metadata files they name. A value that would do nothing in this combination is refused, never dropped.
 */
export function searchFilters(o: FilterFlags): SearchFilters {
  const options: FilterOptions = {};
  const typed: Partial<Microscope> = { voltage: o.voltage, sphericalAberration: o.sphericalAberration, amplitudeContrast: o.amplitudeContrast };
  const { tiltAxis, cosineWeighting, phaseShift } = o;
  const flipPhase = o.phaseFlip;

  let tiltRange: [number, number] | undefined;
  let microscope: ResolvedMicroscope;
  let hasCtf: boolean;
  let tomoName: string | undefined;
  if (o.tiltAngles !== undefined) {
    const read = readTiltFile(o.tiltAngles, o);
    tomoName = read.tomoName;
    let tilts = read.tilts;
    if (o.dose !== undefined) {
      const doses = readDoses(o.dose, tilts);
      tilts = tilts.map((t, i) => ({ ...t, dose: doses[i] as number }));
    }
    const defocus = o.defocus === undefined ? undefined : readDefocus(o.defocus, tilts.length);
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
    if (o.tiltRange !== undefined) {
      tiltRange = [o.tiltRange[0], o.tiltRange[1]];
      options.wedge = { tiltRange, tiltAxis, cosineWeighting };
    }
    const defocus = o.defocus === undefined ? undefined : readDefocus(o.defocus, 0);
    microscope = resolveMicroscope(typed, defocus?.microscope ?? {});
    hasCtf = defocus !== undefined;
    if (defocus !== undefined) {
      const mean = defocus.perTilt.reduce((a, b) => a + b, 0) / defocus.perTilt.length;
      options.ctf = { ctf: { ...microscope.microscope, defocus: mean, phaseShift: phaseShift ?? 0 }, flipPhase, tiltAxis };
    }
  }
  if (!hasCtf && (flipPhase || phaseShift !== undefined)) {
    const flag = flipPhase ? SEARCH_FLAGS.phaseFlip : SEARCH_FLAGS.phaseShift;
    throw invalidOption(`${flag}/--defocus`, `a defocus with ${flag} (--defocus, or per-tilt defocus in --tilt-angles)`, 'no defocus');
  }
  if (o.lowpass !== undefined || o.highpass !== undefined) options.bandPass = { lowpassAngstrom: o.lowpass, highpassAngstrom: o.highpass };
  return { options, microscope, tiltRange, tomoName };
}

/** The entries of `o` that are set (a file that does not state a value must not hide another file's). */
function defined(o: Partial<Microscope>): Partial<Microscope> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && Number.isFinite(v))) as Partial<Microscope>;
}
