import { TmeError } from '@tme/formats';
import { dataLines, toNumber, type ParseOptions } from './text';

/** One line of an IMOD ctfplotter .defocus file, converted to Å and degrees. */
export interface ImodDefocusEntry {
  /** First and last view (1-based, as in IMOD) this estimate covers. */
  startView: number;
  endView: number;
  startAngle: number;
  endAngle: number;
  /** Defocus (Å, positive = underfocus); defocus1 = defocus2 without astigmatism. */
  defocus1: number;
  defocus2: number;
  /** Astigmatism azimuth (degrees). 0 without astigmatism. */
  astigmatismAngle: number;
  /** Phase shift (degrees; the file holds radians). 0 if absent. */
  phaseShift: number;
}

export interface ImodDefocusFile {
  version: 2 | 3;
  entries: ImodDefocusEntry[];
}

/**
 * IMOD ctfplotter .defocus. Version 2: "startView endView startAngle endAngle defocus(nm) [2]" per line (the
 * version number ends the first line). Version 3: a first line "flags 0 0 0 0 3" (flags: 1 astigmatism,
 * 4 phase shift, 16 cut-on), then "startView endView startAngle endAngle defocus1(nm) defocus2(nm)
 * astigAngle(deg) [phase(rad)] [cutOn]". Older version-1 files (no version token) read as version 2.
 */
export function parseImodDefocus(text: string, options: ParseOptions = {}): ImodDefocusFile {
  const lines = dataLines(text);
  if (lines.length === 0) throw new TmeError('ERR_TME_FORMAT', 'Empty IMOD defocus file', { file: options.file });
  const first = (lines[0] as string).split(/\s+/);
  const version: 2 | 3 = first.length === 6 && first[5] === '3' ? 3 : 2;
  const flags = version === 3 ? toNumber(first[0], 'flags', options.file, 1) : 0;
  const body = version === 3 ? lines.slice(1) : lines;
  const entries = body.map((l, k) => {
    const t = l.split(/\s+/);
    const line = k + (version === 3 ? 2 : 1);
    const n = (i: number, what: string) => toNumber(t[i], what, options.file, line);
    const entry: ImodDefocusEntry = {
      startView: n(0, 'start view'),
      endView: n(1, 'end view'),
      startAngle: n(2, 'start angle'),
      endAngle: n(3, 'end angle'),
      defocus1: n(4, 'defocus') * 10,
      defocus2: n(4, 'defocus') * 10,
      astigmatismAngle: 0,
      phaseShift: 0,
    };
    if (version === 3) {
      entry.defocus2 = n(5, 'defocus 2') * 10;
      entry.astigmatismAngle = n(6, 'astigmatism angle');
      if (flags & 4 && t.length > 7) entry.phaseShift = (n(7, 'phase shift') * 180) / Math.PI;
    }
    return entry;
  });
  if (entries.length === 0) throw new TmeError('ERR_TME_FORMAT', 'IMOD defocus file has no defocus lines', { file: options.file });
  return { version, entries };
}

/** Defocus per view (1-based views → 0-based array of `viewCount`), from entries covering a view range. */
export function imodDefocusPerView(file: ImodDefocusFile, viewCount: number): ImodDefocusEntry[] {
  const out: (ImodDefocusEntry | undefined)[] = new Array(viewCount).fill(undefined);
  // Only the views that exist: a range read from the file may span 1e12 views.
  for (const e of file.entries) {
    for (let v = Math.max(1, e.startView); v <= Math.min(viewCount, e.endView); v++) out[v - 1] = e;
  }
  const missing = out.findIndex((e) => e === undefined);
  if (missing >= 0) throw new TmeError('ERR_TME_MISMATCH', `IMOD defocus file has no estimate for view ${missing + 1} of ${viewCount}`);
  return out as ImodDefocusEntry[];
}
