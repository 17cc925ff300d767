import { BinaryFile, HOST_LITTLE_ENDIAN, swapBytes } from './binary-file';
import { float16Table } from './float16';
import type { VolumeData } from './volume';

/** Element types found in volume files. float16 is kept as its raw bit patterns (Uint16Array) when native. */
export type SampleType = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'float32' | 'float64' | 'float16';

export const SAMPLE_BYTES: Readonly<Record<SampleType, 1 | 2 | 4 | 8>> = {
  int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, float32: 4, float64: 8, float16: 2,
};

/** A typed array of `count` elements of `type` (Uint16Array for float16 bits). */
export function allocateNative(type: SampleType, count: number): VolumeData {
  switch (type) {
    case 'int8': return new Int8Array(count);
    case 'uint8': return new Uint8Array(count);
    case 'int16': return new Int16Array(count);
    case 'uint16': case 'float16': return new Uint16Array(count);
    case 'int32': return new Int32Array(count);
    case 'float32': return new Float32Array(count);
    case 'float64': return new Float64Array(count);
  }
}

function viewAs(type: SampleType, buf: ArrayBuffer, offset: number, count: number): VolumeData {
  switch (type) {
    case 'int8': return new Int8Array(buf, offset, count);
    case 'uint8': return new Uint8Array(buf, offset, count);
    case 'int16': return new Int16Array(buf, offset, count);
    case 'uint16': case 'float16': return new Uint16Array(buf, offset, count);
    case 'int32': return new Int32Array(buf, offset, count);
    case 'float32': return new Float32Array(buf, offset, count);
    case 'float64': return new Float64Array(buf, offset, count);
  }
}

/** Conversion goes through a bounded staging buffer so that memory stays ≈ the output size (no full raw copy). */
const STAGE_BYTES = 16 << 20;

/**
 * Reads `count` elements of `type` stored at byte `offset` into `out` (float32 conversion, or the same native
 * type), starting at element `outOffset`. Same-type little-endian data is read straight into `out`.
 */
export function readSamples(
  file: BinaryFile, offset: number, count: number, type: SampleType, littleEndian: boolean,
  out: VolumeData, outOffset: number, what = 'data block',
): void {
  const width = SAMPLE_BYTES[type];
  const sameType = out instanceof Float32Array ? type === 'float32' : true;
  if (sameType) {
    const bytes = new Uint8Array(out.buffer, out.byteOffset + outOffset * width, count * width);
    file.readInto(bytes, offset, what);
    if (littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(bytes, width);
    return;
  }
  const target = out as Float32Array;
  const perStage = Math.max(1, Math.floor(STAGE_BYTES / width));
  const stage = new ArrayBuffer(Math.min(count, perStage) * width);
  const half = type === 'float16' ? float16Table() : undefined;
  for (let done = 0; done < count; done += perStage) {
    const n = Math.min(perStage, count - done);
    const bytes = new Uint8Array(stage, 0, n * width);
    file.readInto(bytes, offset + done * width, what);
    if (littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(bytes, width);
    const src = viewAs(type, stage, 0, n);
    if (half !== undefined) {
      const bits = src as Uint16Array;
      const base = outOffset + done;
      for (let k = 0; k < n; k++) target[base + k] = half[bits[k]!]!;
    } else {
      target.set(src, outOffset + done);
    }
  }
}
