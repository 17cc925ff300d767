import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Structure, TmeError, readStructure, structureBounds, structureChains } from '../src';
import { tempDir } from './helpers';

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const FIX = path.join(__dirname, 'fixtures');

/** BinaryCIF may store coordinates as float32 or fixed point: compare those to 1e-3 Å there. */
function expectCoords(actual: Float64Array, expected: number[], exact: boolean): void {
  if (exact) expect(Array.from(actual)).toEqual(expected);
  else Array.from(actual).forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-3));
}

function expectFirstModel(s: Structure, exact = true): void {
  // Model 1, first altlocs: N, CA(A), C, N(GLY), FE, O — CA(B) and CB(B) dropped because A came first in residue 1.
  expect(s.atomCount).toBe(6);
  expect(s.models).toBe(2);
  expect(s.modelNumbers).toEqual([1, 2]);
  expect(s.model).toBe(1);
  expect(s.atomName).toEqual(['N', 'CA', 'C', 'N', 'FE', 'O']);
  expectCoords(s.x, [11.104, 11.639, 13.142, -1.5, 1, -5], exact);
  expectCoords(s.y, [6.134, 6.071, 6.258, 2.25, 2, -6], exact);
  expectCoords(s.z, [-6.504, -5.147, -5.21, 3.125, 3, -7], exact);
  expect(s.element).toEqual(['N', 'C', 'C', 'N', 'FE', 'O']);
  expect(Array.from(s.occupancy)).toEqual([1, 0.6000000238418579, 1, 1, 1, 0.5]);
  expect(Array.from(s.bFactor)).toEqual([12.5, 10, 9.75, 20, 30, 40]);
  expect(s.chain).toEqual(['A', 'A', 'A', 'B', 'B', 'B']);
  expect(s.residueName).toEqual(['ALA', 'ALA', 'ALA', 'GLY', 'HEM', 'HOH']);
  expect(Array.from(s.residueNumber)).toEqual([1, 1, 1, 2, 101, 201]);
  expect(s.insertionCode[3]).toBe('A');
  expect(Array.from(s.isHetatm)).toEqual([0, 0, 0, 0, 1, 1]);
  expect(s.altLoc).toEqual(['', 'A', '', '', '', '']);
  expect(structureChains(s)).toEqual(['A', 'B']);
  if (exact) expect(structureBounds(s)).toEqual({ min: [-7, -6, -5], max: [3.125, 6.258, 13.142] });
}

