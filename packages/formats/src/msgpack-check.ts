/**
 * Walks MessagePack bytes (the container of BinaryCIF) without decoding them and says whether every declared
 * length fits in the data. Mol*'s decoder trusts map/array counts, so a corrupt count of ~2^32 makes it loop for
 * minutes; this check runs in O(bytes) first. Returns the problem, or undefined when the structure is sound.
 */
export function messagePackProblem(b: Uint8Array): string | undefined {
  const n = b.byteLength;
  const view = new DataView(b.buffer, b.byteOffset, n);
  let pos = 0;
  let pending = 1; // values still to read; the top level is one value
  const need = (bytes: number): boolean => pos + bytes <= n;
  while (pending > 0) {
    if (pos >= n) return `MessagePack ends early (${pending} values missing)`;
    const t = b[pos++]!;
    pending--;
    let skip = 0;
    let children = 0;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) skip = 0;
    else if (t >= 0x80 && t <= 0x8f) children = 2 * (t & 0x0f);
    else if (t >= 0x90 && t <= 0x9f) children = t & 0x0f;
    else if (t >= 0xa0 && t <= 0xbf) skip = t & 0x1f;
    else {
      switch (t) {
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break; case 0xd5: skip = 3; break; case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break; case 0xd8: skip = 17; break;
        case 0xc4: case 0xd9: if (!need(1)) return 'MessagePack length cut off'; skip = b[pos]!; pos += 1; break;
        case 0xc5: case 0xda: if (!need(2)) return 'MessagePack length cut off'; skip = view.getUint16(pos); pos += 2; break;
        case 0xc6: case 0xdb: if (!need(4)) return 'MessagePack length cut off'; skip = view.getUint32(pos); pos += 4; break;
        case 0xc7: if (!need(1)) return 'MessagePack length cut off'; skip = b[pos]! + 1; pos += 1; break;
        case 0xc8: if (!need(2)) return 'MessagePack length cut off'; skip = view.getUint16(pos) + 1; pos += 2; break;
        case 0xc9: if (!need(4)) return 'MessagePack length cut off'; skip = view.getUint32(pos) + 1; pos += 4; break;
        case 0xdc: if (!need(2)) return 'MessagePack length cut off'; children = view.getUint16(pos); pos += 2; break;
        case 0xdd: if (!need(4)) return 'MessagePack length cut off'; children = view.getUint32(pos); pos += 4; break;
        case 0xde: if (!need(2)) return 'MessagePack length cut off'; children = 2 * view.getUint16(pos); pos += 2; break;
        case 0xdf: if (!need(4)) return 'MessagePack length cut off'; children = 2 * view.getUint32(pos); pos += 4; break;
        default: return `invalid MessagePack type byte 0x${t.toString(16)} at offset ${pos - 1}`;
      }
    }
    if (!need(skip)) return `MessagePack value at offset ${pos - 1} needs ${skip} bytes, ${n - pos} left`;
    pos += skip;
    pending += children;
    // Every value takes at least one byte: more pending values than bytes left cannot be right.
    if (pending > n - pos) return `MessagePack declares ${pending} more values but only ${n - pos} bytes are left`;
  }
  return undefined;
}
