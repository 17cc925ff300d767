import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAnglesTsv, sampleRotations, angleBetween, rotationAt } from '@tme/rotations';
import { runAngles, type AnglesCliOptions } from '../src/commands/angles';
import { exitCodeFor, formatError } from '../src/format-error';

// commander 15 is ESM-only and jest cannot load it, so the action is called with the options commander would pass.
function tme(o: AnglesCliOptions): { code: number; out: string; err: string } {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  try {
    runAngles(o);
    return { code: 0, out, err: '' };
  } catch (e) {
    return { code: exitCodeFor(e), out, err: formatError(e, false) };
  } finally {
    spy.mockRestore();
  }
}

describe('tme angles', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-angles-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('writes the 15° set as angles.tsv and prints the count and the measured covering', () => {
    const file = path.join(dir, 'angles.tsv');
    const r = tme({ angularStep: '15', output: file });
    expect(r.code).toBe(0);
    const set = sampleRotations({ angularStep: 15 });
    expect(r.out).toMatch(new RegExp(`^${set.count} rotations, C1, step 15°: measured covering ${set.coveringAngle.toFixed(2)}°`));
    const back = parseAnglesTsv(fs.readFileSync(file, 'utf8'), file);
    expect(back.count).toBe(set.count);
    for (let i = 0; i < set.count; i += 97) expect(angleBetween(rotationAt(back, i), rotationAt(set, i))).toBeLessThan(2e-5);
    expect(fs.readdirSync(dir)).toEqual(['angles.tsv']); // no temporary file left
  });

  it('writes an asymmetric unit for --symmetry', () => {
    const file = path.join(dir, 'c5.tsv');
    const r = tme({ angularStep: '20', symmetry: 'c5', output: file });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ C5, step 20°/);
    expect(parseAnglesTsv(fs.readFileSync(file, 'utf8')).count).toBe(sampleRotations({ angularStep: 20, symmetry: 'C5', measure: false }).count);
  });

  it('refuses to replace a file without --force (exit 1), bad steps and symmetries are usage errors (exit 2)', () => {
    const file = path.join(dir, 'angles.tsv');
    fs.writeFileSync(file, 'keep');
    const exists = tme({ angularStep: '30', output: file });
    expect(exists.code).toBe(1);
    expect(exists.err).toBe(`tme: ${file}: exists (use --force to replace it)`);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep');
    expect(tme({ angularStep: '30', output: file, force: true }).code).toBe(0);
    const bad = tme({ angularStep: 'ten', output: path.join(dir, 'x.tsv') });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/Expected a number of degrees for --angular-step but received "ten"/);
    const fine = tme({ angularStep: '1', output: path.join(dir, 'x.tsv') });
    expect(fine.code).toBe(2);
    expect(fine.err).toBe('tme: Expected a number of degrees from 2 to 180 for --angular-step but received 1 of type number');
    expect(tme({ angularStep: '10', symmetry: 'Q', output: path.join(dir, 'x.tsv') }).code).toBe(2);
    expect(tme({ angularStep: '10', output: path.join(dir, 'missing', 'x.tsv') }).err).toMatch(/folder does not exist/);
  });
});
