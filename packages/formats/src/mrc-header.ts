import { TmeError } from './errors';
import type { Zyx } from './volume';

/** Size of the fixed MRC header in bytes. */
export const MRC_HEADER_BYTES = 1024;
/** IMOD's stamp (word 39, "IMOD" as an int) that makes its flags word meaningful. */
const IMOD_STAMP = 1146047817;

/** The raw header words, in file order and file units (x, y, z order as stored). */
export interface MrcHeaderFields {
  nx: number; ny: number; nz: number;
  mode: number;
  nxstart: number; nystart: number; nzstart: number;
  mx: number; my: number; mz: number;
  /** Cell lengths in Å, (x, y, z). */
  cella: [number, number, number];
  /** Cell angles in degrees. */
  cellb: [number, number, number];
  mapc: number; mapr: number; maps: number;
  dmin: number; dmax: number; dmean: number;
  ispg: number;
  /** Extended header size in bytes. */
  nsymbt: number;
  /** Bytes 96–195 as stored (the EXTRA words); bytes 104–111 are overridden by exttyp and nversion on encoding. */
  extra: Uint8Array;
  /** Extended header type, 4 characters (e.g. "MRCO", "FEI1"), or "" when zero. */
  exttyp: string;
  nversion: number;
  /** Origin in Å, (x, y, z). */
  origin: [number, number, number];
  /** Bytes 208–211 as latin1: "MAP " in MRC2014 files. */
  map: string;
  /** Bytes 212–215. */
  machst: Uint8Array;
  rms: number;
  nlabl: number;
  /** All 10 label slots, 80 latin1 characters each, exactly as stored. */
  labelSlots: string[];
}

export type MrcByteOrder = 'little' | 'big';

/** MRC data modes tme reads, and the element each holds. */
export const MRC_MODES: Readonly<Record<number, { name: string; bytes: number; supported: boolean }>> = {
  0: { name: 'int8', bytes: 1, supported: true },
  1: { name: 'int16', bytes: 2, supported: true },
  2: { name: 'float32', bytes: 4, supported: true },
  3: { name: 'complex int16', bytes: 4, supported: false },
  4: { name: 'complex float32', bytes: 8, supported: false },
  6: { name: 'uint16', bytes: 2, supported: true },
  12: { name: 'float16', bytes: 2, supported: true },
  101: { name: '4-bit packed', bytes: 0.5, supported: false },
};

