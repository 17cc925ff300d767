import * as fs from 'node:fs';
import {
  TmeError, decodeMrcHeaderFields, encodeMrcHeaderFields, readMrc, readMrcExtendedHeader, readMrcHeader, readMrcSlab,
  volumeStatistics,
} from '../src';
import { at, fixture } from './helpers';

// values.txt of the fixtures, written by mrcfile 1.4.3: min, max, mean and value at (z=1, y=2, x=3).
const expected: Record<string, { type: string; min: number; max: number; mean: number; v123: number; std: number }> = {
  'mode2_float32.mrc': { type: 'float32', min: 0, max: 357, mean: 178.5, v123: 123, std: 113.12346 },
  'mode1_int16.mrc': { type: 'int16', min: -200, max: 157, mean: -21.5, v123: -77, std: 113.12346 },
  'mode6_uint16.mrc': { type: 'uint16', min: 1000, max: 1357, mean: 1178.5, v123: 1123, std: 113.12346 },
  'mode0_int8_neg.mrc': { type: 'int8', min: -100, max: 57, mean: -21.5, v123: 23, std: 52.885883 },
  'mode12_float16.mrc': { type: 'float16', min: 0, max: 357, mean: 178.5, v123: 123, std: 113.12346 },
  'mode2_float32_bigendian.mrc': { type: 'float32', min: 0, max: 357, mean: 178.5, v123: 123, std: 113.12346 },
  'mode2_exthdr.mrc': { type: 'float32', min: 0, max: 357, mean: 178.5, v123: 123, std: 113.12346 },
  'mode2_stack.mrcs': { type: 'float32', min: 0, max: 357, mean: 178.5, v123: 123, std: 113.12346 },
};

