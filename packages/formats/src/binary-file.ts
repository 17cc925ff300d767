import * as fs from 'node:fs';
import { TmeError } from './errors';

/** Largest single readSync: Node refuses reads of 2 GiB or more, so big ranges go in pieces. */
const MAX_READ = 1 << 30;

/** The one-line reason for a failed open/read, without Node's errno noise. */
export function ioReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file'
    : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied'
    : e.code === 'EISDIR' ? 'is a folder, not a file'
    : (e.message ?? String(err));
}

/** An open file for random-access reads; `close` is idempotent. */
export class BinaryFile {
  readonly path: string;
  readonly size: number;
  private fd: number | undefined;

  constructor(path: string) {
    this.path = path;
    try {
      this.fd = fs.openSync(path, 'r');
      const st = fs.fstatSync(this.fd);
      if (st.isDirectory()) throw Object.assign(new Error('is a folder'), { code: 'EISDIR' });
      this.size = st.size;
    } catch (err) {
      this.close();
      throw new TmeError('ERR_TME_IO', `cannot read: ${ioReason(err)}`, { file: path, cause: err });
    }
  }

  /** Fills `target` with the bytes at `position`; a short file is a format error naming `what`. */
  readInto(target: Uint8Array, position: number, what: string): void {
    if (this.fd === undefined) throw new TmeError('ERR_TME_INTERNAL', 'read after close', { file: this.path });
    let done = 0;
    while (done < target.byteLength) {
      const want = Math.min(MAX_READ, target.byteLength - done);
      let got: number;
      try {
        got = fs.readSync(this.fd, target, done, want, position + done);
      } catch (err) {
        throw new TmeError('ERR_TME_IO', `cannot read ${what}: ${ioReason(err)}`, { file: this.path, cause: err });
      }
      if (got === 0) {
        throw new TmeError('ERR_TME_FORMAT', `file ends inside the ${what} (needed ${target.byteLength} bytes at offset ${position}, found ${done})`, { file: this.path });
      }
      done += got;
    }
  }

  read(position: number, length: number, what: string): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(out, position, what);
    return out;
  }

  close(): void {
    if (this.fd !== undefined) {
      try { fs.closeSync(this.fd); } catch { /* nothing to do */ }
      this.fd = undefined;
    }
  }
}

/** Runs `body` with an open file and always closes it. */
export function withFile<T>(path: string, body: (file: BinaryFile) => T): T {
  const file = new BinaryFile(path);
  try {
    return body(file);
  } finally {
    file.close();
  }
}

/** True on little-endian hosts (all that Node supports in practice; checked, not assumed). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Elements converted per chunk when writing: bounds the scratch memory of a large write. */
export const WRITE_CHUNK = 1 << 22;

/**
 * The little-endian float32 bytes of data[start, end): a view when the data already are float32 on a
 * little-endian host, else converted through `scratch` (at least end − start long).
 */
export function float32LittleEndian(data: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }, start: number, end: number, scratch: Float32Array): Uint8Array {
  let f: Float32Array;
  if (data instanceof Float32Array) f = data.subarray(start, end);
  else {
    f = scratch.subarray(0, end - start);
    f.set(data.subarray(start, end));
  }
  const bytes = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  if (HOST_LITTLE_ENDIAN) return bytes;
  const swapped = bytes.slice();
  swapBytes(swapped, 4);
  return swapped;
}

/** Swaps the bytes of each `width`-byte element of `bytes` in place. */
export function swapBytes(bytes: Uint8Array, width: 1 | 2 | 4 | 8): void {
  if (width === 1) return;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (width === 2) buf.swap16();
  else if (width === 4) buf.swap32();
  else buf.swap64();
}
