import { parseNpy } from '../src/npy';

/** A .npy as NumPy writes it: magic, version, header padded to 64 bytes, then the data. */
function npy(descr: string, fortran: boolean, shape: number[], body: Buffer, version = 1): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const prefix = version === 1 ? 10 : 12;
  header += ' '.repeat(63 - ((prefix + header.length) % 64)) + '\n';
  const head = Buffer.alloc(prefix);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  return new Uint8Array(Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

function doubles(values: number[], little = true): Buffer {
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => (little ? b.writeDoubleLE(v, 8 * i) : b.writeDoubleBE(v, 8 * i)));
  return b;
}

describe('parseNpy', () => {
  it('reads little- and big-endian float64, float32 and int32 in C order', () => {
    expect(parseNpy(npy('<f8', false, [2, 3], doubles([1, 2, 3, 4, 5, 6.5])))).toEqual({ shape: [2, 3], data: Float64Array.of(1, 2, 3, 4, 5, 6.5) });
    expect(parseNpy(npy('>f8', false, [3], doubles([-1, 0.25, 9], false))).data).toEqual(Float64Array.of(-1, 0.25, 9));
    const f4 = Buffer.alloc(8);
    f4.writeFloatLE(1.5, 0);
    f4.writeFloatLE(-2, 4);
    expect(parseNpy(npy('<f4', false, [2], f4)).data).toEqual(Float64Array.of(1.5, -2));
    const i4 = Buffer.alloc(8);
    i4.writeInt32LE(-7, 0);
    i4.writeInt32LE(12, 4);
    expect(parseNpy(npy('<i4', false, [1, 2], i4, 2)).data).toEqual(Float64Array.of(-7, 12));
  });

  it('reorders Fortran order to C order', () => {
    // [[1, 2, 3], [4, 5, 6]] stored column by column
    expect(parseNpy(npy('<f8', true, [2, 3], doubles([1, 4, 2, 5, 3, 6]))).data).toEqual(Float64Array.of(1, 2, 3, 4, 5, 6));
  });

  it('refuses what is not a numeric array, naming the file and why', () => {
    expect(() => parseNpy(new TextEncoder().encode('rot tilt psi\n0 0 0\n'), 'set.npy')).toThrow(expect.objectContaining({ code: 'ERR_TME_FORMAT', file: 'set.npy', message: expect.stringMatching(/NUMPY/) }));
    expect(() => parseNpy(npy('|O', false, [2], Buffer.alloc(16)))).toThrow(/dtype '\|O'/);
    expect(() => parseNpy(npy('<c16', false, [1], Buffer.alloc(16)))).toThrow(/dtype '<c16'/);
    expect(() => parseNpy(npy('<f8', false, [4], doubles([1, 2])))).toThrow(/do not fit/);
  });
});
