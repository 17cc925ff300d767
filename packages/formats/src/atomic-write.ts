import * as fs from 'node:fs';
import * as path from 'node:path';
import { TmeError } from './errors';

let counter = 0;

function tempPathFor(target: string): string {
  counter += 1;
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${counter}.tmp`);
}

/** Whether a process of this machine still runs (a temporary file or lock it left is in use). */
export function processAlive(pid: number): boolean {
  if (!(Number.isInteger(pid) && pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files that atomic writes of processes no longer running left in `dir` (a kill mid-write
 * leaves `.name.<pid>.<n>.tmp`); returns their names. Files of live processes are left alone.
 */
export function removeStaleTemporaries(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = /^\..+\.(\d+)\.\d+\.tmp$/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    } catch { /* another run cleaned it */ }
  }
  return removed;
}

function ioError(file: string, err: unknown): TmeError {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === 'ENOENT' ? 'folder does not exist'
    : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied'
    : e.code === 'ENOSPC' ? 'no space left on device'
    : e.code === 'EISDIR' ? 'is a folder'
    : e.code === 'ENOTDIR' ? 'a parent of the path is a file, not a folder'
    // Never e.message: it names the temporary file, which the user never asked for.
    : (e.code ?? String(err));
  return new TmeError('ERR_TME_IO', `cannot write: ${why}`, { file, cause: err });
}

/**
 * Writes a file so that readers see either the old file or the whole new one, never a part: the bytes go to a
 * temporary file in the same folder, are flushed, and the temporary file is renamed over the target.
 */
export function writeFileAtomic(target: string, chunks: Uint8Array | string | readonly (Uint8Array | string)[]): void {
  const tmp = tempPathFor(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w', 0o644);
    const list = Array.isArray(chunks) ? chunks : [chunks as Uint8Array | string];
    for (const chunk of list) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      let off = 0;
      while (off < buf.byteLength) off += fs.writeSync(fd, buf, off, buf.byteLength - off);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* already failing */ }
    }
    try { fs.rmSync(tmp, { force: true }); } catch { /* nothing left to clean */ }
    throw ioError(target, err);
  }
}

/** Where an AtomicFileWriter assembles its file: a temporary name of its own (default), or a named one that
 *  outlives the process (`temporary`), opened again without truncating it when `reuse` (a resumed job's maps). */
export interface AtomicFileOptions {
  temporary?: string;
  reuse?: boolean;
}

/**
 * An atomic writer for large outputs written piece by piece: `write` appends to a temporary file, `commit`
 * renames it into place, `abort` removes it, `close` keeps it (for a later run to reuse). Nothing appears at
 * `target` before `commit`.
 */
export class AtomicFileWriter {
  readonly target: string;
  private readonly tmp: string;
  private fd: number | undefined;

  constructor(target: string, options: AtomicFileOptions = {}) {
    this.target = target;
    this.tmp = options.temporary ?? tempPathFor(target);
    try {
      // 'w+': a file assembled by region (MrcRegionWriter) is read back before it is committed; 'r+' keeps its bytes.
      this.fd = fs.openSync(this.tmp, options.reuse === true ? 'r+' : 'w+', 0o644);
    } catch (err) {
      throw ioError(options.reuse === true ? this.tmp : target, err);
    }
  }

  /** The file's size now, bytes. */
  size(): number {
    if (this.fd === undefined) throw new TmeError('ERR_TME_INTERNAL', 'size after commit or abort', { file: this.target });
    return fs.fstatSync(this.fd).size;
  }

  /** Flushes what was written to the disk (before a checkpoint says it is there). */
  sync(): void {
    if (this.fd === undefined) throw new TmeError('ERR_TME_INTERNAL', 'sync after commit or abort', { file: this.target });
    try {
      fs.fsyncSync(this.fd);
    } catch (err) {
      throw ioError(this.target, err);
    }
  }

  /** Closes the temporary file and keeps it (a named `temporary` that a later run reopens). */
  close(): void {
    if (this.fd !== undefined) {
      try { fs.closeSync(this.fd); } catch { /* ignore */ }
      this.fd = undefined;
    }
  }

  write(chunk: Uint8Array): void {
    if (this.fd === undefined) throw new TmeError('ERR_TME_INTERNAL', 'write after commit or abort', { file: this.target });
    try {
      let off = 0;
      while (off < chunk.byteLength) off += fs.writeSync(this.fd, chunk, off, chunk.byteLength - off);
    } catch (err) {
      this.abort();
      throw ioError(this.target, err);
    }
  }

  /** Writes `chunk` at byte `position` (a region of a file assembled out of order). */
  writeAt(chunk: Uint8Array, position: number): void {
    if (this.fd === undefined) throw new TmeError('ERR_TME_INTERNAL', 'write after commit or abort', { file: this.target });
    try {
      let off = 0;
      while (off < chunk.byteLength) off += fs.writeSync(this.fd, chunk, off, chunk.byteLength - off, position + off);
    } catch (err) {
      this.abort();
      throw ioError(this.target, err);
    }
  }

  /** Reads back `target.byteLength` bytes written at `position` (unwritten bytes of a sparse file read as 0). */
  readAt(target: Uint8Array, position: number): void {
    if (this.fd === undefined) throw new TmeError('ERR_TME_INTERNAL', 'read after commit or abort', { file: this.target });
    try {
      let off = 0;
      while (off < target.byteLength) {
        const got = fs.readSync(this.fd, target, off, target.byteLength - off, position + off);
        if (got === 0) { target.fill(0, off); break; }
        off += got;
      }
    } catch (err) {
      this.abort();
      throw ioError(this.target, err);
    }
  }

  commit(): void {
    if (this.fd === undefined) throw new TmeError('ERR_TME_INTERNAL', 'commit after commit or abort', { file: this.target });
    try {
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = undefined;
      fs.renameSync(this.tmp, this.target);
    } catch (err) {
      this.abort();
      throw ioError(this.target, err);
    }
  }

  abort(): void {
    if (this.fd !== undefined) {
      try { fs.closeSync(this.fd); } catch { /* ignore */ }
      this.fd = undefined;
    }
    try { fs.rmSync(this.tmp, { force: true }); } catch { /* ignore */ }
  }
}
