import {
  angleBetween, formatAnglesTsv, parseAnglesTsv, pytmeEulerToMatrix, readRotationList, relionEulerToMatrix, rotationsFromQuaternionArray,
  rotationAt, sampleRotations, ANGLES_TSV_HEADER,
} from '../src';
import { runScipy } from './helpers/scipy';

describe('angles.tsv', () => {
  const set = sampleRotations({ angularStep: 20, measure: false });
  const text = formatAnglesTsv(set);
  const lines = text.split('\n');

  it('has the exact layout: header, one row per rotation in order, 6 decimals, final newline', () => {
    expect(lines[0]).toBe('index\trot\ttilt\tpsi');
    expect(ANGLES_TSV_HEADER).toBe(lines[0]);
    expect(lines[1]).toBe('0\t0.000000\t0.000000\t0.000000');
    expect(lines).toHaveLength(set.count + 2);
    expect(lines[set.count + 1]).toBe('');
    for (let i = 1; i <= set.count; i++) expect(lines[i]).toMatch(new RegExp(`^${i - 1}(\\t-?\\d+\\.\\d{6}){3}$`));
    expect(text).not.toMatch(/-0\.000000/);
  });

  it('rows are RELION angles of the matrices (scipy from_euler("ZYZ").as_matrix().T)', () => {
    const rows = lines.slice(1, set.count + 1).map((l) => l.split('\t').slice(1).map(Number));
    const m = runScipy<number[][][]>(`out = Rotation.from_euler('ZYZ', np.array(data), degrees=True).as_matrix().transpose(0, 2, 1).tolist()`, rows);
    m.forEach((rm, i) => {
      const flat = rm.flat();
      expect(angleBetween(Float64Array.from(flat), rotationAt(set, i))).toBeLessThan(2e-5);
    });
  });

  it('parse(format(set)) gives back the matrices to the printed precision', () => {
    const back = parseAnglesTsv(text);
    expect(back.count).toBe(set.count);
    for (let i = 0; i < set.count; i++) {
      expect(angleBetween(rotationAt(back, i), rotationAt(set, i))).toBeLessThan(2e-5);
    }
    expect(Array.from(back.angles.subarray(0, 3))).toEqual([0, 0, 0]);
  });

  it('rejects a wrong header or a wrong index with ERR_TME_FORMAT naming the file', () => {
    expect(() => parseAnglesTsv('rot\ttilt\tpsi\n1\t2\t3\n', 'a.tsv')).toThrow(expect.objectContaining({ code: 'ERR_TME_FORMAT', file: 'a.tsv' }));
    expect(() => parseAnglesTsv('index\trot\ttilt\tpsi\n0\t1\t2\t3\n2\t1\t2\t3\n')).toThrow(/line 3/);
    expect(() => parseAnglesTsv('index\trot\ttilt\tpsi\n0\t1\t2\n')).toThrow(/line 2/);
  });
});

describe('readRotationList', () => {
  const r1 = relionEulerToMatrix(10, 20, 30), r2 = relionEulerToMatrix(-50, 120, 170);
  const near = (a: Float64Array, i: number, b: Float64Array): void => expect(angleBetween(a.subarray(9 * i, 9 * i + 9), b)).toBeLessThan(1e-9);

  it.each([
    ['rot tilt psi\n10 20 30\n-50 120 170\n'],
    ['index\trot\ttilt\tpsi\n0\t10\t20\t30\n1\t-50\t120\t170\n'],
    ['# my list\n10, 20, 30\n\n-50 120 170  # second\n'],
    ['0 10 20 30\n1 -50 120 170\n'],
  ])('reads RELION angles in any of the accepted layouts (%#)', (text) => {
    const list = readRotationList(text, 'relion');
    expect(list.count).toBe(2);
    near(list.matrices, 0, r1);
    near(list.matrices, 1, r2);
    expect(Array.from(list.angles)).toEqual([10, 20, 30, -50, 120, 170]);
  });

  it('reads pyTME angles and 3×3 matrices', () => {
    const p = readRotationList('euler_x\teuler_y\teuler_z\n10\t20\t30\n', 'pytme');
    near(p.matrices, 0, pytmeEulerToMatrix(10, 20, 30));
    const m = readRotationList(`${Array.from(r2).join(' ')}\n${Array.from(r1).map((x) => x.toFixed(7)).join('\t')}\n`, 'matrix');
    near(m.matrices, 0, r2);
    expect(angleBetween(m.matrices.subarray(9, 18), r1)).toBeLessThan(1e-5);
    expect(angleBetween(relionEulerToMatrix(m.angles[0]!, m.angles[1]!, m.angles[2]!), r2)).toBeLessThan(1e-9);
  });

  it('rejects bad input with ERR_TME_FORMAT', () => {
    const bad = (text: string, conv: 'relion' | 'pytme' | 'matrix' = 'relion'): void =>
      expect(() => readRotationList(text, conv, 'list.txt')).toThrow(expect.objectContaining({ code: 'ERR_TME_FORMAT', file: 'list.txt' }));
    bad('phi theta psi\n1 2 3\n');
    bad('1 2\n');
    bad('1 2 3\n4 5 x\n');
    bad('');
    bad('1 0 0 0 1 0 0 0 2\n', 'matrix');
    expect(() => readRotationList('1 2 3', 'zyz' as 'relion')).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
  });
});

describe('rotationsFromQuaternionArray (pyTME rotation sets: scipy x, y, z, w, weight)', () => {
  it('reads scalar-last quaternions as scipy does, extra columns ignored', () => {
    const s = Math.SQRT1_2;
    // (1, 0, 0, 0) is 180° about x (pyTME's c48 sets start with it); (0, 0, sin 45°, cos 45°) is 90° about z.
    const list = rotationsFromQuaternionArray([2, 5], Float64Array.of(1, 0, 0, 0, 1.6, 0, 0, s, s, 1.5));
    expect(list.count).toBe(2);
    expect(Array.from(list.matrices.slice(0, 9)).map((v) => Math.round(v * 1e12) / 1e12 + 0)).toEqual([1, 0, 0, 0, -1, 0, 0, 0, -1]);
    expect(Array.from(list.matrices.slice(9, 18)).map((v) => Math.round(v * 1e12) / 1e12 + 0)).toEqual([0, -1, 0, 1, 0, 0, 0, 0, 1]);
  });

  it('refuses other shapes and quaternions that are not unit', () => {
    expect(() => rotationsFromQuaternionArray([6], new Float64Array(6), 'q.npy')).toThrow(expect.objectContaining({ code: 'ERR_TME_FORMAT', file: 'q.npy' }));
    expect(() => rotationsFromQuaternionArray([1, 4], Float64Array.of(1, 1, 0, 0))).toThrow(/norm 1.41421/);
  });
});

describe('readRotationList on the wrong file', () => {
  it('says a binary file is not a rotation list, and quotes at most 60 characters of a bad line', () => {
    expect(() => readRotationList('MAP \u0000\u0001\u0002 rest', 'relion', 'map.mrc')).toThrow(expect.objectContaining({ code: 'ERR_TME_FORMAT', file: 'map.mrc', message: expect.stringMatching(/^is binary, not a text rotation list/) }));
    const long = `words ${'x'.repeat(500)}`;
    let message = '';
    try { readRotationList(`${long}\n`, 'relion'); } catch (err) { message = (err as Error).message; }
    expect(message).toMatch(/header "words x+…" does not name relion columns/);
    expect(message.length).toBeLessThan(160);
  });
});
