import { TmeError } from '@tme/formats';
import { matrixToRelionEuler, pytmeEulerToMatrix, relionEulerToMatrix } from './euler';
import { orthogonalityError } from './matrix';
import { matrixToQuaternion, quaternionToMatrix } from './quaternion';

/** The header of a job's angles.tsv: rotation index and RELION (rot, tilt, psi) in degrees (see euler.ts). */
export const ANGLES_TSV_HEADER = 'index\trot\ttilt\tpsi';

/** Rotations read from a file: 9·count matrix entries, plus the RELION angles (3·count) they came from or give. */
export interface RotationList {
  matrices: Float64Array;
  /** RELION (rot, tilt, psi) per rotation, degrees. */
  angles: Float64Array;
  count: number;
}

function fixed(v: number): string {
  const s = v.toFixed(6);
  return s === '-0.000000' ? '0.000000' : s;
}

/** The job's angles.tsv text: header `index	rot	tilt	psi`, one line per rotation in search order, 6 decimals. */
export function formatAnglesTsv(set: { matrices: Float64Array }): string {
  const n = set.matrices.length / 9;
  const lines: string[] = [ANGLES_TSV_HEADER];
  for (let i = 0; i < n; i++) {
    const [rot, tilt, psi] = matrixToRelionEuler(set.matrices.subarray(9 * i, 9 * i + 9));
    lines.push(`${i}\t${fixed(rot)}\t${fixed(tilt)}\t${fixed(psi)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Reads a job's angles.tsv strictly: the exact header, then rows `i	rot	tilt	psi` with i = 0, 1, 2, … */
export function parseAnglesTsv(text: string, file?: string): RotationList {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines[0]?.trim() !== ANGLES_TSV_HEADER) {
    throw new TmeError('ERR_TME_FORMAT', `expected the angles.tsv header "index\\trot\\ttilt\\tpsi" on line 1`, { file });
  }
  const n = lines.length - 1;
  const angles = new Float64Array(3 * n);
  const matrices = new Float64Array(9 * n);
  for (let i = 0; i < n; i++) {
    const cells = lines[i + 1]!.split('\t');
    const values = cells.map((c) => (c.trim() === '' ? Number.NaN : Number(c)));
    if (values.length !== 4 || values[0] !== i || !values.every(Number.isFinite)) {
      throw new TmeError('ERR_TME_FORMAT', `line ${i + 2}: expected "${i}\\trot\\ttilt\\tpsi" with numbers in degrees`, { file });
    }
    angles.set(values.slice(1), 3 * i);
    matrices.set(relionEulerToMatrix(values[1]!, values[2]!, values[3]!), 9 * i);
  }
  return { matrices, angles, count: n };
}

export type RotationListConvention = 'relion' | 'pytme' | 'matrix';

const HEADER_WORDS: Record<RotationListConvention, string[][]> = {
  relion: [['rot', 'tilt', 'psi'], ['rlnanglerot', 'rlnangletilt', 'rlnanglepsi']],
  pytme: [['euler_x', 'euler_y', 'euler_z'], ['ex', 'ey', 'ez']],
  matrix: [['r11', 'r12', 'r13', 'r21', 'r22', 'r23', 'r31', 'r32', 'r33'], ['m00', 'm01', 'm02', 'm10', 'm11', 'm12', 'm20', 'm21', 'm22']],
};

/**
 * Parses a user's rotation list: one rotation per line, numbers separated by tabs, spaces or commas; blank lines
 * and `#` comments skipped. An optional header names the columns (`rot tilt psi`, `index rot tilt psi`; pyTME
 * `euler_x euler_y euler_z`; matrices `r11 … r33`); without one, a leading index column is recognised by the count
 * of numbers. Conventions: 'relion' (rot, tilt, psi), 'pytme' (euler_x, euler_y, euler_z), 'matrix' (9 entries
 * row-major, active template→tomogram). Matrices must be rotations to 1e-4 and are re-orthonormalised.
 */
export function readRotationList(text: string, convention: RotationListConvention, file?: string): RotationList {
  if (!(convention in HEADER_WORDS)) {
    throw new TmeError('ERR_TME_INVALID_OPTION', `Expected 'relion', 'pytme' or 'matrix' for convention but received ${String(convention)}`);
  }
  const width = convention === 'matrix' ? 9 : 3;
  const rows: number[][] = [];
  let hasIndex: boolean | undefined;
  // A binary file (an MRC given by mistake) would otherwise be quoted whole as its "header".
  if (/[\u0000-\u0008\u000e-\u001f]/.test(text.slice(0, 4096))) {
    throw new TmeError('ERR_TME_FORMAT', 'is binary, not a text rotation list (one rotation per line; a .npy for quaternions)', { file });
  }
  const lines = text.split(/\r?\n/);
  const quote = (line: string): string => (line.length > 60 ? `${line.slice(0, 57)}…` : line);
  lines.forEach((raw, k) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const cells = line.split(/[\s,]+/);
    const values = cells.map(Number);
    if (!values.every(Number.isFinite)) {
      if (rows.length > 0 || hasIndex !== undefined) {
        throw new TmeError('ERR_TME_FORMAT', `line ${k + 1}: expected ${width} numbers but found "${quote(line)}"`, { file });
      }
      const words = cells.map((c) => c.toLowerCase());
      const body = words[0] === 'index' || words[0] === 'idx' ? words.slice(1) : words;
      if (!HEADER_WORDS[convention].some((h) => h.length === body.length && h.every((w, i) => w === body[i]))) {
        throw new TmeError('ERR_TME_FORMAT', `line ${k + 1}: header "${quote(line)}" does not name ${convention} columns`
          + ` (expected e.g. "${HEADER_WORDS[convention][0]!.join(' ')}")`, { file });
      }
      hasIndex = body.length !== words.length;
      return;
    }
    const indexed = hasIndex ?? values.length === width + 1;
    if (values.length !== width + (indexed ? 1 : 0)) {
      throw new TmeError('ERR_TME_FORMAT', `line ${k + 1}: expected ${width}${indexed ? ' numbers after the index' : ' numbers'} but found ${values.length}`, { file });
    }
    hasIndex = indexed;
    rows.push(indexed ? values.slice(1) : values);
  });
  if (rows.length === 0) throw new TmeError('ERR_TME_FORMAT', 'no rotations found', { file });
  const matrices = new Float64Array(9 * rows.length);
  const angles = new Float64Array(3 * rows.length);
  rows.forEach((v, i) => {
    let m: Float64Array;
    if (convention === 'relion') m = relionEulerToMatrix(v[0]!, v[1]!, v[2]!);
    else if (convention === 'pytme') m = pytmeEulerToMatrix(v[0]!, v[1]!, v[2]!);
    else {
      const raw = Float64Array.from(v);
      const err = orthogonalityError(raw);
      if (!(err < 1e-4)) {
        throw new TmeError('ERR_TME_FORMAT', `rotation ${i}: not a rotation matrix (max |RᵀR − I|, |det − 1| = ${err.toExponential(2)})`, { file });
      }
      m = quaternionToMatrix(matrixToQuaternion(raw));
    }
    matrices.set(m, 9 * i);
    angles.set(convention === 'relion' ? v : matrixToRelionEuler(m), 3 * i);
  });
  return { matrices, angles, count: rows.length };
}

/**
 * Rotations from a NumPy array of quaternions in scipy's order (x, y, z, w), one per row, with optional further
 * columns (pyTME's rotation sets, tme/data/*.npy, are (N, 5): the quaternion and a weight). R is scipy's
 * `Rotation.from_quat(q).as_matrix()`, which is how pyTME turns its sets into the rotations it searches and whose
 * `as_euler('zyz')` its orientations TSV holds: the same R as `readRotationList(…, 'pytme')` gives for those angles.
 */
export function rotationsFromQuaternionArray(shape: readonly number[], data: Float64Array, file?: string): RotationList {
  if (shape.length !== 2 || !(shape[1]! >= 4) || !(shape[0]! >= 1)) {
    throw new TmeError('ERR_TME_FORMAT', `expected an (N, 4) or (N, 5) array of quaternions (x, y, z, w[, weight]) but the array has shape (${shape.join(', ')})`, { file });
  }
  const [n, cols] = shape as [number, number];
  const matrices = new Float64Array(9 * n);
  const angles = new Float64Array(3 * n);
  for (let i = 0; i < n; i++) {
    const [x, y, z, w] = [data[i * cols]!, data[i * cols + 1]!, data[i * cols + 2]!, data[i * cols + 3]!];
    const norm = Math.hypot(x, y, z, w);
    if (!(Math.abs(norm - 1) < 1e-3)) {
      throw new TmeError('ERR_TME_FORMAT', `row ${i}: quaternion (${x}, ${y}, ${z}, ${w}) has norm ${norm.toPrecision(6)}, not 1`, { file });
    }
    const m = quaternionToMatrix([w, x, y, z]);
    matrices.set(m, 9 * i);
    angles.set(matrixToRelionEuler(m), 3 * i);
  }
  return { matrices, angles, count: n };
}
