import { invalidOption } from '@tme/formats';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/** The microscope constants every image of a tilt series shares. */
export interface Microscope {
  /** Acceleration voltage (kV). */
  voltage: number;
  /** Spherical aberration (mm). */
  sphericalAberration: number;
  /** Amplitude contrast (fraction, 0 ≤ A < 1). */
  amplitudeContrast: number;
}

/**
 * tme's one set of microscope defaults (a 300 kV instrument, Cs 2.7 mm, 7 % amplitude contrast for ice), used by
 * the CTF, the search flags and the RELION optics tables wherever neither a flag nor a metadata file gives a value.
 */
export const DEFAULT_MICROSCOPE: Readonly<Microscope> = Object.freeze({ voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.07 });

/** Where a resolved microscope value came from. */
export type MicroscopeSource = 'flag' | 'file' | 'default';

export interface ResolvedMicroscope {
  microscope: Microscope;
  source: Record<keyof Microscope, MicroscopeSource>;
}

/**
 * The one precedence rule for microscope values: a value the user typed wins over a metadata file (mdoc, Warp XML,
 * RELION STAR, CTFFIND header), and the file wins over DEFAULT_MICROSCOPE.
 */
export function resolveMicroscope(typed: Partial<Microscope>, file: Partial<Microscope> = {}): ResolvedMicroscope {
  const microscope = { ...DEFAULT_MICROSCOPE };
  const source: Record<keyof Microscope, MicroscopeSource> = { voltage: 'default', sphericalAberration: 'default', amplitudeContrast: 'default' };
  for (const key of ['voltage', 'sphericalAberration', 'amplitudeContrast'] as const) {
    const t = typed[key];
    const f = file[key];
    if (t !== undefined) { microscope[key] = t; source[key] = 'flag'; } else if (f !== undefined && Number.isFinite(f)) { microscope[key] = f; source[key] = 'file'; }
  }
  return { microscope, source };
}

/** Microscope and defocus of one image. CTFFIND4 conventions (Rohou & Grigorieff 2015). */
export interface CtfParameters extends Partial<Microscope> {
  /** Defocus (Å), positive = underfocus. For astigmatism, the defocus along `astigmatismAngle` (CTFFIND4 defocus 1). */
  defocus: number;
  /** Second defocus (Å), perpendicular to `astigmatismAngle` (CTFFIND4 defocus 2). Default: `defocus` (no astigmatism). */
  defocus2?: number;
  /** Azimuth (degrees) of `defocus`, from the image x axis towards y. Default 0. */
  astigmatismAngle?: number;
  /** Additional phase shift (degrees), e.g. from a phase plate. Default 0. */
  phaseShift?: number;
}

/** Relativistic electron wavelength (Å) at `voltageKv`: λ = h / √(2·m₀·e·V·(1 + e·V/(2·m₀·c²))). */
export function electronWavelength(voltageKv: number): number {
  const h = 6.62607015e-34;
  const m0 = 9.1093837015e-31;
  const e = 1.602176634e-19;
  const c = 299792458;
  const v = voltageKv * 1e3;
  return (h / Math.sqrt(2 * m0 * e * v * (1 + (e * v) / (2 * m0 * c * c)))) * 1e10;
}

/** Resolved numbers for fast evaluation (all lengths in Å). */
export interface CtfModel {
  lambda: number;
  cs: number;
  defocus1: number;
  defocus2: number;
  astigmatismRad: number;
  /** φ + arcsin(A): the constant phase term. */
  phase0: number;
}

export function ctfModel(p: CtfParameters): CtfModel {
  const voltage = p.voltage ?? DEFAULT_MICROSCOPE.voltage;
  const csMm = p.sphericalAberration ?? DEFAULT_MICROSCOPE.sphericalAberration;
  const a = p.amplitudeContrast ?? DEFAULT_MICROSCOPE.amplitudeContrast;
  if (!(Number.isFinite(p.defocus))) throw invalidOption('defocus', 'a finite defocus in Å', p.defocus);
  if (!(voltage > 0)) throw invalidOption('voltage', 'a voltage > 0 kV', voltage);
  if (!(csMm >= 0)) throw invalidOption('sphericalAberration', 'a value ≥ 0 mm', csMm);
  if (!(a >= 0 && a < 1)) throw invalidOption('amplitudeContrast', 'a fraction in [0, 1)', a);
  return {
    lambda: electronWavelength(voltage),
    cs: csMm * 1e7,
    defocus1: p.defocus,
    defocus2: p.defocus2 ?? p.defocus,
    astigmatismRad: ((p.astigmatismAngle ?? 0) * Math.PI) / 180,
    phase0: ((p.phaseShift ?? 0) * Math.PI) / 180 + Math.asin(a),
  };
}

/**
 * Phase χ at the 2D image frequency (kx, ky) (1/Å), CTFFIND4 form:
 * χ = π·λ·k²·(Δf(θ) − ½·Cs·λ²·k²) + φ + arcsin(A), Δf(θ) = ½·(Δf1 + Δf2 + (Δf1 − Δf2)·cos 2(θ − θ_ast)).
 * The CTF is then −sin χ: negative at low frequency for underfocus (dark protein in the image).
 */
export function ctfPhase(m: CtfModel, kx: number, ky: number, defocusOffset = 0): number {
  const k2 = kx * kx + ky * ky;
  let df = m.defocus1;
  if (m.defocus1 !== m.defocus2 && k2 > 0) {
    const theta = Math.atan2(ky, kx);
    df = 0.5 * (m.defocus1 + m.defocus2 + (m.defocus1 - m.defocus2) * Math.cos(2 * (theta - m.astigmatismRad)));
  }
  df += defocusOffset;
  return Math.PI * m.lambda * k2 * (df - 0.5 * m.cs * m.lambda * m.lambda * k2) + m.phase0;
}

/** CTF value −sin χ at (kx, ky) (1/Å); `flipPhase` gives |CTF| (for phase-flipped tomograms). */
export function ctfValue(m: CtfModel, kx: number, ky: number, flipPhase: boolean, defocusOffset = 0): number {
  const v = -Math.sin(ctfPhase(m, kx, ky, defocusOffset));
  return flipPhase ? Math.abs(v) : v;
}

export interface CtfFilterOptions {
  ctf: CtfParameters;
  /** |CTF| (phase-flipped tomogram) instead of the signed CTF −sin χ. Default true. */
  flipPhase?: boolean;
  /** Tilt axis of the series ('y' default): sets which axis is the image's tilt axis for astigmatism. */
  tiltAxis?: 'y' | 'x';
}
