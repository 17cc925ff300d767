import type { Zyx } from '@tme/formats';
import { TmeError } from '@tme/formats';
import type { EulerTriple } from '@tme/rotations';
import { pytmeEulerToMatrix } from '@tme/rotations';
import type { Pick } from './call-peaks';

/** The header pyTME's postprocess writes and its readers expect, verbatim. */
export const ORIENTATIONS_HEADER = 'x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail';

/** One row of an orientations TSV. */
export interface OrientationRecord {
  /** (z, y, x) voxels, 0-based in the matched map; fractional with sub-voxel refinement. */
  position: Zyx;
  /** pyTME (euler_x, euler_y, euler_z) in degrees, when the file has them. */
  pytmeEuler: EulerTriple | undefined;
  /** The rotation they mean (active template→tomogram, xyz frame), when the file has angles. */
  rotation: Float64Array | undefined;
  /** NaN when the file has no score column. */
  score: number;
  /** Template (entity) index; −1 when absent (pyTME's "no detail"). */
  detail: number;
}

/** Shortest decimal that reads back to the same float32 (pyTME writes str(np.float32)). */
export function formatFloat32(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const s = Number(f.toPrecision(p));
    if (Math.fround(s) === f) return withPoint(String(s));
  }
  return withPoint(String(f));
}

/** Integers as "87.0", like numpy's float formatting, so that readers see a float column. */
function withPoint(s: string): string {
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

/** A coordinate: the voxel plus its sub-voxel shift, rounded to 1e-4 voxel. */
function formatCoordinate(v: number): string {
  return withPoint(String(Math.round(v * 1e4) / 1e4 || 0));
}

/**
 * The orientations TSV of pyTME: exactly the 8 columns of ORIENTATIONS_HEADER, x y z the voxel position (x the
 * fastest MRC axis, 0-based, plus the sub-voxel shift when refined), the pyTME Euler angles in degrees
 * (scipy from_euler('zyz', [ex, ey, ez], degrees=True) is the active template→tomogram rotation), score, and
 * the template index as detail. tme's further columns go to the details table (formatPicksDetailsTsv).
 */
export function formatOrientationsTsv(picks: readonly Pick[]): string {
  const lines = [ORIENTATIONS_HEADER];
  for (const p of picks) {
    lines.push([
      formatCoordinate(p.position[2] + p.shift[2]),
      formatCoordinate(p.position[1] + p.shift[1]),
      formatCoordinate(p.position[0] + p.shift[0]),
      formatFloat32(p.pytmeEuler[0]),
      formatFloat32(p.pytmeEuler[1]),
      formatFloat32(p.pytmeEuler[2]),
      formatFloat32(p.score),
      String(p.template),
    ].join('\t'));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Reads an orientations TSV as pyTME's readers do: columns by name (x, y, z, euler_x, euler_y, euler_z, score,
 * detail); without a `score`/`detail` header the last two columns are score and detail. Any subset of the
 * angle columns may be absent (then no rotation). Extra columns are ignored.
 */
export function parseOrientationsTsv(text: string, file?: string): OrientationRecord[] {
  const lines = text.split(/\r?\n/);
  let first = 0;
  while (first < lines.length && lines[first]!.trim() === '') first++;
  if (first === lines.length) throw new TmeError('ERR_TME_FORMAT', 'empty orientations file: no header line', { file });
  const header = lines[first]!.split('\t').map((h) => h.trim());
  const col = (name: string): number => header.indexOf(name);
  const ix = col('x'), iy = col('y'), iz = col('z');
  if (ix < 0 || iy < 0 || iz < 0) {
    throw new TmeError('ERR_TME_FORMAT', `the header has no x, y and z columns (found: ${header.join(', ')})`, { file });
  }
  const ie = [col('euler_x'), col('euler_y'), col('euler_z')];
  const hasAngles = ie.every((i) => i >= 0);
  let iScore = col('score');
  let iDetail = col('detail');
  if (iScore < 0 && iDetail < 0 && header.length >= 5) {
    iScore = header.length - 2;
    iDetail = header.length - 1;
  }
  const out: OrientationRecord[] = [];
  for (let l = first + 1; l < lines.length; l++) {
    const line = lines[l]!;
    if (line.trim() === '') continue;
    const cells = line.split('\t');
    if (cells.length !== header.length) {
      throw new TmeError('ERR_TME_FORMAT', `line ${l + 1} has ${cells.length} columns but the header has ${header.length}`, { file });
    }
    const num = (i: number, what: string): number => {
      const s = cells[i]!.trim();
      const v = Number(s);
      // Infinity would be written back as 0.0 and land a pick at the origin: positions, angles and scores are finite.
      if (s === '' || !Number.isFinite(v)) throw new TmeError('ERR_TME_FORMAT', `line ${l + 1}: ${what} "${s}" is not a finite number`, { file });
      return v;
    };
    const position: Zyx = [num(iz, 'z'), num(iy, 'y'), num(ix, 'x')];
    let pytmeEuler: EulerTriple | undefined;
    let rotation: Float64Array | undefined;
    if (hasAngles) {
      pytmeEuler = [num(ie[0]!, 'euler_x'), num(ie[1]!, 'euler_y'), num(ie[2]!, 'euler_z')];
      rotation = pytmeEulerToMatrix(pytmeEuler[0], pytmeEuler[1], pytmeEuler[2]);
    }
    const score = iScore >= 0 ? num(iScore, 'score') : NaN;
    const detail = iDetail >= 0 ? num(iDetail, 'detail') : -1;
    out.push({ position, pytmeEuler, rotation, score, detail });
  }
  return out;
}
