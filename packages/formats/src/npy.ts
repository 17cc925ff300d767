import { TmeError } from './errors';

/** A numeric NumPy array read from a .npy file, as float64 in C (row-major) order. */
export interface NpyArray {
  shape: number[];
  data: Float64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];  // \x93NUMPY

/**
 * Parses a .npy file (format versions 1–3) holding a little- or big-endian float32/float64 or int32/int64 array,
 * C or Fortran order: what pyTME's rotation sets and most numeric exports are. Other dtypes (objects, structured
 * arrays, complex) are refused with the dtype named.
 */
export function parseNpy(bytes: Uint8Array, file?: string): NpyArray {
  const bad = (why: string): TmeError => new TmeError('ERR_TME_FORMAT', `not a numeric .npy array: ${why}`, { file });
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw bad('the file does not start with \\x93NUMPY');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw bad(`format version ${major} is not 1, 2 or 3`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLength > bytes.length) throw bad('the header runs past the end of the file');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad(`unreadable header ${header.trim()}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (!shape.every((n) => Number.isInteger(n) && n >= 0)) throw bad(`shape (${shapeText})`);
  const m = /^([<>|=])([fi])(\d+)$/.exec(descr);
  if (!m || !((m[2] === 'f' && (m[3] === '4' || m[3] === '8')) || (m[2] === 'i' && (m[3] === '4' || m[3] === '8')))) {
    throw bad(`dtype '${descr}' (expected float32, float64, int32 or int64)`);
  }
  const little = m[1] !== '>';
  const size = Number(m[3]);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  if (offset + count * size > bytes.length) throw bad(`${count} values of ${size} bytes do not fit in the file`);
  const raw = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const at = offset + i * size;
    raw[i] = m[2] === 'f'
      ? (size === 4 ? view.getFloat32(at, little) : view.getFloat64(at, little))
      : (size === 4 ? view.getInt32(at, little) : Number(view.getBigInt64(at, little)));
  }
  if (fortran === 'False' || shape.length < 2) return { shape, data: raw };
  // Fortran order: the first index varies fastest; reorder to C order.
  const data = new Float64Array(count);
  const strides = shape.map((_, a) => shape.slice(0, a).reduce((p, n) => p * n, 1));
  const index = new Array<number>(shape.length).fill(0);
  for (let c = 0; c < count; c++) {
    let f = 0;
    for (let a = 0; a < shape.length; a++) f += index[a]! * strides[a]!;
    data[c] = raw[f]!;
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++index[a]! < shape[a]!) break;
      index[a] = 0;
    }
  }
  return { shape, data };
}
