import { AtomicFileWriter } from './atomic-write';
import { BinaryFile, HOST_LITTLE_ENDIAN, WRITE_CHUNK, float32LittleEndian, swapBytes, withFile } from './binary-file';
import { TmeError, invalidOption } from './errors';
import { encodeFloat16, float16Table } from './float16';
import {
  MRC_HEADER_BYTES, MrcHeader, MrcHeaderFields, encodeMrcHeaderFields, interpretMrcHeader,
} from './mrc-header';
import { allocateNative, readSamples } from './samples';
import { VolumeStatistics, mergeStatistics, volumeStatistics } from './statistics';
import { Volume, VolumeData, Zyx, voxelCount } from './volume';
import { checkVolume } from './volume-checks';

export interface ReadMrcOptions {
  /** 'float32' (default): values converted to float32. 'native': the file's own element type (Int8Array,
   * Uint8Array, Int16Array, Uint16Array, Float32Array; mode 12 gives its raw half-precision bits as Uint16Array). */
  dtype?: 'float32' | 'native';
  /** Mode 0 only: force signed (true) or unsigned (false) bytes. Default: signed as MRC2014 says, unless IMOD's
   * header flags or an old file's statistics say unsigned. */
  signedBytes?: boolean;
  /** Compare the header's DMIN/DMAX/DMEAN/RMS with the data and warn when they disagree. Default true. */
  verifyStatistics?: boolean;
  /** Called once per tolerated deviation (they are also kept in `header.warnings`). */
  onWarning?: (message: string) => void;
}

/** A volume read from an MRC file, with the header it came from. */
export type MrcVolume<D extends VolumeData = Float32Array> = Volume<D> & { header: MrcHeader };

function headerOf(file: BinaryFile, signedBytes?: boolean): MrcHeader {
  const size = Math.min(MRC_HEADER_BYTES, file.size);
  const bytes = file.read(0, size, 'header');
  return interpretMrcHeader(bytes, file.size, file.path, signedBytes);
}

/** Reads and checks the 1024-byte header only (nothing of the data block). */
export function readMrcHeader(path: string, options: Pick<ReadMrcOptions, 'signedBytes'> = {}): MrcHeader {
  return withFile(path, (file) => headerOf(file, options.signedBytes));
}

/** The NSYMBT bytes of the extended header (e.g. FEI1/FEI2 per-section metadata) as stored; empty when none. */
export function readMrcExtendedHeader(path: string): Uint8Array {
  return withFile(path, (file) => {
    const header = headerOf(file);
    return file.read(MRC_HEADER_BYTES, header.extendedHeaderSize, 'extended header');
  });
}

function close(a: number, b: number): boolean {
  // Equal infinities agree (Infinity − Infinity is NaN: a header that says Infinity for data holding it is right).
  return a === b || Math.abs(a - b) <= 1e-8 + 0.01 * Math.abs(b);
}

/** Header statistics that disagree with the data (mrcfile's tolerance: 1 %); undetermined ones are skipped. */
export function statisticsWarnings(fields: MrcHeaderFields, s: VolumeStatistics): string[] {
  const out: string[] = [];
  if (fields.dmax >= fields.dmin) {
    if (!close(s.min, fields.dmin)) out.push(`header DMIN ${fields.dmin} differs from the data's minimum ${s.min}`);
    if (!close(s.max, fields.dmax)) out.push(`header DMAX ${fields.dmax} differs from the data's maximum ${s.max}`);
    // DMEAN below min(DMIN, DMAX) means "not computed" (the MRC2014 convention mrcfile follows).
    if (fields.dmean >= Math.min(fields.dmin, fields.dmax) && !close(s.mean, fields.dmean)) out.push(`header DMEAN ${fields.dmean} differs from the data's mean ${s.mean}`);
  }
  if (fields.rms >= 0 && !close(s.std, fields.rms)) out.push(`header RMS ${fields.rms} differs from the data's standard deviation ${s.std}`);
  return out;
}

