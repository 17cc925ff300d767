import { AtomicFileWriter, type AtomicFileOptions } from './atomic-write';
import { BinaryFile, WRITE_CHUNK, float32LittleEndian } from './binary-file';
import { TmeError, invalidOption } from './errors';
import { MRC_HEADER_BYTES, encodeMrcHeaderFields, interpretMrcHeader, type MrcHeader } from './mrc-header';
import { mrcHeaderFieldsFor, type WriteMrcOptions } from './mrc';
import { readSamples } from './samples';
import { StatisticsAccumulator } from './statistics';
import type { Zyx } from './volume';

/** A volume on disk read a box at a time: what the out-of-core search reads its target through. */
export interface VolumeRegionSource {
  readonly file: string;
  readonly shape: Zyx;
  /** Å per voxel (z, y, x) and the origin, as a whole read would give them. */
  readonly voxelSize: Zyx;
  readonly origin: Zyx;
  /** The box [start, start + shape) as float32 (z, y, x), x fastest; the box must lie inside the volume. */
  readRegion(start: Zyx, shape: Zyx): Float32Array;
}

function checkBox(volume: Zyx, start: Zyx, shape: Zyx, file: string): void {
  for (let a = 0; a < 3; a++) {
    const s = start[a] as number;
    const n = shape[a] as number;
    if (!(Number.isInteger(s) && Number.isInteger(n) && s >= 0 && n >= 1 && s + n <= (volume[a] as number))) {
      throw invalidOption('region', `a box inside (${volume.join(', ')})`, `start (${start.join(', ')}) shape (${shape.join(', ')})`, file);
    }
  }
}

/**
 * An MRC file's data block read by region with positioned reads: any mode the reader accepts, converted to float32,
 * in the header's byte order, after its extended header. No whole-file buffer: a box costs its own size, so volumes
 * beyond memory (and beyond the 2^32−1 elements of one typed array) are read piece by piece.
 */
export class MrcRegionReader implements VolumeRegionSource {
  readonly file: string;
  readonly header: MrcHeader;
  readonly shape: Zyx;
  readonly voxelSize: Zyx;
  readonly origin: Zyx;
  private readonly handle: BinaryFile;

  constructor(path: string, options: { signedBytes?: boolean } = {}) {
    this.file = path;
    this.handle = new BinaryFile(path);
    try {
      const bytes = this.handle.read(0, Math.min(MRC_HEADER_BYTES, this.handle.size), 'header');
      this.header = interpretMrcHeader(bytes, this.handle.size, path, options.signedBytes);
    } catch (err) {
      this.handle.close();
      throw err;
    }
    this.shape = this.header.shape;
    this.voxelSize = this.header.voxelSize;
    this.origin = this.header.origin;
  }

  readRegion(start: Zyx, shape: Zyx): Float32Array {
    checkBox(this.shape, start, shape, this.file);
    const [, ny, nx] = this.shape;
    const [bz, by, bx] = shape;
    const out = new Float32Array(bz * by * bx);
    const h = this.header;
    const little = h.byteOrder === 'little';
    const at = (z: number, y: number, x: number): number => h.dataOffset + ((z * ny + y) * nx + x) * h.bytesPerVoxel;
    // Whole rows of whole sections are one contiguous run; whole rows one run per section; else one run per row.
    if (bx === nx && by === ny) {
      readSamples(this.handle, at(start[0], 0, 0), bz * by * bx, h.dataType, little, out, 0);
    } else if (bx === nx) {
      for (let z = 0; z < bz; z++) readSamples(this.handle, at(start[0] + z, start[1], 0), by * bx, h.dataType, little, out, z * by * bx);
    } else {
      for (let z = 0; z < bz; z++) {
        for (let y = 0; y < by; y++) {
          readSamples(this.handle, at(start[0] + z, start[1] + y, start[2]), bx, h.dataType, little, out, (z * by + y) * bx);
        }
      }
    }
    return out;
  }

  close(): void {
    this.handle.close();
  }
}

/**
 * An MRC2014 file (mode 2, little-endian) assembled box by box: the data block is written region by region into a
 * temporary file, and `commit` reads it back once to put the exact statistics in the header (the same numbers
 * writeMrc gives for the whole volume), then renames it into place. Nothing appears at `path` before `commit`.
 * `file.temporary` names the file it is assembled in (one a resumed job reopens with `file.reuse`, keeping every box
 * written before; it must then have the size this volume needs).
 */
