import { TmeError } from '@tme/formats';
import type { ParseOptions } from './text';

/** What a Warp/WarpTools tilt-series XML says per tilt, in tme units. */
export interface WarpTiltSeries {
  /** Tilt angles (degrees) as written in <Angles> (Warp's sign; see AreAnglesInverted). */
  angles: number[];
  /** Accumulated dose per tilt (e⁻/Å²) from <Dose>, if present. */
  doses?: number[];
  /** <UseTilt> flags, if present. */
  useTilt?: boolean[];
  /** The AreAnglesInverted attribute of <TiltSeries>, if present. */
  areAnglesInverted?: boolean;
  /** Per-tilt defocus (Å, positive = underfocus) from the GridCTF nodes (µm in the file). */
  defocus?: number[];
  /** Per-tilt astigmatism: defocus difference (Å) and angle (degrees) from GridCTFDefocusDelta / GridCTFDefocusAngle. */
  defocusDelta?: number[];
  defocusAngle?: number[];
  /** <CTF> parameters: Voltage (kV), Cs (mm), Amplitude, PixelSize (Å), Defocus (Å). */
  ctf: { voltage?: number; sphericalAberration?: number; amplitudeContrast?: number; pixelSize?: number; defocus?: number };
}

/** Attributes of one start tag: name → value (entities &quot; &amp; &lt; &gt; &apos; decoded). */
function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([\w:.-]+)\s*=\s*("([^"]*)"|'([^']*)')/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(tag))) out[m[1] as string] = decode(m[3] ?? m[4] ?? '');
  return out;
}

function decode(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** Text content of the first <name>…</name> element, or undefined. */
function elementText(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}(\\s[^>]*)?>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? decode(m[2] as string) : undefined;
}

function numbers(text: string, what: string, file?: string): number[] {
  return text
    .split(/[\s,;]+/)
    .filter((t) => t.length > 0)
    .map((t) => {
      const v = Number(t);
      if (!Number.isFinite(v)) throw new TmeError('ERR_TME_FORMAT', `Warp XML <${what}>: "${t}" is not a number`, { file });
      return v;
    });
}

/** Node values of a <GridX> element, indexed by the node's Z (the tilt index). */
function gridByZ(xml: string, name: string, count: number): number[] | undefined {
  const body = elementText(xml, name);
  if (body === undefined) return undefined;
  const out: number[] = new Array(count).fill(NaN);
  const re = /<Node\b([^>]*)\/?>/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) {
    const a = attributes(m[1] as string);
    const z = Number(a.Z ?? '0');
    if (Number.isInteger(z) && z >= 0 && z < count && (a.X ?? '0') === '0' && (a.Y ?? '0') === '0') out[z] = Number(a.Value);
  }
  return out.some((v) => Number.isNaN(v)) ? undefined : out;
}

/** Warp/WarpTools tilt-series XML (TiltSeries element with Angles, Dose, UseTilt, CTF params and GridCTF nodes). */
export function parseWarpXml(text: string, options: ParseOptions = {}): WarpTiltSeries {
  const file = options.file;
  const anglesText = elementText(text, 'Angles');
  if (anglesText === undefined) throw new TmeError('ERR_TME_FORMAT', 'No <Angles> element (not a Warp tilt-series XML)', { file });
  const angles = numbers(anglesText, 'Angles', file);
  const out: WarpTiltSeries = { angles, ctf: {} };
  const root = /<TiltSeries\b([^>]*)>/.exec(text);
  if (root) {
    const inv = attributes(root[1] as string).AreAnglesInverted;
    if (inv !== undefined) out.areAnglesInverted = inv.toLowerCase() === 'true';
  }
  const dose = elementText(text, 'Dose');
  if (dose !== undefined) out.doses = numbers(dose, 'Dose', file);
  const use = elementText(text, 'UseTilt');
  if (use !== undefined) out.useTilt = use.split(/\s+/).filter(Boolean).map((t) => t.toLowerCase() === 'true');
  for (const [name, arr] of [['Dose', out.doses], ['UseTilt', out.useTilt]] as const) {
    if (arr && arr.length !== angles.length) throw new TmeError('ERR_TME_FORMAT', `Warp XML <${name}> has ${arr.length} values for ${angles.length} angles`, { file });
  }
  const ctf = elementText(text, 'CTF');
  if (ctf !== undefined) {
    const params: Record<string, number> = {};
    const re = /<Param\b([^>]*)\/?>/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(ctf))) {
      const a = attributes(m[1] as string);
      if (a.Name !== undefined && a.Value !== undefined) params[a.Name] = Number(a.Value);
    }
    if (params.Voltage !== undefined) out.ctf.voltage = params.Voltage;
    if (params.Cs !== undefined) out.ctf.sphericalAberration = params.Cs;
    if (params.Amplitude !== undefined) out.ctf.amplitudeContrast = params.Amplitude;
    if (params.PixelSize !== undefined) out.ctf.pixelSize = params.PixelSize;
    if (params.Defocus !== undefined) out.ctf.defocus = params.Defocus * 1e4;
  }
  const grid = gridByZ(text, 'GridCTF', angles.length);
  if (grid) out.defocus = grid.map((um) => um * 1e4);
  const delta = gridByZ(text, 'GridCTFDefocusDelta', angles.length);
  if (delta) out.defocusDelta = delta.map((um) => um * 1e4);
  const angle = gridByZ(text, 'GridCTFDefocusAngle', angles.length);
  if (angle) out.defocusAngle = angle;
  return out;
}