function readSections(path: string, zStart: number | undefined, zCount: number | undefined, options: ReadMrcOptions): MrcVolume<VolumeData> {
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'native') throw invalidOption('dtype', "'float32' or 'native'", dtype, path);
  return withFile(path, (file) => {
    const header = headerOf(file, options.signedBytes);
    const [nz, ny, nx] = header.shape;
    const z0 = zStart ?? 0;
    const count = zCount ?? nz;
    if (!Number.isInteger(z0) || z0 < 0 || z0 >= nz) throw invalidOption('zStart', `integer in [0, ${nz - 1}]`, z0, path);
    if (!Number.isInteger(count) || count < 1 || z0 + count > nz) throw invalidOption('zCount', `integer in [1, ${nz - z0}]`, count, path);
    const section = nx * ny;
    const n = section * count;
    // One typed array holds at most 2^32−1 elements; larger volumes are read by region (MrcRegionReader).
    if (n > 2 ** 32 - 1) {
      throw new TmeError('ERR_TME_UNSUPPORTED', `${nx}×${ny}×${count} voxels exceed the 2^32−1 that one typed array holds`, { file: path });
    }
    const data = dtype === 'native' ? allocateNative(header.dataType, n) : new Float32Array(n);
    readSamples(file, header.dataOffset + z0 * section * header.bytesPerVoxel, n, header.dataType,
      header.byteOrder === 'little', data, 0);
    const whole = z0 === 0 && count === nz;
    if (whole && (options.verifyStatistics ?? true) && !(data instanceof Uint16Array && header.dataType === 'float16')) {
      header.warnings.push(...statisticsWarnings(header.fields, volumeStatistics(data)));
    }
    if (options.onWarning) for (const w of header.warnings) options.onWarning(w);
    const [vz, vy, vx] = header.voxelSize;
    const [oz, oy, ox] = header.origin;
    return { data, shape: [count, ny, nx], voxelSize: [vz, vy, vx], origin: [oz + z0 * vz, oy, ox], header };
  });
}

/**
 * Reads a whole MRC/CCP4 file (modes 0, 1, 2, 6, 12; either byte order). Values as float32 unless
 * `dtype: 'native'`. Peak memory ≈ the returned array plus a 16 MiB staging buffer.
 */
export function readMrc(path: string, options?: ReadMrcOptions & { dtype?: 'float32' }): MrcVolume;
export function readMrc(path: string, options: ReadMrcOptions & { dtype: 'native' }): MrcVolume<VolumeData>;
export function readMrc(path: string, options: ReadMrcOptions = {}): MrcVolume<VolumeData> {
  return readSections(path, undefined, undefined, options);
}

/**
 * Reads z-sections [zStart, zStart + zCount) only, touching just that byte range of the file. The slab's origin
 * is moved by zStart·voxelSize[0], so positions stay in the file's frame. Statistics are not verified.
 */
export function readMrcSlab(path: string, zStart: number, zCount: number, options?: ReadMrcOptions & { dtype?: 'float32' }): MrcVolume;
export function readMrcSlab(path: string, zStart: number, zCount: number, options: ReadMrcOptions & { dtype: 'native' }): MrcVolume<VolumeData>;
export function readMrcSlab(path: string, zStart: number, zCount: number, options: ReadMrcOptions = {}): MrcVolume<VolumeData> {
  return readSections(path, zStart, zCount, options);
}

export interface WriteMrcOptions {
  /** 2 (float32, default) or 12 (float16: half the size, ~3 significant digits; values beyond ±65504 become ±Inf). */
  mode?: 2 | 12;
  /** Up to 10 labels of ≤ 80 printable ASCII characters. Default: one label naming tme. */
  labels?: readonly string[];
  /** (NZSTART, NYSTART, NXSTART) in voxels. Default (0, 0, 0). */
  nstart?: Zyx;
  /** Write ISPG 0 (a stack of 2D images) instead of ISPG 1 (one volume). Default false. */
  imageStack?: boolean;
}

export const DEFAULT_MRC_LABEL = 'tme: written by @tme/formats';


/** Statistics of the values as they will be stored in half precision. */
function float16Statistics(data: VolumeData): VolumeStatistics {
  const table = float16Table();
  const rounded = new Float32Array(Math.min(WRITE_CHUNK, data.length));
  let acc: VolumeStatistics | undefined;
  for (let s = 0; s < data.length; s += WRITE_CHUNK) {
    const e = Math.min(data.length, s + WRITE_CHUNK);
    const r = rounded.subarray(0, e - s);
    for (let k = s; k < e; k++) r[k - s] = table[encodeFloat16(data[k]!)]!;
    const b = volumeStatistics(r);
    acc = acc === undefined ? b : mergeStatistics(acc, b);
  }
  return acc ?? volumeStatistics(rounded);
}

