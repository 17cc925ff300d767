import { XMLParser } from 'fast-xml-parser';
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

// Warp's files are parsed by fast-xml-parser (linear time: hand-written regular expressions were quadratic on
// unclosed tags and long attribute names). Attribute values and text stay strings; tme converts what it reads.
const parser = new XMLParser({
  ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false, parseAttributeValue: false, trimValues: true,
  isArray: (name) => name === 'Param' || name === 'Node',
});

type XmlNode = Record<string, unknown>;

/** The first element named `name`, depth first in document order (Warp nests nothing tme reads twice). */
function findElement(node: unknown, name: string, depth = 0): unknown {
  if (node === null || typeof node !== 'object' || depth > 64) return undefined;
  const entries = Array.isArray(node) ? node.map((v, i) => [String(i), v] as const) : Object.entries(node as XmlNode);
  for (const [key, value] of entries) if (key === name) return Array.isArray(value) ? value[0] : value;
  for (const [, value] of entries) {
    const found = findElement(value, name, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** An element's text: itself when it has no attributes, else its #text. */
function textOf(element: unknown): string | undefined {
  if (element === undefined) return undefined;
  if (typeof element === 'string') return element;
  if (element !== null && typeof element === 'object') {
    const t = (element as XmlNode)['#text'];
    return typeof t === 'string' ? t : typeof t === 'number' ? String(t) : '';
  }
  return String(element);
}

/** The child elements `name` of an element (Param, Node), as attribute records. */
function children(element: unknown, name: string): Array<Record<string, string>> {
  if (element === null || typeof element !== 'object') return [];
  const list = (element as XmlNode)[name];
  return Array.isArray(list) ? list.filter((c): c is Record<string, string> => c !== null && typeof c === 'object') : [];
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
function gridByZ(doc: unknown, name: string, count: number): number[] | undefined {
  const grid = findElement(doc, name);
  if (grid === undefined) return undefined;
  const out: number[] = new Array(count).fill(NaN);
  for (const a of children(grid, 'Node')) {
    const z = Number(a['Z'] ?? '0');
    if (Number.isInteger(z) && z >= 0 && z < count && (a['X'] ?? '0') === '0' && (a['Y'] ?? '0') === '0') out[z] = Number(a['Value']);
  }
  return out.some((v) => Number.isNaN(v)) ? undefined : out;
}

/** Warp/WarpTools tilt-series XML (TiltSeries element with Angles, Dose, UseTilt, CTF params and GridCTF nodes). */
export function parseWarpXml(text: string, options: ParseOptions = {}): WarpTiltSeries {
  const file = options.file;
  let doc: unknown;
  try {
    doc = parser.parse(text);
  } catch (err) {
    throw new TmeError('ERR_TME_FORMAT', `not well-formed XML (${(err instanceof Error ? err.message : String(err)).split('\n')[0]})`, { file });
  }
  const anglesText = textOf(findElement(doc, 'Angles'));
  if (anglesText === undefined) throw new TmeError('ERR_TME_FORMAT', 'No <Angles> element (not a Warp tilt-series XML)', { file });
  const angles = numbers(anglesText, 'Angles', file);
  const out: WarpTiltSeries = { angles, ctf: {} };
  const root = findElement(doc, 'TiltSeries');
  if (root !== null && typeof root === 'object') {
    const inv = (root as XmlNode)['AreAnglesInverted'];
    if (typeof inv === 'string') out.areAnglesInverted = inv.toLowerCase() === 'true';
  }
  const dose = textOf(findElement(doc, 'Dose'));
  if (dose !== undefined) out.doses = numbers(dose, 'Dose', file);
  const use = textOf(findElement(doc, 'UseTilt'));
  if (use !== undefined) out.useTilt = use.split(/\s+/).filter(Boolean).map((t) => t.toLowerCase() === 'true');
  for (const [name, arr] of [['Dose', out.doses], ['UseTilt', out.useTilt]] as const) {
    if (arr && arr.length !== angles.length) throw new TmeError('ERR_TME_FORMAT', `Warp XML <${name}> has ${arr.length} values for ${angles.length} angles`, { file });
  }
  const ctf = findElement(doc, 'CTF');
  if (ctf !== undefined) {
    const params: Record<string, number> = {};
    for (const a of children(ctf, 'Param')) if (a['Name'] !== undefined && a['Value'] !== undefined) params[a['Name']] = Number(a['Value']);
    if (params['Voltage'] !== undefined) out.ctf.voltage = params['Voltage'];
    if (params['Cs'] !== undefined) out.ctf.sphericalAberration = params['Cs'];
    if (params['Amplitude'] !== undefined) out.ctf.amplitudeContrast = params['Amplitude'];
    if (params['PixelSize'] !== undefined) out.ctf.pixelSize = params['PixelSize'];
    if (params['Defocus'] !== undefined) out.ctf.defocus = params['Defocus'] * 1e4;
  }
  const grid = gridByZ(doc, 'GridCTF', angles.length);
  if (grid) out.defocus = grid.map((um) => um * 1e4);
  const delta = gridByZ(doc, 'GridCTFDefocusDelta', angles.length);
  if (delta) out.defocusDelta = delta.map((um) => um * 1e4);
  const angle = gridByZ(doc, 'GridCTFDefocusAngle', angles.length);
  if (angle) out.defocusAngle = angle;
  return out;
}