describe('readStructure (Mol* parsers)', () => {
  test('PDB: first model, first altloc, HETATM, element, occupancy, B-factor', async () => {
    const s = await readStructure(path.join(FIX, 'two-models.pdb'));
    expect(s.format).toBe('pdb');
    expectFirstModel(s);
  });

  test('mmCIF with the same atoms gives the same structure', async () => {
    const s = await readStructure(path.join(FIX, 'two-models.cif'));
    expect(s.format).toBe('mmcif');
    expectFirstModel(s);
  });

  test('BinaryCIF (written by Mol*\'s cif2bcif from the mmCIF fixture) gives the same structure', async () => {
    const s = await readStructure(path.join(FIX, 'two-models.bcif'));
    expect(s.format).toBe('bcif');
    expectFirstModel(s, false);
  });

  test('gzipped input, chosen by content not by name', async () => {
    for (const name of ['two-models.pdb', 'two-models.cif']) {
      const p = path.join(dir, `${name}.data`);
      fs.writeFileSync(p, zlib.gzipSync(fs.readFileSync(path.join(FIX, name))));
      expectFirstModel(await readStructure(p));
    }
  });

  test('other models, all models, all altlocs', async () => {
    const p = path.join(FIX, 'two-models.pdb');
    const m2 = await readStructure(p, { model: 2 });
    expect(m2.atomCount).toBe(2);
    expect(Array.from(m2.x)).toEqual([21.104, 21.639]);
    expect((await readStructure(p, { model: 'all' })).atomCount).toBe(8);
    const alts = await readStructure(p, { altLoc: 'all' });
    expect(alts.atomCount).toBe(8);
    expect(alts.altLoc.slice(0, 5)).toEqual(['', 'A', 'B', '', 'B']);
    await expect(readStructure(p, { model: 3 })).rejects.toMatchObject({ code: 'ERR_TME_INVALID_OPTION' });
  });

  const real = '/work/main/packages/template/data/1tii.pdb';
  (fs.existsSync(real) ? test : test.skip)('a real PDB entry (1TII): atom count and coordinates agree with a plain column reader', async () => {
    const text = fs.readFileSync(real, 'latin1');
    const lines = text.split('\n').filter((l) => /^(ATOM  |HETATM)/.test(l));
    const s = await readStructure(real);
    const firstAlt = new Map<string, string>();
    const kept = lines.filter((l) => {
      const alt = l[16]!;
      if (alt === ' ') return true;
      const key = l.slice(21, 27);
      if (!firstAlt.has(key)) firstAlt.set(key, alt);
      return firstAlt.get(key) === alt;
    });
    expect(s.atomCount).toBe(kept.length);
    const last = kept[kept.length - 1]!;
    expect(s.x[s.atomCount - 1]).toBe(Number(last.slice(30, 38)));
    expect(s.z[0]).toBe(Number(kept[0]!.slice(46, 54)));
    expect(s.bFactor[10]).toBeCloseTo(Number(kept[10]!.slice(60, 66)), 5);
    expect(structureChains(s).length).toBeGreaterThanOrEqual(7);
  });

  test.each([
    ['empty', ''],
    ['text', 'hello world\nthis is not a structure\n'],
    ['cif without atoms', 'data_x\n_entry.id x\n'],
    ['bad cif', 'data_x\nloop_\n_atom_site.Cartn_x\n"unterminated\n'],
    ['binary', '\0\x01\x02garbage'],
    ['pdb without atoms', 'HEADER    NOTHING\nEND\n'],
    ['bad gzip', '\x1f\x8b\x08\x00garbage'],
    // a MessagePack map32 claiming ~2^32 entries: Mol*'s decoder would loop for minutes on it
    ['huge msgpack map', '\xdf\xa4\x01\x02\x03'],
  ])('%s → ERR_TME_FORMAT naming the file', async (name, content) => {
    const p = path.join(dir, `${name.replace(/ /g, '_')}.pdb`);
    fs.writeFileSync(p, Buffer.from(content, 'latin1'));
    let err: unknown;
    try { await readStructure(p); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(TmeError);
    expect((err as TmeError).code).toBe('ERR_TME_FORMAT');
    expect((err as TmeError).oneLine.startsWith(p + ': ')).toBe(true);
    expect((err as TmeError).oneLine).not.toMatch(/\n/);
  });

  test('missing file → ERR_TME_IO', async () => {
    await expect(readStructure(path.join(dir, 'nope.pdb'))).rejects.toMatchObject({ code: 'ERR_TME_IO' });
  });
});

describe('readStructure bounds', () => {
  it('refuses an mmCIF loop of thousands of columns at once (Mol* parses one quadratically: 40,000 took 1.6 s)', async () => {
    const columns = Array.from({ length: 40_000 }, (_, i) => `_atom_site.c${i}`).join('\n');
    {
      const file = path.join(dir, 'wide.cif');
      fs.writeFileSync(file, `data_x\nloop_\n${columns}\n${'1 '.repeat(40_001)}\n`);
      const t0 = Date.now();
      await expect(readStructure(file)).rejects.toMatchObject({ code: 'ERR_TME_FORMAT', file, message: expect.stringMatching(/^mmCIF line 2: a loop of 40000 columns/) });
      expect(Date.now() - t0).toBeLessThan(500);
    }
  });
});
