import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { relionEulerToMatrix } from '@tme/rotations';
import { DYNAMO_COLUMN_COUNT, formatDynamoTable, parseDynamoTable } from '../src/dynamo-table';
import { makePicks, maxAbsDiff } from './helpers/picks';

const PYTHON = '/usr/bin/python3';
const hasScipy = fs.existsSync(PYTHON) && (() => {
  try { execFileSync(PYTHON, ['-c', 'import scipy']); return true; } catch { return false; }
})();

describe('formatDynamoTable', () => {
  const picks = makePicks(25, [50, 60, 70]);
  const text = formatDynamoTable(picks, { tiltRange: [-54, 60], tomogramNumber: 3 });
  const rows = text.trim().split('\n').map((l) => l.split(' '));

  it('writes 35 space-separated columns per pick', () => {
    expect(rows).toHaveLength(25);
    for (const r of rows) expect(r).toHaveLength(DYNAMO_COLUMN_COUNT);
  });

  it('puts each quantity in its Dynamo column', () => {
    const r = rows[4]!;
    const p = picks[4]!;
    const col = (c: number): number => Number(r[c - 1]);
    expect(col(1)).toBe(5); // tag
    expect([col(2), col(3)]).toEqual([1, 1]);
    expect(col(10)).toBeCloseTo(p.score, 6);
    expect([col(13), col(14), col(15)]).toEqual([1, -54, 60]);
    expect(col(20)).toBe(3);
    expect(col(22)).toBe(p.detail! + 1);
    expect(col(34)).toBe(p.detail! + 1);
    expect(col(24)).toBe(Math.round(p.position[2]) + 1); // x, 1-based
    expect(col(25)).toBe(Math.round(p.position[1]) + 1);
    expect(col(26)).toBe(Math.round(p.position[0]) + 1);
    expect(col(24) + col(4) - 1).toBeCloseTo(p.position[2], 4);
  });

  it('round-trips matrix → tbl → matrix to 1e-6 and positions to 1e-4', () => {
    const back = parseDynamoTable(text);
    back.forEach((b, i) => {
      expect(maxAbsDiff(b.rotation, picks[i]!.rotation)).toBeLessThan(1e-6);
      expect(maxAbsDiff(b.position, picks[i]!.position)).toBeLessThan(1e-4);
      expect(b.detail).toBe(picks[i]!.detail);
    });
  });

  (hasScipy ? it : it.skip)('angles satisfy scipy from_euler("zxz", [tdrot, tilt, narot]) == Rᵀ (Dynamo’s dynamo_euler2matrix takes the particle onto the reference)', () => {
    const angles = rows.map((r) => [Number(r[6]), Number(r[7]), Number(r[8])]);
    const out = execFileSync(PYTHON, ['-c', [
      'import json,sys',
      'from scipy.spatial.transform import Rotation',
      'a=json.loads(sys.stdin.read())',
      'print(json.dumps([Rotation.from_euler("zxz",x,degrees=True).as_matrix().ravel().tolist() for x in a]))',
    ].join('\n')], { input: JSON.stringify(angles) }).toString();
    const mats = JSON.parse(out) as number[][];
    const transposed = (r: ArrayLike<number>): number[] => [0, 3, 6, 1, 4, 7, 2, 5, 8].map((k) => r[k] as number);
    mats.forEach((m, i) => expect(maxAbsDiff(m, transposed(picks[i]!.rotation))).toBeLessThan(1e-6));
  });

  it('gives the Dynamo angles of a published pair that reconstruct alike in Dynamo and RELION', () => {
    // Dynamo (tdrot, tilt, narot) = (−47.273, 1.1777, −132.3) ≡ RELION (rot, tilt, psi) = (137.7, 1.1777, 42.727): an
    // empirically equivalent pair (the eulerangles package's test data). tme's RELION angles are checked with the
    // real relion_reconstruct, so a pick with those RELION angles must get these Dynamo angles.
    const rotation = relionEulerToMatrix(137.7, 1.1777, 42.727);
    const row = formatDynamoTable([{ position: [10, 10, 10], rotation, score: 1 }]).split(' ').map(Number);
    expect(row[6]).toBeCloseTo(-47.273, 3);
    expect(row[7]).toBeCloseTo(1.1777, 4);
    expect(row[8]).toBeCloseTo(-132.3, 3);
  });

  it('rejects short rows when reading', () => {
    expect(() => parseDynamoTable('1 2 3\n', 'x.tbl')).toThrow(/line 1: expected at least 26/);
  });
});