/** A decoded header: the raw fields plus what they mean for tme (all tuples in (z, y, x) order). */
export interface MrcHeader {
  file: string;
  fields: MrcHeaderFields;
  byteOrder: MrcByteOrder;
  /** (nz, ny, nx). */
  shape: Zyx;
  /** Å per voxel, (z, y, x), from CELLA / MX. */
  voxelSize: Zyx;
  /** Å, (z, y, x): the ORIGIN words, or NXSTART·voxel when those are all zero. */
  origin: Zyx;
  /** (NZSTART, NYSTART, NXSTART) in voxels. */
  nstart: Zyx;
  mode: number;
  /** Element type of the data block: int8, uint8, int16, uint16, float32, float16. */
  dataType: 'int8' | 'uint8' | 'int16' | 'uint16' | 'float32' | 'float16';
  bytesPerVoxel: number;
  /** Offset of the data block: 1024 + NSYMBT. */
  dataOffset: number;
  extendedHeaderSize: number;
  /** ISPG 0 with more than one section: a stack of 2D images rather than a volume. */
  isImageStack: boolean;
  /** The non-empty labels, trimmed. */
  labels: string[];
  /** Tolerated deviations (wrong machine stamp, missing MAP id, stale statistics, …), one line each. */
  warnings: string[];
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

function validModeAt(view: DataView, little: boolean): boolean {
  return Object.prototype.hasOwnProperty.call(MRC_MODES, view.getInt32(12, little));
}

/** Decodes the 1024 header bytes as stored, in the given byte order; no validation. */
export function decodeMrcHeaderFields(bytes: Uint8Array, byteOrder: MrcByteOrder): MrcHeaderFields {
  const view = new DataView(bytes.buffer, bytes.byteOffset, MRC_HEADER_BYTES);
  const le = byteOrder === 'little';
  const i = (w: number): number => view.getInt32(4 * w, le);
  const f = (w: number): number => view.getFloat32(4 * w, le);
  const exttypRaw = latin1(bytes, 104, 108);
  const labelSlots: string[] = [];
  for (let k = 0; k < 10; k++) labelSlots.push(latin1(bytes, 224 + 80 * k, 304 + 80 * k));
  return {
    nx: i(0), ny: i(1), nz: i(2), mode: i(3),
    nxstart: i(4), nystart: i(5), nzstart: i(6),
    mx: i(7), my: i(8), mz: i(9),
    cella: [f(10), f(11), f(12)], cellb: [f(13), f(14), f(15)],
    mapc: i(16), mapr: i(17), maps: i(18),
    dmin: f(19), dmax: f(20), dmean: f(21),
    ispg: i(22), nsymbt: i(23),
    extra: bytes.slice(96, 196),
    exttyp: exttypRaw.replace(/\0+$/, ''),
    nversion: view.getInt32(108, le),
    origin: [f(49), f(50), f(51)],
    map: latin1(bytes, 208, 212),
    machst: bytes.slice(212, 216),
    rms: f(54),
    nlabl: i(55),
    labelSlots,
  };
}

/** Encodes header fields into 1024 bytes; decode → encode gives back the stored bytes exactly. */
export function encodeMrcHeaderFields(h: MrcHeaderFields, byteOrder: MrcByteOrder = 'little'): Uint8Array {
  const bytes = new Uint8Array(MRC_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  const le = byteOrder === 'little';
  const i = (w: number, v: number): void => view.setInt32(4 * w, v, le);
  const f = (w: number, v: number): void => view.setFloat32(4 * w, v, le);
  i(0, h.nx); i(1, h.ny); i(2, h.nz); i(3, h.mode);
  i(4, h.nxstart); i(5, h.nystart); i(6, h.nzstart);
  i(7, h.mx); i(8, h.my); i(9, h.mz);
  h.cella.forEach((v, k) => f(10 + k, v));
  h.cellb.forEach((v, k) => f(13 + k, v));
  i(16, h.mapc); i(17, h.mapr); i(18, h.maps);
  f(19, h.dmin); f(20, h.dmax); f(21, h.dmean);
  i(22, h.ispg); i(23, h.nsymbt);
  bytes.set(h.extra.subarray(0, 100), 96);
  const ext = Buffer.alloc(4);
  ext.write(h.exttyp.slice(0, 4), 'latin1');
  bytes.set(ext, 104);
  view.setInt32(108, h.nversion, le);
  h.origin.forEach((v, k) => f(49 + k, v));
  const map = Buffer.alloc(4);
  map.write(h.map.slice(0, 4), 'latin1');
  bytes.set(map, 208);
  bytes.set(h.machst.subarray(0, 4), 212);
  f(54, h.rms);
  i(55, h.nlabl);
  for (let k = 0; k < 10; k++) {
    const slot = Buffer.alloc(80);
    slot.write((h.labelSlots[k] ?? '').slice(0, 80), 'latin1');
    bytes.set(slot, 224 + 80 * k);
  }
  return bytes;
}

function stampText(machst: Uint8Array): string {
  return Array.from(machst, (b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ');
}

/**
 * Interprets and checks header bytes of a file of `fileSize` bytes. Throws ERR_TME_FORMAT for what cannot be
 * right, ERR_TME_UNSUPPORTED for valid modes tme does not read; collects tolerated deviations as warnings.
 */
export function interpretMrcHeader(bytes: Uint8Array, fileSize: number, file: string, signedBytes?: boolean): MrcHeader {
  if (bytes.byteLength < MRC_HEADER_BYTES) {
    throw new TmeError('ERR_TME_FORMAT', `not an MRC file: ${bytes.byteLength} bytes, shorter than the ${MRC_HEADER_BYTES}-byte header`, { file });
  }
  const warnings: string[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, MRC_HEADER_BYTES);
  const machst = bytes.subarray(212, 216);
  const stamped: MrcByteOrder | undefined =
    machst[0] === 0x44 && (machst[1] === 0x44 || machst[1] === 0x41) ? 'little'
      : machst[0] === 0x11 && machst[1] === 0x11 ? 'big' : undefined;
  let byteOrder: MrcByteOrder;
  if (stamped !== undefined && validModeAt(view, stamped === 'little')) {
    byteOrder = stamped;
  } else if (validModeAt(view, true) || validModeAt(view, false)) {
    // The usual fallback (as mrcfile and IMOD): the byte order in which MODE makes sense wins.
    byteOrder = validModeAt(view, true) ? 'little' : 'big';
    warnings.push(stamped === undefined
      ? `machine stamp ${stampText(machst)} is not a valid one; byte order ${byteOrder}-endian guessed from MODE`
      : `machine stamp ${stampText(machst)} says ${stamped}-endian but MODE reads as ${byteOrder}-endian; using ${byteOrder}-endian`);
  } else {
    byteOrder = stamped ?? 'little';
  }
  const fields = decodeMrcHeaderFields(bytes, byteOrder);
  const { nx, ny, nz, mode, nsymbt } = fields;
  for (const [name, n] of [['NX', nx], ['NY', ny], ['NZ', nz]] as const) {
    if (n <= 0) throw new TmeError('ERR_TME_FORMAT', `header field ${name} is ${n}; dimensions must be positive`, { file });
  }
  const modeInfo = MRC_MODES[mode];
  if (modeInfo === undefined) throw new TmeError('ERR_TME_FORMAT', `header field MODE is ${mode}, which is not an MRC data mode`, { file });
  if (!modeInfo.supported) {
    throw new TmeError('ERR_TME_UNSUPPORTED', `MRC mode ${mode} (${modeInfo.name}) is not supported; tme reads modes 0, 1, 2, 6 and 12`, { file });
  }
  if (nsymbt < 0) throw new TmeError('ERR_TME_FORMAT', `header field NSYMBT is ${nsymbt}; the extended header size cannot be negative`, { file });
  if (!fields.map.startsWith('MAP')) {
    warnings.push(`MAP id missing (found ${JSON.stringify(fields.map)}); read as an old CCP4/MRC file`);
  }
  const dataOffset = MRC_HEADER_BYTES + nsymbt;
  const needed = nx * ny * nz * modeInfo.bytes;
  if (dataOffset + needed > fileSize) {
    throw new TmeError('ERR_TME_FORMAT',
      `data block is ${Math.max(0, fileSize - dataOffset)} bytes but NX×NY×NZ = ${nx}×${ny}×${nz} in mode ${mode} needs ${needed} bytes`, { file });
  }
  if (dataOffset + needed < fileSize) warnings.push(`${fileSize - dataOffset - needed} bytes after the data block ignored`);

  let dataType: MrcHeader['dataType'];
  if (mode === 0) {
    // MRC2014 says signed; IMOD wrote unsigned bytes until it set bit 0 of its flags word (with its stamp).
    const imod = view.getInt32(152, byteOrder === 'little') === IMOD_STAMP;
    const imodSigned = (view.getInt32(156, byteOrder === 'little') & 1) === 1;
    let signed = true;
    if (signedBytes !== undefined) signed = signedBytes;
    else if (imod && !imodSigned) signed = false;
    else if (!imod && fields.nversion < 20140 && fields.dmin >= 0 && fields.dmax > 127) signed = false;
    dataType = signed ? 'int8' : 'uint8';
  } else {
    dataType = modeInfo.name as MrcHeader['dataType'];
  }

  const voxelAxis = (cell: number, m: number, axis: string): number => {
    if (m > 0 && Number.isFinite(cell) && cell > 0) return cell / m;
    warnings.push(`voxel size along ${axis} unknown (CELLA ${cell}, M${axis.toUpperCase()} ${m}); using 1 Å`);
    return 1;
  };
  const vx = voxelAxis(fields.cella[0], fields.mx, 'x');
  const vy = voxelAxis(fields.cella[1], fields.my, 'y');
  const vz = voxelAxis(fields.cella[2], fields.mz, 'z');
  const [ox, oy, oz] = fields.origin;
  const originFinite = [ox, oy, oz].every(Number.isFinite);
  if (!originFinite) warnings.push('ORIGIN is not finite; using NXSTART·voxel size');
  const useOrigin = originFinite && (ox !== 0 || oy !== 0 || oz !== 0);
  const origin: Zyx = useOrigin ? [oz, oy, ox] : [fields.nzstart * vz, fields.nystart * vy, fields.nxstart * vx];

  return {
    file,
    fields,
    byteOrder,
    shape: [nz, ny, nx],
    voxelSize: [vz, vy, vx],
    origin,
    nstart: [fields.nzstart, fields.nystart, fields.nxstart],
    mode,
    dataType,
    bytesPerVoxel: modeInfo.bytes,
    dataOffset,
    extendedHeaderSize: nsymbt,
    isImageStack: fields.ispg === 0 && nz > 1,
    labels: fields.labelSlots.slice(0, Math.max(0, Math.min(10, fields.nlabl)))
      .map((s) => s.replace(/[\0\s]+$/, '')).filter((s) => s.length > 0),
    warnings,
  };
}
