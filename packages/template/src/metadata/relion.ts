import { parseStar, starLoopWith, starColumn, starNumbers, TmeError, type StarLoop } from '@tme/formats';
import type { ParseOptions } from './text';

/** One row of a RELION 5 tomograms.star (data_global). */
export interface RelionTomogram {
  name: string;
  /** kV */
  voltage?: number;
  /** mm */
  sphericalAberration?: number;
  amplitudeContrast?: number;
  /** Tilt-series pixel size (Å). */
  tiltSeriesPixelSize?: number;
  /** rlnTomoHand (±1): the defocus handedness. */
  hand?: number;
  binning?: number;
  /** Unbinned size in pixels (z, y, x). */
  size?: [number, number, number];
  tiltSeriesStarFile?: string;
  reconstructedTomogram?: string;
}

/** One tilt of a RELION 5 per-tilt-series STAR. */
export interface RelionTilt {
  /** rlnTomoNominalStageTiltAngle (degrees). */
  tiltAngle: number;
  /** rlnTomoYTilt (degrees, refined), when present. */
  yTilt?: number;
  /** rlnMicrographPreExposure (e⁻/Å² before this tilt). */
  preExposure?: number;
  /** Å, positive = underfocus. */
  defocusU?: number;
  defocusV?: number;
  /** Degrees. */
  defocusAngle?: number;
}

function optionalNumbers(loop: StarLoop, label: string, file?: string): Float64Array | undefined {
  return loop.labels.includes(label) ? starNumbers(loop, label, file) : undefined;
}

/** RELION 5 tomograms.star → one entry per tomogram (data_global loop). */
export function parseRelionTomograms(text: string, options: ParseOptions = {}): RelionTomogram[] {
  const star = parseStar(text, options.file);
  const loop = star.blocks.map((b) => starLoopWith(b, 'rlnTomoName')).find((l) => l !== undefined);
  if (!loop) throw new TmeError('ERR_TME_FORMAT', 'No loop with _rlnTomoName (not a RELION 5 tomograms.star)', { file: options.file });
  const names = starColumn(loop, 'rlnTomoName', options.file);
  const col = (label: string) => optionalNumbers(loop, label, options.file);
  const str = (label: string) => (loop.labels.includes(label) ? starColumn(loop, label, options.file) : undefined);
  const voltage = col('rlnVoltage');
  const cs = col('rlnSphericalAberration');
  const q0 = col('rlnAmplitudeContrast');
  const px = col('rlnTomoTiltSeriesPixelSize');
  const hand = col('rlnTomoHand');
  const bin = col('rlnTomoTomogramBinning');
  const sx = col('rlnTomoSizeX');
  const sy = col('rlnTomoSizeY');
  const sz = col('rlnTomoSizeZ');
  const ts = str('rlnTomoTiltSeriesStarFile');
  const rec = str('rlnTomoReconstructedTomogram');
  return names.map((name, i) => {
    const t: RelionTomogram = { name };
    if (voltage) t.voltage = voltage[i];
    if (cs) t.sphericalAberration = cs[i];
    if (q0) t.amplitudeContrast = q0[i];
    if (px) t.tiltSeriesPixelSize = px[i];
    if (hand) t.hand = hand[i];
    if (bin) t.binning = bin[i];
    if (sx && sy && sz) t.size = [sz[i] as number, sy[i] as number, sx[i] as number];
    if (ts) t.tiltSeriesStarFile = ts[i];
    if (rec) t.reconstructedTomogram = rec[i];
    return t;
  });
}

/** RELION 5 per-tilt-series STAR → tilts in file order. */
export function parseRelionTiltSeries(text: string, options: ParseOptions = {}): RelionTilt[] {
  const star = parseStar(text, options.file);
  const loop = star.blocks.map((b) => starLoopWith(b, 'rlnTomoNominalStageTiltAngle')).find((l) => l !== undefined);
  if (!loop) throw new TmeError('ERR_TME_FORMAT', 'No loop with _rlnTomoNominalStageTiltAngle (not a RELION 5 tilt-series STAR)', { file: options.file });
  const angles = starNumbers(loop, 'rlnTomoNominalStageTiltAngle', options.file);
  const y = optionalNumbers(loop, 'rlnTomoYTilt', options.file);
  const pre = optionalNumbers(loop, 'rlnMicrographPreExposure', options.file);
  const du = optionalNumbers(loop, 'rlnDefocusU', options.file);
  const dv = optionalNumbers(loop, 'rlnDefocusV', options.file);
  const da = optionalNumbers(loop, 'rlnDefocusAngle', options.file);
  return Array.from(angles, (tiltAngle, i) => {
    const t: RelionTilt = { tiltAngle };
    if (y) t.yTilt = y[i];
    if (pre) t.preExposure = pre[i];
    if (du) t.defocusU = du[i];
    if (dv) t.defocusV = dv[i];
    if (da) t.defocusAngle = da[i];
    return t;
  });
}

function stemOf(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? file;
  return base.replace(/\.[^.]*$/, '');
}

/** `name` as a whole token of `text`: not preceded or followed by a letter or digit (TS_1 is not in TS_10). */
function containsToken(text: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^A-Za-z0-9])${escaped}($|[^A-Za-z0-9])`).test(text);
}

/**
 * The row of a tomograms.star that a search is about. With `name`: the row of that rlnTomoName. Else with
 * `target` (the tomogram file matched): the row whose rlnTomoReconstructedTomogram has the target's file name,
 * else whose name is the target's stem, else whose name is a whole token of the stem (TS_01 in rec_TS_01_bin4).
 * A file with one row needs neither. Refuses, listing the names, when no single row is found.
 */
export function selectRelionTomogram(
  tomograms: readonly RelionTomogram[], by: { name?: string; target?: string }, options: ParseOptions = {},
): RelionTomogram {
  const names = tomograms.map((t) => t.name).join(', ');
  if (by.name !== undefined) {
    const row = tomograms.find((t) => t.name === by.name);
    if (!row) throw new TmeError('ERR_TME_MISMATCH', `no tomogram named ${by.name} (--tomo-name); it lists ${names}`, { file: options.file });
    return row;
  }
  if (tomograms.length === 1) return tomograms[0] as RelionTomogram;
  if (by.target !== undefined) {
    const base = by.target.split(/[\\/]/).pop() ?? by.target;
    const stem = stemOf(by.target);
    const rules: Array<(t: RelionTomogram) => boolean> = [
      (t) => t.reconstructedTomogram !== undefined && (t.reconstructedTomogram.split(/[\\/]/).pop() ?? '') === base,
      (t) => t.name === stem,
      (t) => containsToken(stem, t.name),
    ];
    for (const rule of rules) {
      const hits = tomograms.filter(rule);
      if (hits.length === 1) return hits[0] as RelionTomogram;
      if (hits.length > 1) break;
    }
  }
  throw new TmeError(
    'ERR_TME_MISMATCH',
    `lists ${tomograms.length} tomograms (${names}) and none is ${by.target === undefined ? 'chosen' : `the target ${by.target.split(/[\\/]/).pop()}`}: choose one with --tomo-name`,
    { file: options.file },
  );
}
