import { TmeError } from '@tme/formats';
import { resolveMicroscope, type CtfParameters, type Microscope } from '../ctf';
import type { Tilt } from '../wedge';
import type { MdocFile } from './mdoc';
import { imodDefocusPerView, type ImodDefocusFile } from './imod-defocus';
import type { CtffindResult } from './ctffind';
import type { RelionTilt, RelionTomogram } from './relion';
import type { WarpTiltSeries } from './warp-xml';

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
  /** Microscope values the file gives (the CTF falls back to DEFAULT_MICROSCOPE for the rest). */
  microscope?: Partial<Microscope>;
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
    const angle = meta.angles[i] as number;
    // Checked here, where the tilt is known, not later as a wedge's range (which names no file or tilt).
    if (!(Math.abs(angle) <= 90)) throw new TmeError('ERR_TME_FORMAT', `tilt ${i + 1}: angle ${angle}° is outside −90…90°`);
    const t: Tilt = { angle };
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

/** The microscope values a SerialEM .mdoc gives (its global Voltage). */
export function mdocMicroscope(mdoc: MdocFile): Partial<Microscope> {
  return mdoc.voltage !== undefined ? { voltage: mdoc.voltage } : {};
}

/** The microscope values of a RELION 5 tomograms.star row. */
export function relionMicroscope(tomogram: RelionTomogram): Partial<Microscope> {
  return { voltage: tomogram.voltage, sphericalAberration: tomogram.sphericalAberration, amplitudeContrast: tomogram.amplitudeContrast };
}

/** The microscope values of a Warp XML's <CTF> parameters. */
export function warpMicroscope(xml: WarpTiltSeries): Partial<Microscope> {
  return { voltage: xml.ctf.voltage, sphericalAberration: xml.ctf.sphericalAberration, amplitudeContrast: xml.ctf.amplitudeContrast };
}

/** The microscope values of a CTFFIND4 header. */
export function ctffindMicroscope(result: CtffindResult): Partial<Microscope> {
  return { voltage: result.voltage, sphericalAberration: result.sphericalAberration, amplitudeContrast: result.amplitudeContrast };
}

/**
 * Tilts of a SerialEM .mdoc (stack order), with pre-exposure doses and defocus when written. `microscope`: values
 * that win over the file's (the user's flags; resolveMicroscope's rule).
 */
export function tiltsFromMdoc(mdoc: MdocFile, microscope: Partial<Microscope> = {}): Tilt[] {
  const hasDefocus = mdoc.tilts.every((t) => t.defocus !== undefined);
  return buildTilts({
    angles: mdoc.tilts.map((t) => t.tiltAngle),
    doses: mdoc.tilts.map((t) => t.preExposure),
    defocus: hasDefocus ? mdoc.tilts.map((t) => t.defocus as number) : undefined,
    microscope: resolveMicroscope(microscope, mdocMicroscope(mdoc)).microscope,
  });
}

/**
 * Tilts of a RELION 5 tilt series, with the microscope of its tomograms.star row (`microscope` wins over it):
 * pre-exposure doses, and per-tilt defocus U/V with its angle (astigmatism) when every tilt has them.
 */
export function tiltsFromRelion(tomogram: RelionTomogram, tilts: readonly RelionTilt[], microscope: Partial<Microscope> = {}): Tilt[] {
  const all = <K extends keyof RelionTilt>(k: K) => (tilts.every((t) => t[k] !== undefined) ? tilts.map((t) => t[k] as number) : undefined);
  return buildTilts({
    angles: tilts.map((t) => t.tiltAngle),
    doses: all('preExposure'),
    defocus: all('defocusU'),
    defocus2: all('defocusV'),
    astigmatismAngle: all('defocusAngle'),
    microscope: resolveMicroscope(microscope, relionMicroscope(tomogram)).microscope,
  });
}

/**
 * Tilts of a Warp/WarpTools XML (UseTilt respected; `microscope` wins over its <CTF> values). Warp's defocus delta
 * is half the difference: defocus1 = defocus + delta, defocus2 = defocus − delta. With AreAnglesInverted="True"
 * Warp's angles have the opposite sign to the tomogram's geometry, and Warp negates them itself: so does this.
 */
export function tiltsFromWarp(xml: WarpTiltSeries, microscope: Partial<Microscope> = {}): Tilt[] {
  const d = xml.defocus;
  const delta = xml.defocusDelta;
  return buildTilts({
    angles: xml.areAnglesInverted ? xml.angles.map((a) => 0 - a) : xml.angles, // 0 − a: no −0
    doses: xml.doses,
    defocus: d && delta ? d.map((v, i) => v + (delta[i] as number)) : d,
    defocus2: d && delta ? d.map((v, i) => v - (delta[i] as number)) : undefined,
    astigmatismAngle: d && delta ? xml.defocusAngle : undefined,
    microscope: resolveMicroscope(microscope, warpMicroscope(xml)).microscope,
    use: xml.useTilt,
  });
}

/**
 * Tilts from IMOD-style inputs: angles (.tlt/.rawtlt), optional doses, and per-view defocus from an IMOD .defocus
 * file or a CTFFIND4 result (one row per view, in the same order as the angles). `microscope` wins over a CTFFIND4
 * header's values.
 */
export function tiltsFromImod(
  angles: readonly number[],
  options: { doses?: readonly number[]; defocus?: ImodDefocusFile | CtffindResult; microscope?: Partial<Microscope> } = {},
): Tilt[] {
  const d = options.defocus;
  let per: { defocus1: number; defocus2: number; astigmatismAngle: number; phaseShift: number }[] | undefined;
  let file: Partial<Microscope> = {};
  if (d && 'entries' in d) per = imodDefocusPerView(d, angles.length);
  else if (d) {
    if (d.rows.length !== angles.length) throw new TmeError('ERR_TME_MISMATCH', `${d.rows.length} CTFFIND4 rows for ${angles.length} tilt angles`);
    per = d.rows;
    file = ctffindMicroscope(d);
  }
  const microscope = resolveMicroscope(options.microscope ?? {}, file).microscope;
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
