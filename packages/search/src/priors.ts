import * as fs from 'node:fs';
import { TmeError, parseStar, type StarFile, type StarLoop, type Zyx } from '@tme/formats';
import { relionEulerToMatrix } from '@tme/rotations';

/** Prior positions (voxels of the target, z, y, x) and directions (z, y, x), three numbers each per prior. */
export interface PriorTable {
  positions: Float64Array;
  directions: Float64Array;
}

/**
 * Reads a prior file: positions and a direction per row.
 *
 * STAR (RELION's columns, one row a line): positions from rlnCoordinateX/Y/Z (voxels of the searched tomogram, as
 * tme's own `--format relion` writes them) less rlnOriginX/Y/ZAngst, or RELION 5's rlnCenteredCoordinateX/Y/ZAngst
 * (Å from the tomogram's centre, size/2); the direction from tmeVectorX/Y/Z when present, else where the RELION
 * angles turn the template's z axis: R·ẑ of R = RELION's (rot, tilt, psi), which tilt and psi set and rot (the spin
 * about that axis) does not move — RELION's helical and membrane priors (rlnAngleTiltPrior, rlnAnglePsiPrior, taken
 * first when present) are these two angles. A STAR of tme's own picks gives each pick's z axis.
 *
 * Anything else is a table with a header line: columns x, y, z (voxels) and vx, vy, vz (the vector's x, y, z
 * components), separated by tabs or spaces; lines starting with # are comments.
 *
 * Every problem is one line naming the file and the line: a missing column, a value that is not a number, a vector
 * of zero length.
 */
