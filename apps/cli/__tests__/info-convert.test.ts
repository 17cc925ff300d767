import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { readEm, readMrc, readMrcHeader } from '@tme/formats';
import { runConvert } from '../src/commands/convert';
import { runInfo, type StructureInfo, type VolumeInfo } from '../src/commands/info';
import { exitCodeFor, formatError } from '../src/format-error';

// commander 15 is ESM-only and jest 30 on Node 20 cannot load it: the actions are called directly, as main() would.
const MRC = '/work/shared/fixtures/mrc';
const PDB = path.join(__dirname, '..', '..', '..', 'packages', 'formats', '__tests__', 'fixtures', 'two-models.pdb');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-cli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(body: () => unknown): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true; });
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { err += String(c); return true; });
  try {
    await body();
    return { code: 0, out, err };
  } catch (x) {
    return { code: exitCodeFor(x), out, err: err + formatError(x, false) };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('tme info', () => {
  test('MRC text output: x, y, z order, voxel size, origin, mode, statistics from the data', async () => {
    const r = await run(() => runInfo(path.join(MRC, 'mode2_origin_nstart.mrc'), {}));
    expect(r.code).toBe(0);
    expect(r.out).toContain('MRC, mode 2 (float32), little-endian');
    expect(r.out).toMatch(/shape\s+x 8, y 6, z 4\n/);
    expect(r.out).toMatch(/voxel size\s+x 2.5, y 2.5, z 2.5 Å/);
    expect(r.out).toMatch(/origin\s+x 10, y 20, z 30 Å/);
    expect(r.out).toMatch(/nstart\s+x -4, y -3, z -2/);
    expect(r.out).toMatch(/ext. header\s+0 bytes/);
    expect(r.out).toMatch(/statistics\s+min 0, max 357, mean 178.5, std 113.123 \(from the data\)/);
  });

  test('--json for MRC (big-endian, extended header) and statistics not taken from the header', async () => {
    const r = await run(() => runInfo(path.join(MRC, 'mode2_float32_bigendian.mrc'), { json: true }));
    const info = JSON.parse(r.out) as VolumeInfo;
    expect(info.byteOrder).toBe('big');
    expect(info.shape).toEqual({ x: 8, y: 6, z: 4 });
    expect(info.statistics.mean).toBe(178.5);
    const x = JSON.parse((await run(() => runInfo(path.join(MRC, 'mode2_exthdr.mrc'), { json: true }))).out) as VolumeInfo;
    expect(x.extendedHeaderSize).toBe(256);
    expect(x.voxelSize).toEqual({ x: 1.5, y: 2, z: 2.5 });
    // a file whose header statistics lie: info reports the data's and a warning
    const bytes = new Uint8Array(fs.readFileSync(path.join(MRC, 'mode1_int16.mrc')));
    new DataView(bytes.buffer).setFloat32(4 * 21, 999, true); // DMEAN
    const liar = path.join(dir, 'liar.mrc');
    fs.writeFileSync(liar, bytes);
    const l = JSON.parse((await run(() => runInfo(liar, { json: true }))).out) as VolumeInfo;
    expect(l.statistics).toEqual({ min: -200, max: 157, mean: -21.5, std: expect.closeTo(113.1234, 3) as number });
    expect(l.mode).toBe(1);
  });

  test('PDB: atoms, chains, models, bounding box (gzipped too)', async () => {
    const gz = path.join(dir, 'm.pdb.gz');
    fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(PDB)));
    for (const file of [PDB, gz]) {
      const r = await run(() => runInfo(file, { json: true }));
      const s = JSON.parse(r.out) as StructureInfo;
      expect(s.atoms).toBe(6);
      expect(s.hetatms).toBe(2);
      expect(s.chains).toEqual(['A', 'B']);
      expect(s.models).toBe(2);
      expect(s.boundingBox.min).toEqual({ x: -5, y: -6, z: -7 });
      expect(s.boundingBox.max).toEqual({ x: 13.142, y: 6.258, z: 3.125 });
    }
    const t = await run(() => runInfo(PDB, {}));
    expect(t.out).toMatch(/atoms\s+6 \(2 HETATM\) in model 1/);
    expect(t.out).toMatch(/chains\s+2 \(A, B\)/);
  });

  test('bad input: one line, file first, exit 1', async () => {
    const r = await run(() => runInfo(path.join(MRC, 'truncated_data.mrc'), {}));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`tme: ${path.join(MRC, 'truncated_data.mrc')}: data block is 100 bytes but NX×NY×NZ = 8×6×4 in mode 2 needs 768 bytes`);
    const u = await run(() => runInfo(path.join(dir, 'x.tif'), {}));
    expect(u.code).toBe(1);
    expect(u.err).toMatch(/x.tif: unknown file type ".tif"/);
  });
});

