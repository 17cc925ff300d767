import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TmeError, type Zyx } from '@tme/formats';
import { matrixToRelionEuler, quaternionToMatrix, randomQuaternion, seededRandom } from '@tme/rotations';
import { resolveSearchOptions, type SearchInput } from '../src';
import { readPriorFile } from '../src/priors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-priors-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
};
const target = { shape: [40, 60, 80] as Zyx, voxelSize: [5, 5, 5] as Zyx };

/** The one-line refusal a prior file gets. */
function refusal(file: string): string {
  try {
    readPriorFile(file, target);
  } catch (e) {
    expect(e).toBeInstanceOf(TmeError);
    expect((e as TmeError).code).toBe('ERR_TME_FORMAT');
    expect((e as TmeError).file).toBe(file);
    expect((e as TmeError).oneLine).not.toMatch(/\n/);
    return (e as TmeError).oneLine;
  }
  throw new Error(`expected ${file} to be refused`);
}

test('a table: positions x y z in voxels and the vector vx vy vz, stored (z, y, x), in any column order', () => {
  const file = write('p.tsv', '# membrane normals\nvz\tx\ty\tz\tvx\tvy\n1\t10\t20\t30\t0\t0\n0.5 11 21 31 0.5 0\n');
  const t = readPriorFile(file, target);
  expect(Array.from(t.positions)).toEqual([30, 20, 10, 31, 21, 11]);
  expect(Array.from(t.directions)).toEqual([1, 0, 0, 0.5, 0, 0.5]);
});

test('a STAR of tme\'s own picks gives each pick\'s position and the direction its rotation turns the template\'s z axis to', () => {
  const random = seededRandom(5);
  const rows: string[] = [];
  const expected: number[][] = [];
  for (let i = 0; i < 20; i++) {
    const r = quaternionToMatrix(randomQuaternion(random));
    const [rot, tilt, psi] = matrixToRelionEuler(r);
    const at = [3 + i, 7 + 2 * i, 11 + i];
    rows.push(`${at[2]} ${at[1]} ${at[0]} ${rot} ${tilt} ${psi}`);
    expected.push([r[8] as number, r[5] as number, r[2] as number]);
  }
  const file = write('picks.star', `# version 30001\n\ndata_particles\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnCoordinateZ #3\n_rlnAngleRot #4\n_rlnAngleTilt #5\n_rlnAnglePsi #6\n${rows.join('\n')}\n`);
  const t = readPriorFile(file, target);
  for (let i = 0; i < 20; i++) {
    expect(Array.from(t.positions.subarray(3 * i, 3 * i + 3))).toEqual([3 + i, 7 + 2 * i, 11 + i]);
    for (let a = 0; a < 3; a++) expect(t.directions[3 * i + a]).toBeCloseTo(expected[i]![a]!, 9);
  }
});

test('RELION 5 centred Å coordinates less their origins, and explicit tmeVector columns', () => {
  const file = write('r5.star', 'data_particles\n\nloop_\n_rlnCenteredCoordinateXAngst\n_rlnCenteredCoordinateYAngst\n_rlnCenteredCoordinateZAngst\n_rlnOriginXAngst\n_rlnOriginYAngst\n_rlnOriginZAngst\n_tmeVectorX\n_tmeVectorY\n_tmeVectorZ\n10 -20 0 5 0 0 1 0 0\n');
  const t = readPriorFile(file, target);
  // x: 10/5 + 80/2 − 5/5; y: −20/5 + 60/2; z: 0 + 40/2.
  expect(Array.from(t.positions)).toEqual([20, 26, 41]);
  expect(Array.from(t.directions)).toEqual([0, 0, 1]);
});

