/**
 * IEEE 754 half precision (MRC mode 12) by hand: decoding through a 65,536-entry table (built once, 256 KiB),
 * encoding with round-to-nearest-even, overflow to ±Infinity and subnormals, as numpy does.
 */
let table: Float32Array | undefined;

function decodeOne(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function float16Table(): Float32Array {
  if (table === undefined) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = decodeOne(h);
  }
  return table;
}

/** Decodes half-precision bit patterns into `out` (same length). */
export function decodeFloat16(bits: Uint16Array, out: Float32Array, outOffset = 0): void {
  const t = float16Table();
  for (let i = 0; i < bits.length; i++) out[outOffset + i] = t[bits[i]!]!;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The half-precision bit pattern nearest to `value` (ties to even). */
export function encodeFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1) === 1)) {
    m += 1;
    if (m === 0x400) { m = 0; e += 1; if (e >= 31) return sign | 0x7c00; }
  }
  return sign | (e << 10) | m;
}
