import { encodeImodModel, formatPoint2ModelText, imodPointOf } from '../src/imod-model';
import type { TomogramGeometry } from '../src/pick';
import { readImodStrict } from './helpers/imod-reader';
import { makePicks } from './helpers/picks';

const geometry: TomogramGeometry = { shape: [40, 80, 100], voxelSize: 13.48, name: 'TS_01' };

describe('encodeImodModel', () => {
  const picks = makePicks(10, geometry.shape);
  const bytes = encodeImodModel(picks, geometry, { sphereRadius: 7 });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  it('has the exact size of one object and one contour: 8 + 232 + 4 + 176 + 4 + 16 + 12·n + 4', () => {
    expect(bytes.length).toBe(8 + 232 + 4 + 176 + 4 + 16 + 12 * 10 + 4);
    expect(bytes.length).toBe(564); // the size relion-imod.md §6 measured for 10 points
  });

  it('puts each chunk id at its byte offset', () => {
    const at = (o: number): string => Buffer.from(bytes.subarray(o, o + 4)).toString('latin1');
    expect(at(0) + at(4)).toBe('IMODV1.2');
    expect(at(240)).toBe('OBJT'); // 0xF0, as in a point2model file
    expect(at(240 + 4 + 176)).toBe('CONT');
    expect(at(bytes.length - 4)).toBe('IEOF');
  });

  it('writes big-endian header fields: image size, counts, pixel size in nm, units', () => {
    expect([view.getInt32(8 + 128), view.getInt32(8 + 132), view.getInt32(8 + 136)]).toEqual([100, 80, 40]);
    expect(view.getInt32(8 + 140)).toBe(1); // objsize
    expect(view.getUint32(8 + 144)).toBe(0xc00); // model flags: Z from −0.5 | new to 3dmod
    expect(view.getFloat32(8 + 208)).toBeCloseTo(1.348, 6);
    expect(view.getInt32(8 + 212)).toBe(-9);
    expect(bytes[8 + 140 + 3]).toBe(1); // big-endian: the low byte is last
  });

  it('reads back through a strict port of IMOD’s read loop with the scattered-point flags and sphere size', () => {
    const model = readImodStrict(bytes);
    expect(model.objsize).toBe(1);
    expect(model.objects).toHaveLength(1);
    const obj = model.objects[0]!;
    expect(obj.flags).toBe(0x208);
    expect(obj.pdrawsize).toBe(7);
    expect(obj.contsize).toBe(1);
    expect(obj.contours[0]!.length).toBe(30);
    picks.forEach((p, i) => {
      const [x, y, z] = imodPointOf(p.position);
      expect(obj.contours[0]![3 * i]).toBeCloseTo(x, 4);
      expect(obj.contours[0]![3 * i + 1]).toBeCloseTo(y, 4);
      expect(obj.contours[0]![3 * i + 2]).toBeCloseTo(z, 4);
    });
  });

  it('puts a voxel centre at (i + 0.5, j + 0.5, k) in model coordinates', () => {
    expect(imodPointOf([3, 2, 1])).toEqual([1.5, 2.5, 3]);
  });

  it('the strict reader rejects a model whose counts do not match its chunks, or with bytes after IEOF', () => {
    const wrongCount = bytes.slice();
    new DataView(wrongCount.buffer).setInt32(8 + 140, 2);
    expect(() => readImodStrict(wrongCount)).toThrow(/objsize 2 but 1/);
    const trailing = new Uint8Array(bytes.length + 1);
    trailing.set(bytes);
    expect(() => readImodStrict(trailing)).toThrow(/trailing/);
  });

  it('writes an empty contour for no picks, still strict-readable', () => {
    const empty = encodeImodModel([], geometry);
    expect(empty.length).toBe(8 + 232 + 4 + 176 + 4 + 16 + 4);
    expect(readImodStrict(empty).objects[0]!.contours[0]!.length).toBe(0);
  });
});

describe('formatPoint2ModelText', () => {
  it('writes `object contour x y z` with 1-based object and contour and the .mod coordinates', () => {
    const text = formatPoint2ModelText([{ position: [5, 6, 7], rotation: new Float64Array(9), score: 1 }]);
    expect(text).toBe('1 1 7.500 6.500 5.000\n');
  });
});