describe('MRC fixtures written by mrcfile', () => {
  test.each(Object.keys(expected))('%s: values, statistics and geometry', (name) => {
    const e = expected[name]!;
    const v = readMrc(fixture(name));
    expect(v.shape).toEqual([4, 6, 8]);
    expect(v.header.dataType).toBe(e.type);
    expect(at(v, 1, 2, 3)).toBe(e.v123);
    const s = volumeStatistics(v.data);
    expect(s.min).toBe(e.min);
    expect(s.max).toBe(e.max);
    expect(s.mean).toBeCloseTo(e.mean, 10);
    expect(s.std).toBeCloseTo(e.std, 4);
    // mrcfile wrote correct statistics: no warnings.
    expect(v.header.warnings).toEqual([]);
  });

  test('ramp is x fastest: value = x + 10y + 100z on every voxel of the float32 file', () => {
    const v = readMrc(fixture('mode2_float32.mrc'));
    for (let z = 0; z < 4; z++) for (let y = 0; y < 6; y++) for (let x = 0; x < 8; x++) {
      expect(at(v, z, y, x)).toBe(x + 10 * y + 100 * z);
    }
  });

  test('native dtype gives the file element types', () => {
    expect(readMrc(fixture('mode1_int16.mrc'), { dtype: 'native' }).data).toBeInstanceOf(Int16Array);
    expect(readMrc(fixture('mode6_uint16.mrc'), { dtype: 'native' }).data).toBeInstanceOf(Uint16Array);
    expect(readMrc(fixture('mode0_int8_neg.mrc'), { dtype: 'native' }).data).toBeInstanceOf(Int8Array);
    const h = readMrc(fixture('mode12_float16.mrc'), { dtype: 'native' });
    expect(h.data).toBeInstanceOf(Uint16Array);
    expect(at(h, 1, 2, 3)).toBe(0x57b0); // 123 in IEEE half precision
  });

  test('voxel size, origin and header fields', () => {
    const a = readMrcHeader(fixture('mode2_float32.mrc'));
    expect(a.voxelSize).toEqual([2.5, 2.5, 2.5]);
    expect(a.byteOrder).toBe('little');
    expect(a.mode).toBe(2);
    expect(a.fields.nversion).toBe(20141);
    expect(a.fields.map).toBe('MAP ');
    expect(a.labels).toHaveLength(1);
    expect(a.labels[0]).toMatch(/^Created by mrcfile.py +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(a.fields.labelSlots[0]!.startsWith('Created by mrcfile.py')).toBe(true);
    expect(a.isImageStack).toBe(false);

    const o = readMrc(fixture('mode2_origin_nstart.mrc'));
    expect(o.origin).toEqual([30, 20, 10]);
    expect(o.header.nstart).toEqual([-2, -3, -4]);
    expect(o.header.fields.origin).toEqual([10, 20, 30]);

    const x = readMrc(fixture('mode2_exthdr.mrc'));
    expect(x.voxelSize).toEqual([2.5, 2, 1.5]);
    expect(x.header.extendedHeaderSize).toBe(256);
    expect(x.header.dataOffset).toBe(1280);
    expect(x.header.fields.exttyp).toBe('MRCO');
    const ext = readMrcExtendedHeader(fixture('mode2_exthdr.mrc'));
    expect(ext.byteLength).toBe(256);
    expect(ext.every((b) => b === 0)).toBe(true);
    expect(readMrcExtendedHeader(fixture('mode2_float32.mrc')).byteLength).toBe(0);

    const b = readMrcHeader(fixture('mode2_float32_bigendian.mrc'));
    expect(b.byteOrder).toBe('big');
    expect(Array.from(b.fields.machst)).toEqual([0x11, 0x11, 0, 0]);

    const s = readMrcHeader(fixture('mode2_stack.mrcs'));
    expect(s.isImageStack).toBe(true);
    expect(s.voxelSize).toEqual([3, 3, 3]);
    expect(s.fields.ispg).toBe(0);
  });

  test.each([
    'mode2_float32.mrc', 'mode1_int16.mrc', 'mode6_uint16.mrc', 'mode0_int8_neg.mrc', 'mode12_float16.mrc',
    'mode2_float32_bigendian.mrc', 'mode2_origin_nstart.mrc', 'mode2_exthdr.mrc', 'mode2_stack.mrcs',
  ])('%s: header decode → encode is byte-for-byte', (name) => {
    const raw = new Uint8Array(fs.readFileSync(fixture(name))).subarray(0, 1024);
    const h = readMrcHeader(fixture(name));
    expect(Buffer.from(encodeMrcHeaderFields(h.fields, h.byteOrder)).equals(Buffer.from(raw))).toBe(true);
    expect(Buffer.from(encodeMrcHeaderFields(decodeMrcHeaderFields(raw, h.byteOrder), h.byteOrder)).equals(Buffer.from(raw))).toBe(true);
  });

  test('slabs: only the asked z-sections, origin moved along z', () => {
    const full = readMrc(fixture('mode2_origin_nstart.mrc'));
    const slab = readMrcSlab(fixture('mode2_origin_nstart.mrc'), 1, 2);
    expect(slab.shape).toEqual([2, 6, 8]);
    expect(slab.origin).toEqual([30 + 2.5, 20, 10]);
    expect(Array.from(slab.data)).toEqual(Array.from(full.data.subarray(48, 48 * 3)));
    expect(at(slab, 0, 2, 3)).toBe(123);
    const be = readMrcSlab(fixture('mode2_float32_bigendian.mrc'), 3, 1);
    expect(at(be, 0, 5, 7)).toBe(357);
    const half = readMrcSlab(fixture('mode12_float16.mrc'), 2, 2);
    expect(at(half, 1, 0, 0)).toBe(300);
    expect(() => readMrcSlab(fixture('mode2_float32.mrc'), 3, 2)).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
    expect(() => readMrcSlab(fixture('mode2_float32.mrc'), -1, 1)).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
  });

  test('truncated files are rejected with a coded error naming the file and the problem', () => {
    const check = (name: string, pattern: RegExp): void => {
      let err: unknown;
      try { readMrc(fixture(name)); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(TmeError);
      const t = err as TmeError;
      expect(t.code).toBe('ERR_TME_FORMAT');
      expect(t.file).toBe(fixture(name));
      expect(t.oneLine).toMatch(pattern);
      expect(t.oneLine).not.toMatch(/\n/);
      expect(t.oneLine.startsWith(fixture(name))).toBe(true);
    };
    check('truncated_data.mrc', /data block is 100 bytes but NX×NY×NZ = 8×6×4 in mode 2 needs 768 bytes/);
    check('truncated_header.mrc', /500 bytes, shorter than the 1024-byte header/);
    expect(() => readMrc('/nonexistent/x.mrc')).toThrow(expect.objectContaining({ code: 'ERR_TME_IO' }));
  });
});
