import { TmeError } from '@tme/formats';
import { matrixToRelionEuler, relionEulerToMatrix } from '@tme/rotations';

/** The header of angles.tsv: rotation index and RELION (rot, tilt, psi) in degrees (conventions: @tme/rotations). */
export const ANGLES_HEADER = 'index\trot\ttilt\tpsi';

function fixed(v: number): string {
  const s = v.toFixed(6);
  return s === '-0.000000' ? '0.000000' : s;
}

/** angles.tsv for a rotation set: one line per rotation, in search order. */
export function formatRotationTable(rotations: Float64Array): string {
  const lines = [ANGLES_HEADER];
  for (let i = 0; i < rotations.length / 9; i++) {
    const [rot, tilt, psi] = matrixToRelionEuler(rotations.slice(9 * i, 9 * i + 9));
    lines.push(`${i}\t${fixed(rot)}\t${fixed(tilt)}\t${fixed(psi)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Parses angles.tsv back into RELION angles (3 per rotation) and matrices (9 per rotation). */
export function parseRotationTable(text: string, file?: string): { angles: Float64Array; matrices: Float64Array } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (lines[0]?.trim() !== ANGLES_HEADER) {
    throw new TmeError('ERR_TME_FORMAT', `expected the header "${ANGLES_HEADER.replace(/\t/g, '\\t')}"`, { file });
  }
  const n = lines.length - 1;
  const angles = new Float64Array(3 * n);
  const matrices = new Float64Array(9 * n);
  for (let i = 0; i < n; i++) {
    const cells = (lines[i + 1] as string).split('\t').map(Number);
    if (cells.length !== 4 || cells[0] !== i || !cells.every(Number.isFinite)) {
      throw new TmeError('ERR_TME_FORMAT', `line ${i + 2}: expected "${i}\\trot\\ttilt\\tpsi"`, { file });
    }
    const [, rot, tilt, psi] = cells as [number, number, number, number];
    angles.set([rot, tilt, psi], 3 * i);
    matrices.set(relionEulerToMatrix(rot, tilt, psi), 9 * i);
  }
  return { angles, matrices };
}
