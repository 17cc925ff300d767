import * as fs from 'node:fs';
import * as path from 'node:path';
import { TmeError, createVolume, readEm, readEmHeader, readVolume, writeEm, writeVolume } from '../src';
import { at, fixture, python, tempDir } from './helpers';

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// An EM file written by numpy from the TOM toolbox layout (independent of tme's writer).
const NUMPY_EM = `
import numpy as np, sys
order, code, dtype = sys.argv[2], int(sys.argv[3]), sys.argv[4]
machine = 6 if order == '<' else 5
z, y, x = np.mgrid[0:4, 0:6, 0:8]
data = (x + 10 * y + 100 * z - 50).astype(order + dtype)
h = bytearray(512)
h[0] = machine; h[3] = code
h[4:16] = np.array([8, 6, 4], dtype=order + 'i4').tobytes()
h[16:16 + 9] = b'numpy ramp'[:9]
params = np.zeros(40, dtype=order + 'i4'); params[0] = 300; params[6] = 2500
h[96:256] = params.tobytes()
open(sys.argv[1], 'wb').write(bytes(h) + data.tobytes())
`;

describe('EM (TOM toolbox)', () => {
  test.each([
    ['<', 5, 'f4', 'little'], ['>', 5, 'f4', 'big'], ['<', 2, 'i2', 'little'], ['>', 2, 'i2', 'big'],
    ['<', 4, 'i4', 'little'], ['>', 9, 'f8', 'big'],
  ] as const)('reads numpy-written files: order %s type %d', (order, code, dtype, byteOrder) => {
    const p = path.join(dir, `np_${code}_${dtype}_${byteOrder}.em`);
    const r = python(NUMPY_EM, p, order, String(code), dtype);
    expect(r.stderr).toBe('');
    const v = readEm(p);
    expect(v.shape).toEqual([4, 6, 8]);
    expect(v.header.byteOrder).toBe(byteOrder);
    expect(v.header.dataTypeCode).toBe(code);
    expect(v.voxelSize).toEqual([2.5, 2.5, 2.5]);
    expect(v.header.parameters[0]).toBe(300);
    expect(v.header.comment).toBe('numpy ram');
    expect(at(v, 1, 2, 3)).toBe(123 - 50);
    expect(at(v, 3, 5, 7)).toBe(357 - 50);
    expect(v.header.warnings).toEqual([]);
  });

  test('write → read keeps values, shape and voxel size; numpy reads what tme wrote', () => {
    const src = readVolume(fixture('mode2_float32.mrc'));
    const p = path.join(dir, 'w.em');
    writeEm(p, src, { comment: 'tme test' });
    expect(fs.statSync(p).size).toBe(512 + 192 * 4);
    const back = readEm(p);
    expect(back.data).toEqual(src.data);
    expect(back.voxelSize).toEqual([2.5, 2.5, 2.5]);
    expect(back.header.comment).toBe('tme test');
    const r = python('import numpy as np,sys\nb=open(sys.argv[1],"rb").read()\nh=np.frombuffer(b[:512],dtype=np.uint8)\n' +
      'd=np.frombuffer(b[512:],dtype="<f4").reshape(4,6,8)\nprint(h[0],h[3],np.frombuffer(b[4:16],dtype="<i4").tolist(),np.frombuffer(b[96:256],dtype="<i4")[6],d[1,2,3])', p);
    expect(r.stdout.trim()).toBe('6 5 [8, 6, 4] 2500 123.0');
    // writeVolume/readVolume choose by extension
    const q = path.join(dir, 'v.EM');
    writeVolume(q, src);
    expect(readVolume(q).format).toBe('em');
    expect(readEmHeader(q).shape).toEqual([4, 6, 8]);
  });

  test('anisotropic voxels, bad headers and truncation are coded errors', () => {
    const vol = createVolume(new Float32Array(8), [2, 2, 2], [1, 1, 2]);
    expect(() => writeEm(path.join(dir, 'a.em'), vol)).toThrow(expect.objectContaining({ code: 'ERR_TME_UNSUPPORTED' }));
    const p = path.join(dir, 'np.em');
    python(NUMPY_EM, p, '<', '5', 'f4');
    const bytes = new Uint8Array(fs.readFileSync(p));
    const write = (name: string, f: (b: Uint8Array) => Uint8Array): string => {
      const q = path.join(dir, name);
      fs.writeFileSync(q, f(bytes.slice()));
      return q;
    };
    const expectCode = (file: string, code: string, msg: RegExp): void => {
      let err: unknown;
      try { readEm(file); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(TmeError);
      expect((err as TmeError).code).toBe(code);
      expect((err as TmeError).oneLine).toMatch(msg);
      expect((err as TmeError).oneLine.startsWith(file)).toBe(true);
    };
    expectCode(write('trunc.em', (b) => b.subarray(0, 600)), 'ERR_TME_FORMAT', /data block is 88 bytes but 8×6×4 of type 5 needs 768 bytes/);
    expectCode(write('short.em', (b) => b.subarray(0, 100)), 'ERR_TME_FORMAT', /shorter than the 512-byte header/);
    expectCode(write('type.em', (b) => { b[3] = 3; return b; }), 'ERR_TME_FORMAT', /data type code 3/);
    expectCode(write('cplx.em', (b) => { b[3] = 8; return b; }), 'ERR_TME_UNSUPPORTED', /complex64/);
    expectCode(write('neg.em', (b) => { new DataView(b.buffer).setInt32(8, -6, true); return b; }), 'ERR_TME_FORMAT', /size along y is -6/);
    expect(() => readVolume(path.join(dir, 'x.tif'))).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
  });
});
