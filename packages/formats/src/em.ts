import { AtomicFileWriter } from './atomic-write';
import { WRITE_CHUNK, float32LittleEndian, withFile } from './binary-file';
import { TmeError, invalidOption } from './errors';
import { SampleType, allocateNative, readSamples } from './samples';
import { Volume, VolumeData, voxelCount } from './volume';
import { checkVolume } from './volume-checks';

/** Size of the EM (TOM toolbox) header in bytes. */
export const EM_HEADER_BYTES = 512;

/** EM data-type codes (byte 4) and the elements they hold; 8 and 10 are complex and not read. */
const EM_TYPES: Readonly<Record<number, SampleType | 'complex64' | 'complex128'>> = {
  1: 'uint8', 2: 'int16', 4: 'int32', 5: 'float32', 8: 'complex64', 9: 'float64', 10: 'complex128',
};

/** A decoded EM header. */
export interface EmHeader {
  file: string;
  /** Machine code (byte 1): 6 = PC (little-endian); 0 OS-9, 3 SGI, 5 Mac are big-endian. */
  machine: number;
  byteOrder: 'little' | 'big';
  /** Data-type code (byte 4): 1 uint8, 2 int16, 4 int32, 5 float32, 9 float64. */
  dataTypeCode: number;
  dataType: SampleType;
  /** (nz, ny, nx). */
  shape: [number, number, number];
  comment: string;
  /** The 40 int32 parameters as stored (voltage, Cs·1000, …, object pixel size·1000 Å at index 6). */
  parameters: Int32Array;
  /** Bytes 256–511 as stored. */
  userData: Uint8Array;
  /** Å per voxel, from parameter 7 (object pixel size in 1/1000 Å); 1 when the file does not say. */
  voxelSize: number;
  warnings: string[];
}

export type EmVolume<D extends VolumeData = Float32Array> = Volume<D> & { header: EmHeader };

function decodeEmHeader(bytes: Uint8Array, fileSize: number, file: string): EmHeader {
  if (bytes.byteLength < EM_HEADER_BYTES) {
    throw new TmeError('ERR_TME_FORMAT', `not an EM file: ${bytes.byteLength} bytes, shorter than the ${EM_HEADER_BYTES}-byte header`, { file });
  }
  const machine = bytes[0]!;
  if (machine > 6) throw new TmeError('ERR_TME_FORMAT', `not an EM file: machine code ${machine} is not one of 0–6`, { file });
  // TOM's reader: OS-9, SGI and Mac files are big-endian, everything else little-endian.
  const little = !(machine === 0 || machine === 3 || machine === 5);
  const view = new DataView(bytes.buffer, bytes.byteOffset, EM_HEADER_BYTES);
  const code = bytes[3]!;
  const type = EM_TYPES[code];
  if (type === undefined) throw new TmeError('ERR_TME_FORMAT', `not an EM file: data type code ${code} is not one of 1, 2, 4, 5, 8, 9, 10`, { file });
  if (type === 'complex64' || type === 'complex128') {
    throw new TmeError('ERR_TME_UNSUPPORTED', `EM data type ${code} (${type}) is not supported; tme reads types 1, 2, 4, 5 and 9`, { file });
  }
  const nx = view.getInt32(4, little);
  const ny = view.getInt32(8, little);
  const nz = view.getInt32(12, little);
  for (const [name, n] of [['x', nx], ['y', ny], ['z', nz]] as const) {
    if (n <= 0) throw new TmeError('ERR_TME_FORMAT', `header size along ${name} is ${n}; dimensions must be positive`, { file });
  }
  const width = { uint8: 1, int8: 1, int16: 2, uint16: 2, float16: 2, int32: 4, float32: 4, float64: 8 }[type];
  const needed = nx * ny * nz * width;
  if (EM_HEADER_BYTES + needed > fileSize) {
    throw new TmeError('ERR_TME_FORMAT',
      `data block is ${Math.max(0, fileSize - EM_HEADER_BYTES)} bytes but ${nx}×${ny}×${nz} of type ${code} needs ${needed} bytes`, { file });
  }
  if (nx * ny * nz > 2 ** 32 - 1) throw new TmeError('ERR_TME_UNSUPPORTED', `${nx}×${ny}×${nz} voxels exceed the 2^32−1 that one typed array holds`, { file });
  const warnings: string[] = [];
  if (EM_HEADER_BYTES + needed < fileSize) warnings.push(`${fileSize - EM_HEADER_BYTES - needed} bytes after the data block ignored`);
  const parameters = new Int32Array(40);
  for (let k = 0; k < 40; k++) parameters[k] = view.getInt32(96 + 4 * k, little);
  let voxelSize = parameters[6]! / 1000;
  if (!(voxelSize > 0)) {
    warnings.push(`object pixel size (parameter 7) is ${parameters[6]}; voxel size unknown, using 1 Å`);
    voxelSize = 1;
  }
  return {
    file, machine, byteOrder: little ? 'little' : 'big', dataTypeCode: code, dataType: type,
    shape: [nz, ny, nx],
    comment: Buffer.from(bytes.buffer, bytes.byteOffset + 16, 80).toString('latin1').replace(/[\0\s]+$/, ''),
    parameters, userData: bytes.slice(256, 512), voxelSize, warnings,
  };
}

