import { TmeError } from '@tme/formats';
import type { ParseOptions } from './text';

/** One [ZValue = n] section of a SerialEM .mdoc, converted to tme units. */
export interface MdocTilt {
  zValue: number;
  tiltAngle: number;
  /** Exposure of this image (e⁻/Å²). 0 if absent. */
  exposureDose: number;
  /**
   * Exposure before this image (e⁻/Å²): `PriorRecordDose` when present, else the sum of the exposures of the
   * images taken earlier — by `DateTime`, or by ZValue when there are no times.
   */
  preExposure: number;
  /** Defocus (Å, positive = underfocus; the file's `Defocus` is in µm, negative = underfocus). */
  defocus?: number;
  /** `DateTime` as written. */
  dateTime?: string;
}

export interface MdocFile {
  /** Global key = value pairs before the first section (PixelSpacing, Voltage, ImageFile ...). */
  global: Record<string, string>;
  pixelSpacing?: number;
  voltage?: number;
  /** Tilts sorted by ZValue (the order of the stack). */
  tilts: MdocTilt[];
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

/** SerialEM "25-Nov-26  06:57:35" (two-digit year) or "25-Nov-2026 06:57:35" → sortable milliseconds. */
function parseDateTime(s: string): number | undefined {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{2,4})\s+(\d{1,2}):(\d{2}):(\d{2})/.exec(s.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf((m[2] as string).toUpperCase());
  if (month < 0) return undefined;
  let year = Number(m[3]);
  if (year < 100) year += 2000;
  return Date.UTC(year, month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** SerialEM .mdoc text → global values and the per-tilt [ZValue] sections. */
export function parseMdoc(text: string, options: ParseOptions = {}): MdocFile {
  const global: Record<string, string> = {};
  const sections: { z: number; values: Record<string, string> }[] = [];
  let current: Record<string, string> | null = null;
  let lineNo = 0;
  for (const raw of text.split(/\r?\n/)) {
    lineNo++;
    const line = raw.trim();
    if (!line) continue;
    const sec = /^\[\s*(\w+)\s*=\s*([^\]]*)\]$/.exec(line);
    if (sec) {
      if (sec[1] === 'ZValue') {
        const z = Number(sec[2]);
        if (!Number.isInteger(z)) throw new TmeError('ERR_TME_FORMAT', `Line ${lineNo}: bad ZValue "${sec[2]}"`, { file: options.file });
        current = {};
        sections.push({ z, values: current });
      } else current = null; // [T = ...] title or other blocks: not per-tilt data
      continue;
    }
    const kv = /^([A-Za-z][\w]*)\s*=\s*(.*)$/.exec(line);
    if (!kv) continue;
    const target = current ?? (sections.length === 0 ? global : null);
    if (target) target[kv[1] as string] = (kv[2] as string).trim();
  }
  if (sections.length === 0) throw new TmeError('ERR_TME_FORMAT', 'No [ZValue = n] sections in mdoc', { file: options.file });
  const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v.split(/\s+/)[0]));
  const tilts: MdocTilt[] = sections.map(({ z, values }) => {
    const tiltAngle = num(values.TiltAngle);
    if (tiltAngle === undefined || !Number.isFinite(tiltAngle)) throw new TmeError('ERR_TME_FORMAT', `ZValue ${z} has no TiltAngle`, { file: options.file });
    const defocusUm = num(values.Defocus);
    const t: MdocTilt = { zValue: z, tiltAngle, exposureDose: num(values.ExposureDose) ?? 0, preExposure: 0 };
    if (defocusUm !== undefined && Number.isFinite(defocusUm)) t.defocus = -defocusUm * 1e4;
    if (values.DateTime !== undefined) t.dateTime = values.DateTime;
    return t;
  });
  tilts.sort((a, b) => a.zValue - b.zValue);
  const prior = sections.every((s) => s.values.PriorRecordDose !== undefined);
  if (prior) {
    const byZ = new Map(sections.map((s) => [s.z, num(s.values.PriorRecordDose) ?? 0]));
    for (const t of tilts) t.preExposure = byZ.get(t.zValue) ?? 0;
  } else {
    const times = tilts.map((t) => (t.dateTime ? parseDateTime(t.dateTime) : undefined));
    const order = tilts.map((_, i) => i);
    if (times.every((t) => t !== undefined)) order.sort((a, b) => (times[a] as number) - (times[b] as number) || a - b);
    let acc = 0;
    for (const i of order) {
      const t = tilts[i] as MdocTilt;
      t.preExposure = acc;
      acc += t.exposureDose;
    }
  }
  const out: MdocFile = { global, tilts };
  const px = num(global.PixelSpacing);
  if (px !== undefined) out.pixelSpacing = px;
  const kv = num(global.Voltage);
  if (kv !== undefined) out.voltage = kv;
  return out;
}
