import { TmeError, type Zyx } from '@tme/formats';

/** The ky rows [y0, y1) of every kz plane of a half spectrum: a block of a filter too large to hold whole (the
 *  out-of-core target filter), laid out (nz, y1 − y0, nx/2+1). [0, ny) is the whole filter. */
export type FilterRows = readonly [number, number];

/** `rows` checked against `shape`. */
export function checkRows(rows: FilterRows, shape: Zyx): FilterRows {
  const [y0, y1] = rows;
  if (!(Number.isInteger(y0) && Number.isInteger(y1) && y0 >= 0 && y0 < y1 && y1 <= shape[1])) {
    throw new TmeError('ERR_TME_INVALID_OPTION', `Expected ky rows [y0, y1) with 0 ≤ y0 < y1 ≤ ${shape[1]} for rows but received [${y0}, ${y1})`);
  }
  return rows;
}