export function readPriorFile(file: string, target: { shape: Zyx; voxelSize: Zyx }): PriorTable {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TmeError('ERR_TME_IO', `cannot read the prior file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
  const rows = /^\s*data_/m.test(text) ? starRows(text, file, target) : tableRows(text, file);
  if (rows.length === 0) throw new TmeError('ERR_TME_FORMAT', 'holds no priors (no rows)', { file });
  const positions = new Float64Array(3 * rows.length);
  const directions = new Float64Array(3 * rows.length);
  rows.forEach((row, i) => {
    const values = [...row.position, ...row.direction];
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new TmeError('ERR_TME_FORMAT', `line ${row.line}: ${row.names[bad]} is ${values[bad]}, not a finite number`, { file });
    if (!(Math.hypot(...row.direction) > 0)) throw new TmeError('ERR_TME_FORMAT', `line ${row.line}: the vector has zero length (a prior needs a direction)`, { file });
    positions.set(row.position, 3 * i);
    directions.set(row.direction, 3 * i);
  });
  return { positions, directions };
}

interface Row {
  line: number;
  position: Zyx;
  direction: Zyx;
  /** What each of the six values is called, for messages (position z, y, x, then direction z, y, x). */
  names: string[];
}

function number(text: string): number {
  // RELION (C++ streams) writes non-finite values as nan / inf.
  if (/^[+-]?nan$/i.test(text)) return NaN;
  if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  return text.trim() === '' ? NaN : Number(text);
}

function tableRows(text: string, file: string): Row[] {
  const lines = text.split(/\r?\n/);
  const header = lines.findIndex((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (header < 0) throw new TmeError('ERR_TME_FORMAT', 'holds no priors (no header line x y z vx vy vz)', { file });
  const labels = (lines[header] as string).trim().split(/\s+/).map((l) => l.toLowerCase());
  const wanted = ['z', 'y', 'x', 'vz', 'vy', 'vx'];
  const at = wanted.map((w) => labels.indexOf(w));
  const missing = wanted.filter((_w, k) => (at[k] as number) < 0);
  if (missing.length > 0) {
    throw new TmeError('ERR_TME_FORMAT', `line ${header + 1}: no column ${missing.join(', ')} (a prior table's header names x y z (voxels) and vx vy vz (the vector))`, { file });
  }
  const rows: Row[] = [];
  for (let i = header + 1; i < lines.length; i++) {
    const l = (lines[i] as string).trim();
    if (l === '' || l.startsWith('#')) continue;
    const cells = l.split(/\s+/);
    if (cells.length < labels.length) {
      throw new TmeError('ERR_TME_FORMAT', `line ${i + 1}: ${cells.length} values, the header names ${labels.length} columns`, { file });
    }
    const v = at.map((k) => number(cells[k as number] as string));
    rows.push({ line: i + 1, position: [v[0], v[1], v[2]] as Zyx, direction: [v[3], v[4], v[5]] as Zyx, names: wanted });
  }
  return rows;
}

/** The loop of a STAR that holds coordinates (data_particles first), and the line of each of its rows. */
function starRows(text: string, file: string, target: { shape: Zyx; voxelSize: Zyx }): Row[] {
  const star: StarFile = parseStar(text, file);
  const labelsOf = ['rlnCoordinateX', 'rlnCenteredCoordinateXAngst'];
  const blocks = [...star.blocks.filter((b) => b.name === 'particles'), ...star.blocks.filter((b) => b.name !== 'particles')];
  let loop: StarLoop | undefined;
  for (const b of blocks) {
    loop = b.loops.find((l) => labelsOf.some((c) => l.labels.includes(c)));
    if (loop) break;
  }
  const lines = text.split(/\r?\n/);
  if (!loop) {
    const at = lines.findIndex((l) => /^\s*loop_/.test(l));
    throw new TmeError('ERR_TME_FORMAT', `line ${at + 1}: no column _rlnCoordinateX or _rlnCenteredCoordinateXAngst (a prior STAR needs positions)`, { file });
  }
  const found = loop;
  // RELION writes one row a line after the loop's labels: the line of the last label, then the data lines in order.
  const last = found.labels[found.labels.length - 1] as string;
  const labelLine = lines.findIndex((l) => l.trim().split(/\s+/)[0] === `_${last}`);
  const rowLines: number[] = [];
  for (let i = labelLine + 1; i < lines.length && rowLines.length < found.rows.length; i++) {
    const l = (lines[i] as string).trim();
    if (l !== '' && !l.startsWith('#')) rowLines.push(i + 1);
  }
  const column = (label: string, required: boolean): number[] | undefined => {
    const k = found.labels.indexOf(label);
    if (k < 0) {
      if (!required) return undefined;
      throw new TmeError('ERR_TME_FORMAT', `line ${labelLine + 1}: no column _${label} (labels: ${found.labels.join(', ')})`, { file });
    }
    return found.rows.map((r) => number(r[k] as string));
  };
  const centred = found.labels.includes('rlnCenteredCoordinateXAngst');
  const axes = ['Z', 'Y', 'X'] as const;
  const coordinates = axes.map((a) => column(centred ? `rlnCenteredCoordinate${a}Angst` : `rlnCoordinate${a}`, true) as number[]);
  const origins = axes.map((a) => column(`rlnOrigin${a}Angst`, false));
  const explicit = found.labels.includes('tmeVectorX') || found.labels.includes('tmeVectorY') || found.labels.includes('tmeVectorZ');
  const vector = explicit ? axes.map((a) => column(`tmeVector${a}`, true) as number[]) : undefined;
  const priorColumns = found.labels.includes('rlnAngleTiltPrior') && found.labels.includes('rlnAnglePsiPrior');
  const tilt = explicit ? undefined : column(priorColumns ? 'rlnAngleTiltPrior' : 'rlnAngleTilt', true);
  const psi = explicit ? undefined : column(priorColumns ? 'rlnAnglePsiPrior' : 'rlnAnglePsi', true);
  const angleNames = `the direction of ${priorColumns ? '_rlnAngleTiltPrior, _rlnAnglePsiPrior' : '_rlnAngleTilt, _rlnAnglePsi'}`;
  const names = [
    ...axes.map((a) => (centred ? `_rlnCenteredCoordinate${a}Angst` : `_rlnCoordinate${a}`)),
    ...(explicit ? axes.map((a) => `_tmeVector${a}`) : [angleNames, angleNames, angleNames]),
  ];
  return found.rows.map((_r, i) => {
    const position = [0, 1, 2].map((a) => {
      const c = (coordinates[a] as number[])[i] as number;
      const vs = target.voxelSize[a] as number;
      const origin = (origins[a]?.[i] ?? 0) / vs;
      // RELION 5: Å from the centre, size/2 (RELION's own centre).
      return (centred ? c / vs + (target.shape[a] as number) / 2 : c) - origin;
    }) as unknown as Zyx;
    let direction: Zyx;
    if (vector) direction = [(vector[0] as number[])[i], (vector[1] as number[])[i], (vector[2] as number[])[i]] as Zyx;
    else {
      const r = relionEulerToMatrix(0, (tilt as number[])[i] as number, (psi as number[])[i] as number);
      // R·ẑ (xyz frame): R's third column, turned into (z, y, x).
      direction = [r[8] as number, r[5] as number, r[2] as number];
      if (![...direction].every(Number.isFinite)) direction = [NaN, NaN, NaN];
    }
    return { line: rowLines[i] ?? labelLine + 2 + i, position, direction, names };
  });
}
