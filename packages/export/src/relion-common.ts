import { invalidOption } from '@tme/formats';
import { DEFAULT_MICROSCOPE } from '@tme/template';

/** Microscope values RELION's optics table needs (RELION drops an optics table without voltage or Cs). */
export interface OpticsOptions {
  /** Acceleration voltage, kV. Default DEFAULT_MICROSCOPE (300). */
  voltage?: number;
  /** Spherical aberration, mm. Default DEFAULT_MICROSCOPE (2.7). */
  sphericalAberration?: number;
  /** Amplitude contrast, fraction 0–1. Default DEFAULT_MICROSCOPE (0.07). */
  amplitudeContrast?: number;
  /** Optics group name. Default 'opticsGroup1'. */
  opticsGroupName?: string;
}

export interface ResolvedOptics { voltage: number; sphericalAberration: number; amplitudeContrast: number; opticsGroupName: string }

export function resolveOptics(o: OpticsOptions): ResolvedOptics {
  const voltage = o.voltage ?? DEFAULT_MICROSCOPE.voltage;
  const sphericalAberration = o.sphericalAberration ?? DEFAULT_MICROSCOPE.sphericalAberration;
  const amplitudeContrast = o.amplitudeContrast ?? DEFAULT_MICROSCOPE.amplitudeContrast;
  if (!(Number.isFinite(voltage) && voltage > 0)) throw invalidOption('voltage', 'number > 0 (kV)', voltage);
  if (!(Number.isFinite(sphericalAberration) && sphericalAberration >= 0)) throw invalidOption('sphericalAberration', 'number ≥ 0 (mm)', sphericalAberration);
  if (!(Number.isFinite(amplitudeContrast) && amplitudeContrast >= 0 && amplitudeContrast <= 1)) {
    throw invalidOption('amplitudeContrast', 'number in [0, 1]', amplitudeContrast);
  }
  const opticsGroupName = o.opticsGroupName ?? 'opticsGroup1';
  if (!/^\S+$/.test(opticsGroupName)) throw invalidOption('opticsGroupName', 'a name without spaces', opticsGroupName);
  return { voltage, sphericalAberration, amplitudeContrast, opticsGroupName };
}