describe('tme convert', () => {
  test('MRC → EM → MRC keeps values, voxel size; MRC → MRC keeps origin and nstart; output validates', () => {
    const em = path.join(dir, 'a.em');
    const back = path.join(dir, 'b.mrc');
    return run(() => {
      runConvert(path.join(MRC, 'mode1_int16.mrc'), em, {});
      runConvert(em, back, {});
    }).then((r) => {
      expect(r.code).toBe(0);
      expect(r.out).toContain(`wrote ${em}: x 8, y 6, z 4, EM float32`);
      const src = readMrc(path.join(MRC, 'mode1_int16.mrc'));
      expect(readEm(em).data).toEqual(src.data);
      const b = readMrc(back);
      expect(b.data).toEqual(src.data);
      expect(b.voxelSize).toEqual([2.5, 2.5, 2.5]);
      const v = spawnSync('/usr/bin/python3', ['-c', 'import mrcfile,sys; sys.exit(0 if mrcfile.validate(sys.argv[1]) else 1)', back], { encoding: 'utf8' });
      expect(v.status).toBe(0);
    });
  });

  test('MRC → MRC mode 12, origin and nstart kept; existing output needs --force', async () => {
    const out = path.join(dir, 'half.mrc');
    const r = await run(() => runConvert(path.join(MRC, 'mode2_origin_nstart.mrc'), out, { mode: '12' }));
    expect(r.code).toBe(0);
    const h = readMrc(out);
    expect(h.header.mode).toBe(12);
    expect(h.origin).toEqual([30, 20, 10]);
    expect(h.header.nstart).toEqual([-2, -3, -4]);
    expect(h.data).toEqual(readMrc(path.join(MRC, 'mode2_origin_nstart.mrc')).data); // integers ≤ 357 are exact in float16
    const again = await run(() => runConvert(path.join(MRC, 'mode2_float32.mrc'), out, {}));
    expect(again.code).toBe(1);
    expect(again.err).toBe(`tme: ${out}: output exists; use --force to replace it`);
    expect((await run(() => runConvert(path.join(MRC, 'mode2_float32.mrc'), out, { force: true }))).code).toBe(0);
    expect(readMrcHeader(out).mode).toBe(2);
    const stack = path.join(dir, 's.mrcs');
    await run(() => runConvert(path.join(MRC, 'mode2_stack.mrcs'), stack, {}));
    expect(readMrcHeader(stack).isImageStack).toBe(true);
  });

  test('bad options exit 2; bad input exits 1 and writes nothing', async () => {
    const m = await run(() => runConvert(path.join(MRC, 'mode2_float32.mrc'), path.join(dir, 'x.mrc'), { mode: '4' }));
    expect(m.code).toBe(2);
    expect(m.err).toBe('tme: Expected 2 or 12 for --mode but received "4" of type string');
    expect((await run(() => runConvert(path.join(MRC, 'mode2_float32.mrc'), path.join(dir, 'x.em'), { mode: '12' }))).code).toBe(2);
    const t = await run(() => runConvert(path.join(MRC, 'truncated_header.mrc'), path.join(dir, 't.mrc'), {}));
    expect(t.code).toBe(1);
    expect((t.err.match(/\n/g) ?? []).length).toBe(0);
    expect(fs.existsSync(path.join(dir, 't.mrc'))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
