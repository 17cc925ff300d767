import { invalidOption } from '@tme/formats';
import { matrixToStopgapEuler } from '@tme/rotations';
import { fixed } from './number-format';
import type { ExportPick } from './pick';
import { boxCentreOf } from './subtomogram';

/**
 * The columns of a STOPGAP motive list, in STOPGAP's order: `sg_get_motl_fields.m` of wan-lab-vanderbilt/STOPGAP
 * (sg_toolbox, WW 06-2019); cryoCAT's `StopgapMotl.columns` (cryocat/core/cryomotl.py) lists the same.
 */
export const STOPGAP_MOTL_COLUMNS = [
  'motl_idx', 'tomo_num', 'object', 'subtomo_num', 'halfset', 'orig_x', 'orig_y', 'orig_z', 'score',
  'x_shift', 'y_shift', 'z_shift', 'phi', 'psi', 'the', 'class',
] as const;

/** The data block STOPGAP and cryoCAT look for. */
export const STOPGAP_MOTL_BLOCK = 'stopgap_motivelist';

export interface StopgapMotlOptions {
  /** tomo_num of every row: the tomogram's number in STOPGAP's tomogram list. Default 1. */
  tomogramNumber?: number;
  /** motl_idx and subtomo_num of the first row (the next ones count up). Default 1. */
  firstIndex?: number;
}

/**
 * One motive-list row per pick, cells as text in STOPGAP_MOTL_COLUMNS order. orig_x/y/z hold the pick's integer
 * voxel 1-based (STOPGAP is MATLAB: it cuts the box from floor(orig) − floor(box/2) and rotates about
 * floor(box/2) + 1, i.e. tme's box//2), the sub-voxel rest goes to x/y/z_shift (the particle sits at orig + shift:
 * STOPGAP's averaging shifts by −shift), phi/psi/the are STOPGAP's ZXZ of R (`matrixToStopgapEuler`: its
 * alignment rotates the reference by Rz(psi)·Rx(the)·Rz(phi) onto the particle, the sense of R). subtomo_num
 * equals motl_idx (one entry per particle); halfset alternates odd → A, even → B (`sg_motl_assign_halfsets`
 * 'oddeven'); class = detail + 1.
 */
export function stopgapMotlRows(picks: readonly ExportPick[], options: StopgapMotlOptions = {}): string[][] {
  const tomo = options.tomogramNumber ?? 1;
  const first = options.firstIndex ?? 1;
  if (!(Number.isInteger(tomo) && tomo >= 1)) throw invalidOption('tomogramNumber', 'integer ≥ 1', tomo);
  if (!(Number.isInteger(first) && first >= 1)) throw invalidOption('firstIndex', 'integer ≥ 1', first);
  return picks.map((pick, i) => {
    const n = first + i;
    const c = boxCentreOf(pick.position);
    const [phi, psi, the] = matrixToStopgapEuler(pick.rotation);
    return [
      String(n), String(tomo), '1', String(n), n % 2 === 1 ? 'A' : 'B',
      String(c[2] + 1), String(c[1] + 1), String(c[0] + 1), fixed(pick.score),
      fixed(pick.position[2] - c[2]), fixed(pick.position[1] - c[1]), fixed(pick.position[0] - c[0]),
      fixed(phi), fixed(psi), fixed(the), String((pick.detail ?? 0) + 1),
    ];
  });
}

/**
 * A STOPGAP motive list STAR laid out as STOPGAP's own `stopgap_star_write` does: `data_stopgap_motivelist`,
 * `loop_`, the labels, then an empty line before the rows. The empty line matters: `stopgap_star_read` takes data
 * from the second line after the last label, so a row right under the labels would be dropped.
 */
export function formatStopgapMotl(rows: readonly (readonly string[])[]): string {
  const header = ['', `data_${STOPGAP_MOTL_BLOCK}`, '', 'loop_', ...STOPGAP_MOTL_COLUMNS.map((c) => `_${c}`), ''];
  return `${[...header, ...rows.map((r) => r.join(' '))].join('\n')}\n`;
}
