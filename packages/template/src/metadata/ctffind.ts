import { TmeError } from '@tme/formats';
import { dataLines, toNumber, type ParseOptions } from './text';

export interface CtffindRow {
  micrograph: number;
  /** Å, positive = underfocus. */
  defocus1: number;
  defocus2: number;
  /** Degrees. */
  astigmatismAngle: number;
  /** Degrees (the file holds radians). */
  phaseShift: number;
  crossCorrelation: number;
  /** Å up to which Thon rings were fit. */
  fitResolution: number;
}

export interface CtffindResult {
  pixelSize?: number;
  voltage?: number;
  sphericalAberration?: number;
  amplitudeContrast?: number;
  rows: CtffindRow[];
}

/**
 * CTFFIND4 diagnostic .txt: "# Pixel size: 1.350 Angstroms ; acceleration voltage: 300.0 keV ; spherical
 * aberration: 2.70 mm ; amplitude contrast: 0.07" header, then per micrograph (tilt): number, defocus 1 (Å),
 * defocus 2 (Å), azimuth (deg), phase shift (rad), cross-correlation, fit resolution (Å).
 */
export function parseCtffind(text: string, options: ParseOptions = {}): CtffindResult {
  const out: CtffindResult = { rows: [] };
  const header = text.split(/\r?\n/).filter((l) => l.trim().startsWith('#')).join('\n');
  const grab = (re: RegExp) => {
    const m = re.exec(header);
    return m ? Number(m[1]) : undefined;
  };
  out.pixelSize = grab(/Pixel size:\s*([-\d.eE+]+)/i);
  out.voltage = grab(/acceleration voltage:\s*([-\d.eE+]+)/i);
  out.sphericalAberration = grab(/spherical aberration:\s*([-\d.eE+]+)/i);
  out.amplitudeContrast = grab(/amplitude contrast:\s*([-\d.eE+]+)/i);
  dataLines(text).forEach((l, i) => {
    const t = l.split(/\s+/);
    const n = (k: number, what: string) => toNumber(t[k], what, options.file, i + 1);
    out.rows.push({
      micrograph: n(0, 'micrograph number'),
      defocus1: n(1, 'defocus 1'),
      defocus2: n(2, 'defocus 2'),
      astigmatismAngle: n(3, 'astigmatism azimuth'),
      phaseShift: (n(4, 'phase shift') * 180) / Math.PI,
      crossCorrelation: n(5, 'cross correlation'),
      fitResolution: n(6, 'fit resolution'),
    });
  });
  if (out.rows.length === 0) throw new TmeError('ERR_TME_FORMAT', 'No CTFFIND4 result rows found', { file: options.file });
  return out;
}
