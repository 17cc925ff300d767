import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { Zyx } from '@tme/formats';
import { angleBetween, matrixToPytmeEuler } from '@tme/rotations';
import type { Pick } from '../src';
import { ORIENTATIONS_HEADER, callPeaks, formatFloat32, formatOrientationsTsv, formatPicksDetailsTsv, parseOrientationsTsv } from '../src';
import { noiseSearch, plantBlob } from './helpers/synthetic';

const FIXTURE = '/work/shared/fixtures/pytme/peer128_flcs_a15.orientations.tsv';

function hasScipy(): boolean {
  try { execFileSync('python3', ['-c', 'import scipy.spatial.transform'], { stdio: 'ignore' }); return true; } catch { return false; }
}

describe('parseOrientationsTsv on a file pyTME wrote', () => {
  const text = fs.readFileSync(FIXTURE, 'utf8');
  const rows = parseOrientationsTsv(text, FIXTURE);

  it('reads every row with x, y, z into (z, y, x), angles, score and detail', () => {
    expect(rows).toHaveLength(20);
    expect(rows[0]!.position).toEqual([117, 18, 87]);
    expect(rows[0]!.pytmeEuler).toEqual([-23.7166, 19.419806, 156.2834]);
    expect(rows[0]!.score).toBeCloseTo(0.62614846, 8);
    expect(rows[0]!.detail).toBe(0);
    expect(rows[1]!.position).toEqual([21, 97, 94]);
    expect(rows[1]!.pytmeEuler).toEqual([180, 90, -90]);
    for (let k = 1; k < rows.length; k++) expect(rows[k]!.score).toBeLessThanOrEqual(rows[k - 1]!.score);
  });

  (hasScipy() ? it : it.skip)('gives the rotations scipy from_euler("zyz", …, degrees=True) gives', () => {
    const angles = rows.slice(0, 5).map((r) => r.pytmeEuler);
    const py = execFileSync('python3', ['-c', [
      'import json,sys; from scipy.spatial.transform import Rotation as R',
      'a=json.loads(sys.argv[1])',
      'print(json.dumps([R.from_euler("zyz",e,degrees=True).as_matrix().ravel().tolist() for e in a]))',
    ].join('\n'), JSON.stringify(angles)], { encoding: 'utf8' });
    const want = JSON.parse(py) as number[][];
    rows.slice(0, 5).forEach((r, k) => {
      want[k]!.forEach((v, i) => expect(r.rotation![i]!).toBeCloseTo(v, 12));
    });
  });

  it('round-trips the fixture through tme\'s writer: same values, same header', () => {
    const picks = rows.map((r) => ({
      position: r.position, shift: [0, 0, 0], pytmeEuler: matrixToPytmeEuler(r.rotation!), score: r.score, template: r.detail,
    })) as unknown as Pick[];
    const written = formatOrientationsTsv(picks);
    expect(written.split('\n')[0]).toBe('x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail');
    const back = parseOrientationsTsv(written);
    back.forEach((b, k) => {
      expect(b.position).toEqual(rows[k]!.position);
      expect(Math.fround(b.score)).toBe(Math.fround(rows[k]!.score));
      expect(angleBetween(b.rotation!, rows[k]!.rotation!)).toBeLessThan(1e-4);
    });
    // pyTME's own float32 text survives unchanged
    expect(written.split('\n')[1]).toBe(text.split('\n')[1]);
  });
});