test('bad prior files are refused in one line naming the file and the line', () => {
  expect(refusal(write('a.tsv', 'x y z vx vy\n1 2 3 0 1\n'))).toMatch(/a\.tsv: line 1: no column vz/);
  expect(refusal(write('b.tsv', 'x y z vx vy vz\n1 2 3 0 0 1\n\n4 5 6 0 0 0\n'))).toMatch(/b\.tsv: line 4: the vector has zero length/);
  expect(refusal(write('c.tsv', 'x y z vx vy vz\n1 2 nan 0 0 1\n'))).toMatch(/c\.tsv: line 2: z is NaN, not a finite number/);
  expect(refusal(write('d.tsv', 'x y z vx vy vz\n1 2 3 0 0 one\n'))).toMatch(/d\.tsv: line 2: vz is NaN/);
  expect(refusal(write('e.tsv', 'x y z vx vy vz\n1 2 3 0 1\n'))).toMatch(/e\.tsv: line 2: 5 values, the header names 6 columns/);
  expect(refusal(write('f.tsv', '# nothing\n'))).toMatch(/f\.tsv: holds no priors/);
  const star = (rows: string, labels = '_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_rlnAngleTilt\n_rlnAnglePsi\n'): string =>
    `data_particles\n\nloop_\n${labels}${rows}`;
  expect(refusal(write('g.star', star('1 2 3 90\n', '_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_rlnAngleTilt\n')))).toMatch(/g\.star: line 7: no column _rlnAnglePsi/);
  expect(refusal(write('h.star', star('1 2 3 90 0\n1 2 3 nan 0\n')))).toMatch(/h\.star: line 10: the direction of _rlnAngleTilt, _rlnAnglePsi is NaN/);
  expect(refusal(write('i.star', star('1 2 3 0 0 0\n', '_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_tmeVectorX\n_tmeVectorY\n_tmeVectorZ\n')))).toMatch(/i\.star: line 10: the vector has zero length/);
  expect(refusal(write('j.star', 'data_particles\n\nloop_\n_rlnAngleTilt\n_rlnAnglePsi\n1 2\n'))).toMatch(/j\.star: line 3: no column _rlnCoordinateX or _rlnCenteredCoordinateXAngst/);
});

describe('the prior flags', () => {
  const base: SearchInput = { target: 't.mrc', template: 'x.mrc', angularStep: 30 };
  const refused = (input: Partial<SearchInput>): string => {
    try {
      resolveSearchOptions({ ...base, ...input } as SearchInput);
    } catch (e) {
      expect((e as TmeError).code).toBe('ERR_TME_INVALID_OPTION');
      return (e as TmeError).message;
    }
    throw new Error('expected a refusal');
  };
  it.each([
    [{ priorCone: 20 }, 'Expected it only with --priors <file> for --prior-cone but received 20'],
    [{ priorAxis: 'x' as const }, 'Expected it only with --priors <file> for --prior-axis'],
    [{ priors: 'p.tsv', priorRadius: 30 }, 'Expected a cone half-angle in (0, 180] degrees for --prior-cone but received nothing'],
    [{ priors: 'p.tsv', priorCone: 200, priorRadius: 30 }, 'for --prior-cone but received 200'],
    [{ priors: 'p.tsv', priorCone: 20 }, 'Expected a radius > 0 Å around each prior for --prior-radius'],
    [{ priors: 'p.tsv', priorCone: 20, priorRadius: 30, priorAxis: 'w' as never }, 'Expected z, y or x (the template axis the vectors give) for --prior-axis but received "w"'],
    [{ priors: 'p.tsv', priorCone: 20, priorRadius: 30, background: 'rotation-stats' as const }, 'for --background but received "rotation-stats"'],
  ])('%j', (input, message) => {
    expect(refused(input)).toContain(message);
  });

  test('a prior file is made absolute and the axis defaults to z', () => {
    const o = resolveSearchOptions({ ...base, priors: 'p.tsv', priorCone: 20, priorRadius: 30 }, '/data');
    expect(o).toMatchObject({ priors: '/data/p.tsv', priorCone: 20, priorRadius: 30, priorAxis: 'z' });
  });
});
