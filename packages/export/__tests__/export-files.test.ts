import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVolume, isTmeError, parseStar, readMrc } from '@tme/formats';
import { exportDynamo, exportImod, exportRelion, exportRelion5, extractSubtomogram, missingWedgeVolume, type TomogramGeometry } from '../src';
import { readImodStrict } from './helpers/imod-reader';
import { makePicks } from './helpers/picks';

const geometry: TomogramGeometry = { shape: [32, 40, 48], voxelSize: 7.5, name: 'tomoA' };

function tomogram() {
  const data = new Float32Array(32 * 40 * 48);
  for (let i = 0; i < data.length; i += 1) data[i] = Math.cos(i * 0.11) * 3 + (i % 5);
  return createVolume(data, geometry.shape, geometry.voxelSize);
}

describe('export to files', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-export-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('exportRelion writes one MRC per pick with the extracted, normalised box, the wedge and the STAR', () => {
    const tomo = tomogram();
    const picks = makePicks(6, geometry.shape, 5);
    const s = exportRelion(picks, tomo, geometry, { outDir: dir, box: 16, tiltRange: [-50, 65], invert: true });
    expect(s.written + s.skipped).toBe(6);
    const star = parseStar(fs.readFileSync(path.join(dir, 'particles.star'), 'utf8'));
    expect(star.blocks.map((b) => [b.name, b.version])).toEqual([['optics', '30001'], ['particles', '30001']]);
    const rows = star.blocks[1]!.loops[0]!.rows;
    expect(rows).toHaveLength(s.written);
    for (const row of rows) {
      const sub = readMrc(path.join(dir, row[0]!));
      expect(sub.shape).toEqual([16, 16, 16]);
      expect(sub.voxelSize).toEqual([7.5, 7.5, 7.5]);
      const i = Number(/_(\d+)\.mrc$/.exec(row[0]!)![1]) - 1;
      const expected = extractSubtomogram(tomo, picks[i]!.position, { box: 16, invert: true });
      if (expected.status === 'skipped') throw new Error('unexpected');
      expect(Array.from(sub.data)).toEqual(Array.from(expected.data));
    }
    const wedge = readMrc(path.join(dir, 'Subtomograms', 'tomoA_wedge.mrc'));
    expect(Array.from(wedge.data)).toEqual(Array.from(missingWedgeVolume(16, [-50, 65])));
  });

  it('refuses a tomogram that does not match the geometry, and existing outputs without force', () => {
    const picks = makePicks(2, geometry.shape);
    expect(() => exportRelion(picks, createVolume(new Float32Array(8), [2, 2, 2]), geometry, { outDir: dir, box: 8 })).toThrow(/differs from the geometry/);
    exportImod(picks, geometry, { outDir: dir });
    let err: unknown;
    try { exportImod(picks, geometry, { outDir: dir }); } catch (e) { err = e; }
    expect(isTmeError(err, 'ERR_TME_EXISTS')).toBe(true);
    expect(() => exportImod(picks, geometry, { outDir: dir, force: true })).not.toThrow();
    expect(readImodStrict(fs.readFileSync(path.join(dir, 'picks.mod'))).objects[0]!.contours[0]!.length).toBe(6);
  });

  it('exportRelion5 and exportDynamo write their files', () => {
    const picks = makePicks(4, geometry.shape);
    const r5 = exportRelion5(picks, geometry, { outDir: dir, binning: 2, tomogramsStar: true });
    expect(r5.files.map((f) => path.basename(f))).toEqual(['particles.star', 'tomograms.star']);
    const star = parseStar(fs.readFileSync(path.join(dir, 'particles.star'), 'utf8'));
    expect(star.blocks.map((b) => b.version)).toEqual(['50001', '50001']);
    exportDynamo(picks, { outDir: dir });
    expect(fs.readFileSync(path.join(dir, 'picks.tbl'), 'utf8').trim().split('\n')).toHaveLength(4);
  });

  it('rejects invalid picks and names with a clear message', () => {
    const bad = [{ position: [1, 2, Number.NaN] as const, rotation: new Float64Array(9), score: 1 }];
    expect(() => exportDynamo(bad, { outDir: dir })).toThrow(/pick 0: position/);
    expect(() => exportRelion5(makePicks(1, geometry.shape), { ...geometry, name: 'a b' }, { outDir: dir })).toThrow(/tomogram name/);
  });
});
