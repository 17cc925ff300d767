import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  DEFAULT_MRC_LABEL, TmeError, createVolume, encodeFloat16, decodeMrcHeaderFields, encodeMrcHeaderFields,
  readMrc, readMrcHeader, readMrcSlab, writeMrc, volumeStatistics,
} from '../src';
import { at, fixture, mrcfileValidate, python, tempDir } from './helpers';

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function ramp(nz: number, ny: number, nx: number, f: (z: number, y: number, x: number) => number): Float32Array {
  const d = new Float32Array(nz * ny * nx);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) d[(z * ny + y) * nx + x] = f(z, y, x);
  return d;
}

/** Copies a fixture and patches its header bytes. */
function patched(name: string, out: string, patch: (bytes: Uint8Array, view: DataView) => void): string {
  const bytes = new Uint8Array(fs.readFileSync(fixture(name)));
  patch(bytes, new DataView(bytes.buffer));
  const p = path.join(dir, out);
  fs.writeFileSync(p, bytes);
  return p;
}

describe('writeMrc', () => {
  test('mode 2: mrcfile validates it and reads back the same values, voxel size, origin, nstart', () => {
    const p = path.join(dir, 'w2.mrc');
    const vol = createVolume(ramp(6, 8, 10, (z, y, x) => 100 * z + 10 * y + x - 0.25), [6, 8, 10], [3, 2, 1.5], [7, 8, 9]);
    writeMrc(p, vol, { nstart: [-2, -3, -4] });
    expect(fs.statSync(p).size).toBe(1024 + 480 * 4);
    const v = mrcfileValidate(p);
    expect(v.output).toContain('File appears to be valid');
    expect(v.valid).toBe(true);
    const r = python(
      'import mrcfile,sys,json\nm=mrcfile.open(sys.argv[1])\nh=m.header\n' +
      'print(json.dumps([float(m.data[1,2,3]), m.data.shape, [float(m.voxel_size.z), float(m.voxel_size.y), float(m.voxel_size.x)], ' +
      '[float(h.origin.z), float(h.origin.y), float(h.origin.x)], [int(h.nzstart), int(h.nystart), int(h.nxstart)], int(h.ispg), ' +
      '[int(h.mapc), int(h.mapr), int(h.maps)], bool(m.is_volume()), float(h.rms), float(m.data.std())]))', p);
    expect(r.status).toBe(0);
    const [v123, shape, voxel, origin, nstart, ispg, maps, isVolume, rms, std] = JSON.parse(r.stdout) as unknown[];
    expect(v123).toBe(122.75);
    expect(shape).toEqual([6, 8, 10]);
    expect(voxel).toEqual([3, 2, 1.5]);
    expect(origin).toEqual([7, 8, 9]);
    expect(nstart).toEqual([-2, -3, -4]);
    expect(ispg).toBe(1);
    expect(maps).toEqual([1, 2, 3]);
    expect(isVolume).toBe(true);
    expect(Math.abs((rms as number) - (std as number)) / (std as number)).toBeLessThan(1e-6);

    const back = readMrc(p);
    expect(back.data).toEqual(vol.data);
    expect(back.voxelSize).toEqual([3, 2, 1.5]);
    expect(back.origin).toEqual([7, 8, 9]);
    expect(back.header.warnings).toEqual([]);
    expect(back.header.labels).toEqual([DEFAULT_MRC_LABEL]);
    expect(back.header.fields.nlabl).toBe(1);
    expect(back.header.fields.nversion).toBe(20140);
    expect(Array.from(back.header.fields.machst)).toEqual([0x44, 0x44, 0, 0]);
  });

  test('header bytes agree with the file mrcfile wrote for the same volume, except labels and nversion', () => {
    const src = readMrc(fixture('mode2_float32.mrc'));
    const p = path.join(dir, 'same.mrc');
    writeMrc(p, src, { labels: [src.header.labels[0]!] });
    const mine = new Uint8Array(fs.readFileSync(p));
    const theirs = new Uint8Array(fs.readFileSync(fixture('mode2_float32.mrc')));
    const a = decodeMrcHeaderFields(mine, 'little');
    const b = decodeMrcHeaderFields(theirs, 'little');
    // mrcfile 1.4.3 declares 20141; tme writes 20140 (what the brief and RELION use); everything else must match.
    b.nversion = 20140;
    // mrcfile pads its label with spaces, tme with NULs (both valid)
    a.labelSlots = b.labelSlots;
    expect(Buffer.from(encodeMrcHeaderFields(a)).equals(Buffer.from(encodeMrcHeaderFields(b)))).toBe(true);
    expect(Buffer.from(mine.subarray(1024)).equals(Buffer.from(theirs.subarray(1024)))).toBe(true);
  });

  test('mode 12: valid for mrcfile, values rounded to half precision, statistics of the stored values', () => {
    const p = path.join(dir, 'w12.mrc');
    const data = ramp(3, 4, 5, (z, y, x) => (x - 2) * 0.3 + y * 0.01 - z);
    writeMrc(p, createVolume(data, [3, 4, 5], 2), { mode: 12 });
    expect(fs.statSync(p).size).toBe(1024 + 60 * 2);
    expect(mrcfileValidate(p).valid).toBe(true);
    const back = readMrc(p);
    expect(back.header.mode).toBe(12);
    expect(back.header.warnings).toEqual([]);
    for (let i = 0; i < data.length; i++) {
      expect(Math.abs(back.data[i]! - data[i]!)).toBeLessThanOrEqual(Math.abs(data[i]!) * 2 ** -11 + 1e-7);
    }
    const r = python('import mrcfile,sys\nm=mrcfile.open(sys.argv[1])\nprint(m.data.dtype, float(m.data[1,2,3]))', p);
    expect(r.stdout.trim()).toBe(`float16 ${back.data[(1 * 4 + 2) * 5 + 3]}`);
  });

  test('float16 encoder: exact on halves, round-to-nearest-even, overflow and subnormals', () => {
    expect(encodeFloat16(123)).toBe(0x57b0);
    expect(encodeFloat16(1)).toBe(0x3c00);
    expect(encodeFloat16(-2)).toBe(0xc000);
    expect(encodeFloat16(65504)).toBe(0x7bff);
    expect(encodeFloat16(65520)).toBe(0x7c00);
    expect(encodeFloat16(2 ** -24)).toBe(1);
    expect(encodeFloat16(2 ** -26)).toBe(0);
    expect(encodeFloat16(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(encodeFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(encodeFloat16(NaN) & 0x7c00).toBe(0x7c00);
    // numpy agrees on a spread of values
    const values = [0.1, -3.14159, 1000.7, 6e-5, 3e-7, 60000, 0.33333];
    const r = python('import numpy as np,sys\nprint(" ".join(str(int(v)) for v in np.array([float(a) for a in sys.argv[1:]],dtype=np.float32).astype(np.float16).view(np.uint16)))', ...values.map(String));
    expect(r.stdout.trim().split(' ').map(Number)).toEqual(values.map(encodeFloat16));
  });

  test('integer input is converted; labels and image stacks', () => {
    const p = path.join(dir, 'int.mrcs');
    const data = new Int16Array([1, -2, 3, -4, 5, -6, 7, -8]);
    writeMrc(p, createVolume(data, [2, 2, 2], 4), { labels: ['first', 'second'], imageStack: true });
    const back = readMrc(p);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    expect(back.header.labels).toEqual(['first', 'second']);
    expect(back.header.isImageStack).toBe(true);
    expect(mrcfileValidate(p).valid).toBe(true);
  });

  test('bad volumes and options are rejected before anything is written', () => {
    const p = path.join(dir, 'bad.mrc');
    const vol = createVolume(new Float32Array(8), [2, 2, 2]);
    expect(() => writeMrc(p, vol, { mode: 1 as 2 })).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
    expect(() => writeMrc(p, { ...vol, data: new Float32Array(7) })).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
    expect(() => writeMrc(p, { ...vol, voxelSize: [0, 1, 1] })).toThrow(/voxelSize/);
    expect(() => writeMrc(p, vol, { labels: ['x'.repeat(81)] })).toThrow(/labels/);
    expect(fs.existsSync(p)).toBe(false);
    expect(() => writeMrc(path.join(dir, 'no', 'such', 'folder.mrc'), vol)).toThrow(expect.objectContaining({ code: 'ERR_TME_IO' }));
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('big-endian files of every mode, written by mrcfile', () => {
  test.each(['>i1', '>i2', '>u2', '>f2', '>f4'])('%s: swapped and converted', (dtype) => {
    const p = path.join(dir, `be_${dtype.slice(1)}.mrc`);
    const r = python('import mrcfile,numpy as np,sys\nz,y,x=np.mgrid[0:3,0:4,0:5]\n' +
      'a=(x+10*y+20*z-30).astype(sys.argv[2])\nm=mrcfile.new(sys.argv[1],overwrite=True)\nm.set_data(a)\nm.voxel_size=1.5\nm.close()', p, dtype);
    expect(r.stderr).toBe('');
    const v = readMrc(p);
    // numpy has no byte order for single bytes: mrcfile writes int8 data with a little-endian header.
    expect(v.header.byteOrder).toBe(dtype === '>i1' ? 'little' : 'big');
    expect(v.header.warnings).toEqual([]);
    expect(v.voxelSize).toEqual([1.5, 1.5, 1.5]);
    for (const [z, y, x] of [[0, 0, 0], [1, 2, 3], [2, 3, 4]] as const) {
      const expected = x + 10 * y + 20 * z - 30;
      expect(at(v, z, y, x)).toBe(dtype === '>u2' && expected < 0 ? expected + 65536 : expected);
    }
    const slab = readMrcSlab(p, 2, 1);
    expect(at(slab, 0, 3, 4)).toBe(4 + 30 + 40 - 30);
  });
});

describe('tolerated deviations and rejected headers', () => {
  test('zero machine stamp: byte order guessed from MODE, with a warning', () => {
    const le = patched('mode2_float32.mrc', 'stamp0.mrc', (b) => b.fill(0, 212, 216));
    const a = readMrc(le);
    expect(a.header.byteOrder).toBe('little');
    expect(at(a, 1, 2, 3)).toBe(123);
    expect(a.header.warnings.join('\n')).toMatch(/machine stamp 0x00 0x00 0x00 0x00 is not a valid one; byte order little-endian guessed/);
    const be = patched('mode2_float32_bigendian.mrc', 'stamp0be.mrc', (b) => b.fill(0, 212, 216));
    const b = readMrc(be);
    expect(b.header.byteOrder).toBe('big');
    expect(at(b, 1, 2, 3)).toBe(123);
    const wrong = patched('mode2_float32_bigendian.mrc', 'stampwrong.mrc', (b) => b.set([0x44, 0x44, 0, 0], 212));
    const w: string[] = [];
    expect(at(readMrc(wrong, { onWarning: (m) => w.push(m) }), 1, 2, 3)).toBe(123);
    expect(w.join()).toMatch(/says little-endian but MODE reads as big-endian/);
  });

  test('missing MAP id and wrong RMS: read, with warnings', () => {
    const p = patched('mode2_float32.mrc', 'nomap.mrc', (b, v) => { b.fill(0, 208, 212); v.setFloat32(216, 5, true); });
    const r = readMrc(p);
    expect(at(r, 1, 2, 3)).toBe(123);
    expect(r.header.warnings).toHaveLength(2);
    expect(r.header.warnings[0]).toMatch(/MAP id missing/);
    expect(r.header.warnings[1]).toMatch(/header RMS 5 differs from the data's standard deviation 113\.12/);
    // -1 means "not computed" (mrcfile's convention): no warning
    const q = patched('mode2_float32.mrc', 'rmsneg.mrc', (_b, v) => { v.setFloat32(216, -1, true); v.setFloat32(76, 0, true); v.setFloat32(80, -1, true); });
    expect(readMrc(q).header.warnings).toEqual([]);
  });

  test('old unsigned mode 0 files: IMOD stamp without the signed flag', () => {
    const p = patched('mode0_int8_neg.mrc', 'imod_u8.mrc', (_b, v) => { v.setInt32(152, 1146047817, true); v.setInt32(156, 0, true); });
    const u = readMrc(p, { verifyStatistics: false });
    expect(u.header.dataType).toBe('uint8');
    expect(at(u, 1, 2, 3)).toBe(23);
    expect(at(u, 0, 0, 0)).toBe(156); // -100 as an unsigned byte
    const s = patched('mode0_int8_neg.mrc', 'imod_s8.mrc', (_b, v) => { v.setInt32(152, 1146047817, true); v.setInt32(156, 1, true); });
    expect(at(readMrc(s), 0, 0, 0)).toBe(-100);
    expect(at(readMrc(p, { signedBytes: true }), 0, 0, 0)).toBe(-100);
  });

  test.each([
    ['negative NX', 0, -8, /header field NX is -8; dimensions must be positive/, 'ERR_TME_FORMAT'],
    ['zero NZ', 8, 0, /header field NZ is 0/, 'ERR_TME_FORMAT'],
    ['mode 4', 12, 4, /MRC mode 4 \(complex float32\) is not supported/, 'ERR_TME_UNSUPPORTED'],
    ['mode 7', 12, 7, /MODE is 7, which is not an MRC data mode/, 'ERR_TME_FORMAT'],
    ['negative NSYMBT', 92, -4, /NSYMBT is -4/, 'ERR_TME_FORMAT'],
    ['huge NY', 4, 1 << 30, /needs \d+ bytes/, 'ERR_TME_FORMAT'],
  ] as const)('%s is an error naming the file and field', (_name, offset, value, message, code) => {
    const p = patched('mode2_float32.mrc', `bad${offset}_${value}.mrc`, (_b, v) => v.setInt32(offset, value, true));
    let err: unknown;
    try { readMrc(p); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(TmeError);
    expect((err as TmeError).code).toBe(code);
    expect((err as TmeError).oneLine).toMatch(message);
    expect((err as TmeError).oneLine.startsWith(p + ': ')).toBe(true);
  });

  test('statistics accumulate in float64: large offsets keep their std', () => {
    const d = new Float32Array(200000);
    for (let i = 0; i < d.length; i++) d[i] = 1e6 + (i % 2);
    const s = volumeStatistics(d);
    expect(s.mean).toBe(1e6 + 0.5);
    expect(s.std).toBeCloseTo(0.5, 12);
    expect(readMrcHeader(fixture('mode2_float32.mrc')).shape).toEqual([4, 6, 8]);
  });
});
