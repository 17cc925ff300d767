import { TmeError } from '@tme/formats';
import type { CtfParameters } from '../ctf';
import type { Tilt } from '../wedge';
import type { MdocFile } from './mdoc';
import { imodDefocusPerView, type ImodDefocusFile } from './imod-defocus';
import type { CtffindResult } from './ctffind';
import type { RelionTilt, RelionTomogram } from './relion';
import type { WarpTiltSeries } from './warp-xml';

/** Microscope constants shared by all tilts. */
export interface Microscope {
  /** kV. Default 300. */
  voltage?: number;
  /** mm. Default 2.7. */
  sphericalAberration?: number;
  /** Default 0.07. */
  amplitudeContrast?: number;
}

/** Per-tilt arrays (same order as `angles`) → the `Tilt[]` the filters take. */
export interface TiltSeriesMetadata {
  /** Degrees. */
  angles: readonly number[];
  /** Accumulated exposure before each tilt (e⁻/Å²). */
  doses?: readonly number[];
  /** Defocus per tilt (Å, positive = underfocus). Without it the tilts carry no CTF. */
  defocus?: readonly number[];
  /** Second defocus per tilt (Å) and azimuth (degrees) for astigmatism. */
  defocus2?: readonly number[];
  astigmatismAngle?: readonly number[];
  /** Degrees. */
  phaseShift?: readonly number[];
  microscope?: Microscope;
  /** Drop tilts whose flag is false (e.g. Warp's UseTilt). */
  use?: readonly boolean[];
}

export function buildTilts(meta: TiltSeriesMetadata): Tilt[] {
  const n = meta.angles.length;
  for (const [name, arr] of Object.entries({ doses: meta.doses, defocus: meta.defocus, defocus2: meta.defocus2, astigmatismAngle: meta.astigmatismAngle, phaseShift: meta.phaseShift, use: meta.use })) {
    if (arr && arr.length !== n) throw new TmeError('ERR_TME_MISMATCH', `${arr.length} ${name} values for ${n} tilt angles`);
  }
  const tilts: Tilt[] = [];
  for (let i = 0; i < n; i++) {
    if (meta.use && !meta.use[i]) continue;
    const t: Tilt = { angle: meta.angles[i] as number };
    if (meta.doses) t.dose = meta.doses[i] as number;
    if (meta.defocus) {
      const ctf: CtfParameters = { defocus: meta.defocus[i] as number, ...meta.microscope };
      if (meta.defocus2) ctf.defocus2 = meta.defocus2[i] as number;
      if (meta.astigmatismAngle) ctf.astigmatismAngle = meta.astigmatismAngle[i] as number;
      if (meta.phaseShift) ctf.phaseShift = meta.phaseShift[i] as number;
      t.ctf = ctf;
    }
    tilts.push(t);
  }
  return tilts;
}

/** Tilts of a SerialEM .mdoc (stack order), with pre-exposure doses and defocus when written. */
export function tiltsFromMdoc(mdoc: MdocFile, microscope: Microscope = {}): Tilt[] {
  const hasDefocus = mdoc.tilts.every((t) => t.defocus !== undefined);
  return buildTilts({
    angles: mdoc.tilts.map((t) => t.tiltAngle),
    doses: mdoc.tilts.map((t) => t.preExposure),
    defocus: hasDefocus ? mdoc.tilts.map((t) => t.defocus as number) : undefined,
    microscope: { voltage: mdoc.voltage, ...microscope },
  });
}

/** Tilts of a RELION 5 tilt series, with the microscope of its tomograms.star row. */
export function tiltsFromRelion(tomogram: RelionTomogram, tilts: readonly RelionTilt[]): Tilt[] {
  const all = <K extends keyof RelionTilt>(k: K) => (tilts.every((t) => t[k] !== undefined) ? tilts.map((t) => t[k] as number) : undefined);
  return buildTilts({
    angles: tilts.map((t) => t.tiltAngle),
    doses: all('preExposure'),
    defocus: all('defocusU'),
    defocus2: all('defocusV'),
    astigmatismAngle: all('defocusAngle'),
    microscope: { voltage: tomogram.voltage, sphericalAberration: tomogram.sphericalAberration, amplitudeContrast: tomogram.amplitudeContrast },
  });
}

/**
 * Tilts of a Warp/WarpTools XML (UseTilt respected). Warp's defocus delta is half the difference:
 * defocus1 = defocus + delta, defocus2 = defocus − delta.
 */
export function tiltsFromWarp(xml: WarpTiltSeries): Tilt[] {
  const d = xml.defocus;
  const delta = xml.defocusDelta;
  return buildTilts({
    angles: xml.angles,
    doses: xml.doses,
    defocus: d && delta ? d.map((v, i) => v + (delta[i] as number)) : d,
    defocus2: d && delta ? d.map((v, i) => v - (delta[i] as number)) : undefined,
    astigmatismAngle: d && delta ? xml.defocusAngle : undefined,
    microscope: { voltage: xml.ctf.voltage, sphericalAberration: xml.ctf.sphericalAberration, amplitudeContrast: xml.ctf.amplitudeContrast },
    use: xml.useTilt,
  });
}

/**
 * Tilts from IMOD-style inputs: angles (.tlt/.rawtlt), optional doses, and per-view defocus from an IMOD .defocus
 * file or a CTFFIND4 result (one row per view, in the same order as the angles).
 */
export function tiltsFromImod(
  angles: readonly number[],
  options: { doses?: readonly number[]; defocus?: ImodDefocusFile | CtffindResult; microscope?: Microscope } = {},
): Tilt[] {
  const d = options.defocus;
  let per: { defocus1: number; defocus2: number; astigmatismAngle: number; phaseShift: number }[] | undefined;
  let microscope = options.microscope;
  if (d && 'entries' in d) per = imodDefocusPerView(d, angles.length);
  else if (d) {
    if (d.rows.length !== angles.length) throw new TmeError('ERR_TME_MISMATCH', `${d.rows.length} CTFFIND4 rows for ${angles.length} tilt angles`);
    per = d.rows;
    microscope = { voltage: d.voltage, sphericalAberration: d.sphericalAberration, amplitudeContrast: d.amplitudeContrast, ...options.microscope };
  }
  return buildTilts({
    angles,
    doses: options.doses,
    defocus: per?.map((e) => e.defocus1),
    defocus2: per?.map((e) => e.defocus2),
    astigmatismAngle: per?.map((e) => e.astigmatismAngle),
    phaseShift: per?.map((e) => e.phaseShift),
    microscope,
  });
}