export class MrcRegionWriter {
  readonly file: string;
  readonly shape: Zyx;
  private readonly geometry: { shape: Zyx; voxelSize: Zyx; origin: Zyx };
  private readonly options: WriteMrcOptions;
  private readonly writer: AtomicFileWriter;
  private scratch = new Float32Array(0);

  constructor(
    path: string, geometry: { shape: Zyx; voxelSize: Zyx; origin: Zyx }, options: Omit<WriteMrcOptions, 'mode'> = {}, file: AtomicFileOptions = {},
  ) {
    this.file = path;
    this.shape = geometry.shape;
    this.geometry = geometry;
    this.options = options;
    if (!geometry.shape.every((n) => Number.isInteger(n) && n > 0)) throw invalidOption('shape', 'three integers ≥ 1', geometry.shape, path);
    this.writer = new AtomicFileWriter(path, file);
    const bytes = MRC_HEADER_BYTES + 4 * this.voxels();
    if (file.reuse === true) {
      const size = this.writer.size();
      if (size !== bytes) {
        this.writer.close();
        throw new TmeError('ERR_TME_FORMAT', `not this job's partial map: ${size} bytes, expected ${bytes}`, { file: file.temporary ?? path });
      }
      return;
    }
    // The header's place, and the data block's last voxel: the file has its full size from the start.
    this.writer.writeAt(new Uint8Array(MRC_HEADER_BYTES), 0);
    this.writer.writeAt(new Uint8Array(4), bytes - 4);
  }

  /** Flushes the boxes written so far to the disk. */
  sync(): void {
    this.writer.sync();
  }

  /** Closes the file and keeps it, for a resumed run to reopen (`file.reuse`). */
  close(): void {
    this.writer.close();
  }

  private voxels(): number {
    return this.shape[0] * this.shape[1] * this.shape[2];
  }

  /** Writes the box [start, start + shape) from `data` (the box's values, x fastest) as float32. */
  writeRegion(start: Zyx, shape: Zyx, data: Float32Array | Int32Array): void {
    checkBox(this.shape, start, shape, this.file);
    const [bz, by, bx] = shape;
    if (data.length !== bz * by * bx) throw invalidOption('data', `${bz * by * bx} values for the box`, data.length, this.file);
    if (this.scratch.length < bx) this.scratch = new Float32Array(bx);
    const [, ny, nx] = this.shape;
    for (let z = 0; z < bz; z++) {
      for (let y = 0; y < by; y++) {
        const from = (z * by + y) * bx;
        const to = ((start[0] + z) * ny + start[1] + y) * nx + start[2];
        this.writer.writeAt(float32LittleEndian(data, from, from + bx, this.scratch), MRC_HEADER_BYTES + 4 * to);
      }
    }
  }

  /** Puts the header (statistics of every value written) in front and renames the file into place. */
  commit(): void {
    try {
      const n = this.voxels();
      // Chunks of WRITE_CHUNK values, a multiple of the statistics' block: the same numbers as one pass in memory.
      const chunk = new Float32Array(Math.min(WRITE_CHUNK, n));
      const bytes = new Uint8Array(chunk.buffer);
      const stats = new StatisticsAccumulator();
      for (let s = 0; s < n; s += WRITE_CHUNK) {
        const e = Math.min(n, s + WRITE_CHUNK);
        this.writer.readAt(bytes.subarray(0, 4 * (e - s)), MRC_HEADER_BYTES + 4 * s);
        stats.add(chunk.subarray(0, e - s));
      }
      const volume = { ...this.geometry, data: new Float32Array(0) };
      const header = encodeMrcHeaderFields(mrcHeaderFieldsFor(volume, stats.result(), { ...this.options, mode: 2 }, this.file), 'little');
      this.writer.writeAt(header, 0);
      this.writer.commit();
    } catch (err) {
      this.writer.abort();
      if (err instanceof TmeError) throw err;
      throw new TmeError('ERR_TME_IO', `cannot write: ${(err as Error).message}`, { file: this.file, cause: err });
    }
  }

  abort(): void {
    this.writer.abort();
  }
}
