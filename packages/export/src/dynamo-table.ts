import { TmeError } from '@tme/formats';
import { dynamoEulerToMatrix, matrixToDynamoEuler, transpose } from '@tme/rotations';
import { boxCentreOf } from './subtomogram';
import { fixed, integerOrFixed } from './number-format';
import type { ExportPick } from './pick';
import type { TiltRange } from './wedge-mask';

/** Columns of a Dynamo table, 1-based as in Dynamo's `dthelp`. */
export const DYNAMO_COLUMNS = {
  tag: 1, aligned: 2, averaged: 3, dx: 4, dy: 5, dz: 6, tdrot: 7, tilt: 8, narot: 9, cc: 10, cc2: 11, cpu: 12,
  ftype: 13, ymintilt: 14, ymaxtilt: 15, xmintilt: 16, xmaxtilt: 17, fs1: 18, fs2: 19, tomo: 20, reg: 21,
  class: 22, annotation: 23, x: 24, y: 25, z: 26, dshift: 27, daxis: 28, dnarot: 29, dcc: 30, otag: 31, npar: 32,
  ref: 34, sref: 35,
} as const;

/** Columns written per row: Dynamo's classic 35-column table. */
export const DYNAMO_COLUMN_COUNT = 35;

export interface DynamoTableOptions {
  /** Tomogram number (column 20). Default 1. */
  tomogramNumber?: number;
  /** Tilt range, degrees: column 13 ftype 1 (single tilt about y) with 14–15 = min, max. Default: ftype 0 (full). */
  tiltRange?: TiltRange;
}

/**
 * A Dynamo .tbl: one row per pick, space-separated. Positions (24–26) are 1-based (MATLAB) voxel indices of the
 * pick's integer voxel, and its sub-voxel remainder goes to the shifts dx, dy, dz (4–6), so x + dx is the 1-based
 * position. Angles (7–9) are Dynamo's zxz (tdrot, tilt, narot) of Rᵀ: Dynamo's matrix (dynamo_euler2matrix) takes the
 * aligned particle onto the reference, the inverse of tme's R. Two independent sources agree: a published pair of
 * Dynamo and RELION angles that give the same reconstruction (Dynamo (−47.273, 1.1777, −132.3) = RELION (137.7,
 * 1.1777, 42.727), the eulerangles package's test data) and STOPGAP's and cryoCAT's Dynamo converters
 * (phi = −narot, psi = −tdrot, the = −tilt, with STOPGAP's matrix = R). cc and cc2 (10–11) hold the score, class (22)
 * and ref (34) are detail + 1.
 */
export function formatDynamoTable(picks: readonly ExportPick[], options: DynamoTableOptions = {}): string {
  const tomo = options.tomogramNumber ?? 1;
  return picks.map((pick, i) => {
    const row = new Array<string>(DYNAMO_COLUMN_COUNT).fill('0');
    const set = (col: number, value: string): void => { row[col - 1] = value; };
    const c = boxCentreOf(pick.position);
    const [tdrot, tilt, narot] = matrixToDynamoEuler(transpose(pick.rotation));
    set(DYNAMO_COLUMNS.tag, String(i + 1));
    set(DYNAMO_COLUMNS.aligned, '1');
    set(DYNAMO_COLUMNS.averaged, '1');
    set(DYNAMO_COLUMNS.dx, fixed(pick.position[2] - c[2], 4));
    set(DYNAMO_COLUMNS.dy, fixed(pick.position[1] - c[1], 4));
    set(DYNAMO_COLUMNS.dz, fixed(pick.position[0] - c[0], 4));
    set(DYNAMO_COLUMNS.tdrot, fixed(tdrot));
    set(DYNAMO_COLUMNS.tilt, fixed(tilt));
    set(DYNAMO_COLUMNS.narot, fixed(narot));
    set(DYNAMO_COLUMNS.cc, fixed(pick.score));
    set(DYNAMO_COLUMNS.cc2, fixed(pick.score));
    if (options.tiltRange) {
      set(DYNAMO_COLUMNS.ftype, '1');
      set(DYNAMO_COLUMNS.ymintilt, integerOrFixed(options.tiltRange[0]));
      set(DYNAMO_COLUMNS.ymaxtilt, integerOrFixed(options.tiltRange[1]));
    }
    set(DYNAMO_COLUMNS.tomo, String(tomo));
    set(DYNAMO_COLUMNS.class, String((pick.detail ?? 0) + 1));
    set(DYNAMO_COLUMNS.ref, String((pick.detail ?? 0) + 1)); // the template a pick matched = its reference
    set(DYNAMO_COLUMNS.x, String(c[2] + 1));
    set(DYNAMO_COLUMNS.y, String(c[1] + 1));
    set(DYNAMO_COLUMNS.z, String(c[0] + 1));
    return row.join(' ') + '\n';
  }).join('');
}

/**
 * Reads picks back from a Dynamo table (the inverse of formatDynamoTable): position = x + dx − 1 per axis (0-based),
 * R from (tdrot, tilt, narot), score from cc, detail = class − 1.
 */
export function parseDynamoTable(text: string, file?: string): ExportPick[] {
  const picks: ExportPick[] = [];
  text.split(/\r?\n/).forEach((line, n) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith('%')) return;
    const v = t.split(/\s+/).map(Number);
    if (v.length < 26 || v.some((x) => !Number.isFinite(x))) {
      throw new TmeError('ERR_TME_FORMAT', `line ${n + 1}: expected at least 26 numeric Dynamo columns, found ${v.length}`, { file });
    }
    const col = (c: number): number => v[c - 1] as number;
    picks.push({
      position: [col(26) + col(6) - 1, col(25) + col(5) - 1, col(24) + col(4) - 1],
      rotation: transpose(dynamoEulerToMatrix(col(7), col(8), col(9))),
      score: col(10),
      detail: v.length >= 22 ? col(22) - 1 : undefined,
    });
  });
  return picks;
}
