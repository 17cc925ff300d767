// A seeded mutator: the same (seed, target, case) always gives the same input, so a failing case is replayed from
// its number alone. Byte-level damage for binary formats, token-level damage for text: numbers swapped for the
// values that break size arithmetic (1e30, 2^53+1, NaN, −0, huge counts), structure characters inserted, chunks
// deleted, repeated (inputs grow to at most 1 MiB) or cut off.
'use strict';
// mulberry32, as everywhere in tme.
const { seededRandom: rng } = require('@tme/rotations');

function hash(...parts) {
  let h = 2166136261;
  for (const c of parts.join('|')) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

const NUMBERS = ['0', '-0', '-1', '1e30', '-1e300', '1e308', '1e-45', 'NaN', 'nan', 'Infinity', '-inf', '9007199254740993',
  '99999999999999999999', '4294967296', '2147483648', '65536', '0x10', '1e12', '', '.', '-', '+', 'e5', '3.'];
const TOKENS = ['<', '>', '</', '"', "'", '=', '\n', '\r\n', '\t', ' ', '#', '[', ']', 'data_', 'loop_', '_rln', '_', ';', ',',
  '[ZValue = 0]', 'TiltAngle = ', 'PixelSpacing = ', '<Node X="0" Y="0" Z="1000000" Value="1"/>', '<Angles>', '&amp;', '&#x0;',
  '\u0000', '\uFFFD', 'ATOM  ', 'HETATM', 'END', 'MODEL', '_atom_site.', '\\'];
const INT32 = [0, -1, 1, 0x7fffffff, -0x80000000, 0x10000, 65535, 1024, 2 ** 24];
const FLOAT32 = [0, -1, 1e30, -1e30, NaN, Infinity, 1e-40, 3.4e38];
const MAX_BYTES = 1 << 20;

function mutate(seed, bytes, isText) {
  const random = rng(seed);
  const int = (n) => Math.floor(random() * n);
  let b = Buffer.from(bytes);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const op = int(isText ? 7 : 6);
    const at = b.length > 0 ? int(b.length) : 0;
    switch (op) {
      case 0: // flip bits
        for (let k = 0; k < 1 + int(8) && b.length > 0; k++) b[int(b.length)] ^= 1 << int(8);
        break;
      case 1: { // an interesting machine word (headers: sizes, modes, offsets)
        if (b.length < 4) break;
        const o = int(b.length >> 2) << 2;
        if (random() < 0.5) b.writeInt32LE(INT32[int(INT32.length)], o);
        else b.writeFloatLE(FLOAT32[int(FLOAT32.length)], o);
        break;
      }
      case 2: // delete a chunk
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(64)))]);
        break;
      case 3: { // repeat a chunk many times
        const len = 1 + int(Math.min(256, Math.max(1, b.length - at)));
        const chunk = b.subarray(at, at + len);
        const times = 1 + int(random() < 0.2 ? 5000 : 8);
        const grown = Buffer.concat([b.subarray(0, at), ...Array(times).fill(chunk), b.subarray(at)]);
        b = grown.length > MAX_BYTES ? grown.subarray(0, MAX_BYTES) : grown;
        break;
      }
      case 4: // cut off
        b = b.subarray(0, at);
        break;
      case 5: { // insert a structure token
        const t = Buffer.from(TOKENS[int(TOKENS.length)]);
        b = Buffer.concat([b.subarray(0, at), t, b.subarray(at)]);
        break;
      }
      case 6: { // replace a number in the text
        const s = b.toString('latin1');
        const found = [...s.matchAll(/-?\d+(\.\d*)?([eE][-+]?\d+)?/g)];
        if (found.length === 0) break;
        const m = found[int(found.length)];
        const v = NUMBERS[int(NUMBERS.length)];
        b = Buffer.from(s.slice(0, m.index) + v + s.slice(m.index + m[0].length), 'latin1');
        break;
      }
      default:
        break;
    }
  }
  return b;
}

module.exports = { mutate, hash };