/** Reads and checks an EM header only. */
export function readEmHeader(path: string): EmHeader {
  return withFile(path, (file) => decodeEmHeader(file.read(0, Math.min(EM_HEADER_BYTES, file.size), 'header'), file.size, path));
}

export interface ReadEmOptions {
  /** 'float32' (default) or 'native' (Uint8Array, Int16Array, Int32Array, Float32Array, Float64Array). */
  dtype?: 'float32' | 'native';
  onWarning?: (message: string) => void;
}

/** Reads an EM (TOM toolbox) file. EM stores no origin: it is (0, 0, 0). Voxel size is isotropic. */
export function readEm(path: string, options?: ReadEmOptions & { dtype?: 'float32' }): EmVolume;
export function readEm(path: string, options: ReadEmOptions & { dtype: 'native' }): EmVolume<VolumeData>;
export function readEm(path: string, options: ReadEmOptions = {}): EmVolume<VolumeData> {
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'native') throw invalidOption('dtype', "'float32' or 'native'", dtype, path);
  return withFile(path, (file) => {
    const header = decodeEmHeader(file.read(0, Math.min(EM_HEADER_BYTES, file.size), 'header'), file.size, path);
    const n = voxelCount(header.shape);
    const data = dtype === 'native' ? allocateNative(header.dataType, n) : new Float32Array(n);
    readSamples(file, EM_HEADER_BYTES, n, header.dataType, header.byteOrder === 'little', data, 0);
    if (options.onWarning) for (const w of header.warnings) options.onWarning(w);
    const v = header.voxelSize;
    return { data, shape: [...header.shape], voxelSize: [v, v, v], origin: [0, 0, 0], header };
  });
}

export interface WriteEmOptions {
  /** Up to 80 printable ASCII characters. Default "". */
  comment?: string;
}

/**
 * Writes a little-endian (machine 6) float32 (type 5) EM file atomically, voxel size in parameter 7 (1/1000 Å).
 * EM holds one voxel size and no origin: anisotropic voxels are refused; the origin is not stored.
 */
export function writeEm(path: string, volume: Volume<VolumeData>, options: WriteEmOptions = {}): void {
  checkVolume(volume, path);
  const [vz, vy, vx] = volume.voxelSize;
  if (Math.abs(vz - vx) > 1e-6 * vx || Math.abs(vy - vx) > 1e-6 * vx) {
    throw new TmeError('ERR_TME_UNSUPPORTED', `EM files hold one voxel size but the volume has (z, y, x) = (${vz}, ${vy}, ${vx}) Å`, { file: path });
  }
  const comment = options.comment ?? '';
  if (typeof comment !== 'string' || comment.length > 80 || !/^[\x20-\x7e]*$/.test(comment)) {
    throw invalidOption('comment', 'at most 80 printable ASCII characters', comment, path);
  }
  const header = new Uint8Array(EM_HEADER_BYTES);
  const view = new DataView(header.buffer);
  header[0] = 6;
  header[3] = 5;
  const [nz, ny, nx] = volume.shape;
  view.setInt32(4, nx, true);
  view.setInt32(8, ny, true);
  view.setInt32(12, nz, true);
  header.set(Buffer.from(comment, 'latin1'), 16);
  view.setInt32(96 + 4 * 6, Math.round(vx * 1000), true);
  const writer = new AtomicFileWriter(path);
  try {
    writer.write(header);
    const n = voxelCount(volume.shape);
    const scratch = new Float32Array(Math.min(WRITE_CHUNK, n));
    for (let s = 0; s < n; s += WRITE_CHUNK) writer.write(float32LittleEndian(volume.data, s, Math.min(n, s + WRITE_CHUNK), scratch));
    writer.commit();
  } catch (err) {
    writer.abort();
    if (err instanceof TmeError) throw err;
    throw new TmeError('ERR_TME_IO', `cannot write: ${(err as Error).message}`, { file: path, cause: err });
  }
}