describe('formatOrientationsTsv', () => {
  it('writes exactly 8 tab-separated columns, x fastest, sub-voxel positions, template as detail', () => {
    const maps = noiseSearch([12, 14, 16], 8, 2);
    plantBlob(maps, [5.2, 6, 9.7], 9, 1.5, 3);
    const set = callPeaks(maps, { minScore: 6, subvoxel: true, template: 2, edge: 0 });
    const text = formatOrientationsTsv(set.picks);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe(ORIENTATIONS_HEADER);
    expect(lines).toHaveLength(2);
    const cells = lines[1]!.split('\t');
    expect(cells).toHaveLength(8);
    expect(Number(cells[0])).toBeCloseTo(9.7, 1);
    expect(Number(cells[1])).toBeCloseTo(6, 1);
    expect(Number(cells[2])).toBeCloseTo(5.2, 1);
    expect(cells[7]).toBe('2');
    const [row] = parseOrientationsTsv(text);
    expect(angleBetween(row!.rotation!, set.picks[0]!.rotation)).toBeLessThan(1e-4);
  });

  it('formats float32 like numpy (shortest round-trip, integers with .0)', () => {
    expect(formatFloat32(87)).toBe('87.0');
    expect(formatFloat32(0.62614846)).toBe('0.62614846');
    expect(formatFloat32(-0)).toBe('0.0');
    expect(Math.fround(Number(formatFloat32(Math.PI)))).toBe(Math.fround(Math.PI));
  });

  it('rejects malformed files with the line number', () => {
    expect(() => parseOrientationsTsv('a\tb\n1\t2\n', 'f.tsv')).toThrow(/no x, y and z/);
    expect(() => parseOrientationsTsv(`${ORIENTATIONS_HEADER}\n1\t2\t3\n`, 'f.tsv')).toThrow('line 2 has 3 columns but the header has 8');
    expect(() => parseOrientationsTsv(`${ORIENTATIONS_HEADER}\n1\t2\tz\t0\t0\t0\t1\t0\n`)).toThrow(/line 2: z "z" is not a finite number/);
    // Infinity (or 1e400) was read, then written back by `tme export --format tsv` as 0.0.
    expect(() => parseOrientationsTsv(`${ORIENTATIONS_HEADER}\nInfinity\t2\t3\t0\t0\t0\t1\t0\n`, 'p.tsv')).toThrow(/line 2: x "Infinity" is not a finite number/);
    expect(() => parseOrientationsTsv(`${ORIENTATIONS_HEADER}\n1\t2\t3\t0\t1e400\t0\t1\t0\n`)).toThrow(/euler_y "1e400" is not a finite number/);
  });

  it('reads files without angle columns and takes the last two as score and detail when unnamed', () => {
    const [r] = parseOrientationsTsv('x\ty\tz\tcc\tclass\n1\t2\t3\t0.5\t4\n');
    expect(r).toEqual({ position: [3, 2, 1], pytmeEuler: undefined, rotation: undefined, score: 0.5, detail: 4 });
  });
});

describe('formatPicksDetailsTsv', () => {
  it('has one row per pick with Å coordinates and RELION angles', () => {
    const maps = noiseSearch([10, 10, 10], 6, 8);
    plantBlob(maps, [5, 4, 6], 9, 1, 2);
    const set = callPeaks({ ...maps, voxelSize: [2, 2, 2], origin: [10, 20, 30] }, { minScore: 6, edge: 0 });
    const lines = formatPicksDetailsTsv(set.picks).split('\n');
    const header = lines[0]!.split('\t');
    const row = lines[1]!.split('\t');
    expect(row).toHaveLength(header.length);
    const get = (name: string): string => row[header.indexOf(name)]!;
    expect([get('x'), get('y'), get('z')]).toEqual(['6', '4', '5']);
    expect([get('x_A'), get('y_A'), get('z_A')].map(Number)).toEqual([42, 28, 20] as unknown as Zyx);
    expect(Number(get('rlnAngleRot'))).toBeCloseTo(set.picks[0]!.relionEuler[0], 4);
    expect(get('rotation_index')).toBe('2');
    expect(get('relion_box_outside')).toBe(''); // no RELION box cut
    const marked = formatPicksDetailsTsv(set.picks, undefined, [0.2509]).split('\n')[1]!.split('\t');
    expect(marked[header.indexOf('relion_box_outside')]).toBe('0.2509');
    expect(formatPicksDetailsTsv(set.picks, undefined, [Number.NaN]).split('\n')[1]!.split('\t')[header.indexOf('relion_box_outside')]).toBe('');
  });
});