function checkLabels(labels: readonly string[], path: string): string[] {
  if (labels.length > 10) throw invalidOption('labels', 'at most 10 labels', labels, path);
  for (const l of labels) {
    if (typeof l !== 'string' || l.length > 80 || !/^[\x20-\x7e]*$/.test(l)) {
      throw invalidOption('labels', 'strings of at most 80 printable ASCII characters', l, path);
    }
  }
  return labels.filter((l) => l.trim().length > 0);
}

/** The MRC2014 header tme writes for `volume` (little-endian, ISPG 1, MX = NX, CELLA = N·voxel, exact statistics). */
export function mrcHeaderFieldsFor(volume: Volume<VolumeData>, stats: VolumeStatistics, options: WriteMrcOptions, path = ''): MrcHeaderFields {
  const [nz, ny, nx] = volume.shape;
  const [vz, vy, vx] = volume.voxelSize;
  const [oz, oy, ox] = volume.origin;
  const nstart = options.nstart ?? [0, 0, 0];
  if (!nstart.every((v) => Number.isInteger(v) && Math.abs(v) < 2 ** 31)) throw invalidOption('nstart', 'three 32-bit integers', nstart, path);
  const labels = checkLabels(options.labels ?? [DEFAULT_MRC_LABEL], path);
  const extra = new Uint8Array(100);
  return {
    nx, ny, nz, mode: options.mode ?? 2,
    nxstart: nstart[2], nystart: nstart[1], nzstart: nstart[0],
    mx: nx, my: ny, mz: nz,
    cella: [nx * vx, ny * vy, nz * vz], cellb: [90, 90, 90],
    mapc: 1, mapr: 2, maps: 3,
    dmin: stats.min, dmax: stats.max, dmean: stats.mean,
    ispg: options.imageStack ? 0 : 1, nsymbt: 0,
    extra, exttyp: '', nversion: 20140,
    origin: [ox, oy, oz],
    map: 'MAP ', machst: new Uint8Array([0x44, 0x44, 0, 0]),
    rms: stats.std, nlabl: labels.length,
    labelSlots: Array.from({ length: 10 }, (_, k) => labels[k] ?? ''),
  };
}

/**
 * Writes an MRC2014 file atomically: mode 2 (or 12 on request), little-endian, a header that mrcfile's
 * validator accepts. Any numeric typed array is converted to float32 in 4 Mi-element chunks.
 */
export function writeMrc(path: string, volume: Volume<VolumeData>, options: WriteMrcOptions = {}): void {
  checkVolume(volume, path);
  const mode = options.mode ?? 2;
  if (mode !== 2 && mode !== 12) throw invalidOption('mode', '2 or 12', mode, path);
  const stats = mode === 12 ? float16Statistics(volume.data) : volumeStatistics(volume.data);
  const header = encodeMrcHeaderFields(mrcHeaderFieldsFor(volume, stats, { ...options, mode }, path), 'little');
  const writer = new AtomicFileWriter(path);
  try {
    writer.write(header);
    const n = voxelCount(volume.shape);
    const scratch = new Float32Array(Math.min(WRITE_CHUNK, n));
    const halves = mode === 12 ? new Uint16Array(Math.min(WRITE_CHUNK, n)) : undefined;
    for (let s = 0; s < n; s += WRITE_CHUNK) {
      const e = Math.min(n, s + WRITE_CHUNK);
      let bytes: Uint8Array;
      if (halves !== undefined) {
        const h = halves.subarray(0, e - s);
        for (let k = s; k < e; k++) h[k - s] = encodeFloat16(volume.data[k]!);
        bytes = new Uint8Array(h.buffer, 0, h.byteLength);
        if (!HOST_LITTLE_ENDIAN) { bytes = bytes.slice(); swapBytes(bytes, 2); }
      } else {
        bytes = float32LittleEndian(volume.data, s, e, scratch);
      }
      writer.write(bytes);
    }
    writer.commit();
  } catch (err) {
    writer.abort();
    if (err instanceof TmeError) throw err;
    throw new TmeError('ERR_TME_IO', `cannot write: ${(err as Error).message}`, { file: path, cause: err });
  }
}
