import { invalidOption } from '@tme/formats';
import { fixed } from './number-format';
import type { ExportPick, TomogramGeometry } from './pick';

/** IMOD object flags (iobj.h): OPEN = 1<<3, SCAT = 1<<9 ("scattered points, don't connect"). point2model -scat sets both. */
export const IMOD_OBJECT_FLAG_OPEN = 1 << 3;
export const IMOD_OBJECT_FLAG_SCATTERED = 1 << 9;
/** Model flag IMODF_Z_FROM_MINUSPT5 (imodel.h, bit 10): Z runs from −0.5, i.e. integer Z is a section centre. */
export const IMOD_MODEL_FLAG_Z_FROM_MINUS_HALF = 1 << 10;
/** Model flag IMODF_NEW_TO_3DMOD (bit 11): what imodDefault() sets for a model no 3dmod has saved yet. */
export const IMOD_MODEL_FLAG_NEW_TO_3DMOD = 1 << 11;
/** IMOD unit code for nanometres (what 3dmod writes; pixsize is then in nm). */
export const IMOD_UNITS_NM = -9;

export const IMOD_MODEL_HEADER_BYTES = 232;
export const IMOD_OBJECT_BYTES = 176;
export const IMOD_CONTOUR_HEADER_BYTES = 16;

export interface ImodModelOptions {
  /** Sphere radius drawn around each point (OBJT pdrawsize), pixels. Default 5. */
  sphereRadius?: number;
  /** Model and object name. Default 'tme picks'. */
  name?: string;
  /** Object colour, red, green, blue in 0–1. Default green (0, 1, 0). */
  colour?: readonly [number, number, number];
}

/**
 * IMOD model coordinates of a pick: (x + 0.5, y + 0.5, z) for 0-based voxel indices (x, y, z). IMOD's model X and Y
 * run over pixel edges (0..NX) and Z over section centres (binspec "Model Coordinate Conventions", relion-imod.md §6),
 * so a voxel centre sits half a pixel in from the edge in X and Y only.
 */
export function imodPointOf(position: readonly [number, number, number]): [number, number, number] {
  const [z, y, x] = position;
  return [x + 0.5, y + 0.5, z];
}

function putName(view: DataView, offset: number, text: string, size: number): void {
  const bytes = Buffer.from(text, 'latin1');
  for (let i = 0; i < size - 1 && i < bytes.length; i += 1) view.setUint8(offset + i, bytes[i] as number);
}

function putId(view: DataView, offset: number, id: string): void {
  for (let i = 0; i < 4; i += 1) view.setUint8(offset + i, id.charCodeAt(i));
}

/**
 * The binary IMOD model (IMODV1.2, big-endian) of the picks: header, one object of scattered points (flags 0x208, as
 * `point2model -scat`), one contour holding every point, then IEOF. objsize and contsize equal the chunks that
 * follow, because IMOD's reader allocates from them and trusts them.
 */
export function encodeImodModel(picks: readonly ExportPick[], geometry: TomogramGeometry, options: ImodModelOptions = {}): Uint8Array {
  const radius = options.sphereRadius ?? 5;
  if (!(Number.isFinite(radius) && radius >= 0)) throw invalidOption('sphereRadius', 'number ≥ 0 (pixels)', radius);
  const name = options.name ?? 'tme picks';
  const [red, green, blue] = options.colour ?? [0, 1, 0];
  const n = picks.length;
  const size = 8 + IMOD_MODEL_HEADER_BYTES + 4 + IMOD_OBJECT_BYTES + 4 + IMOD_CONTOUR_HEADER_BYTES + 12 * n + 4;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  putId(view, 0, 'IMOD');
  putId(view, 4, 'V1.2');

  // Model header, 232 bytes from offset 8 (all big-endian, DataView's default).
  let o = 8;
  putName(view, o, name, 128);
  o += 128;
  const [nz, ny, nx] = geometry.shape;
  for (const v of [nx, ny, nz]) { view.setInt32(o, v); o += 4; } // xmax, ymax, zmax: the image size
  view.setInt32(o, 1); o += 4; // objsize: exactly one OBJT follows
  view.setUint32(o, IMOD_MODEL_FLAG_Z_FROM_MINUS_HALF | IMOD_MODEL_FLAG_NEW_TO_3DMOD); o += 4;
  for (const v of [1, 1, 0, 255]) { view.setInt32(o, v); o += 4; } // drawmode, mousemode, blacklevel, whitelevel
  for (const v of [0, 0, 0, 1, 1, 1]) { view.setFloat32(o, v); o += 4; } // offsets, scales
  for (const v of [0, 0, 0, 3, 128]) { view.setInt32(o, v); o += 4; } // current object/contour/point, res, thresh
  view.setFloat32(o, geometry.voxelSize / 10); o += 4; // pixsize in nm
  view.setInt32(o, IMOD_UNITS_NM); o += 4;
  view.setInt32(o, 0); o += 4; // csum
  for (let i = 0; i < 3; i += 1) { view.setFloat32(o, 0); o += 4; } // alpha, beta, gamma

  // Object chunk.
  putId(view, o, 'OBJT');
  o += 4;
  putName(view, o, name, 64);
  o += 64 + 64; // name, extra[16]
  view.setInt32(o, 1); o += 4; // contsize: exactly one CONT follows
  view.setUint32(o, IMOD_OBJECT_FLAG_SCATTERED | IMOD_OBJECT_FLAG_OPEN); o += 4;
  view.setInt32(o, 0); o += 4; // axis
  view.setInt32(o, 1); o += 4; // drawmode
  for (const v of [red, green, blue]) { view.setFloat32(o, v); o += 4; }
  view.setInt32(o, Math.round(radius)); o += 4; // pdrawsize
  for (const v of [0, 3, 1, 1, 0, 0, 0, 0]) { view.setUint8(o, v); o += 1; } // symbol, symsize, linewidth2, linewidth, linesty, symflags, sympad, trans
  view.setInt32(o, 0); o += 4; // meshsize
  view.setInt32(o, 0); o += 4; // surfsize

  // Contour chunk with every point.
  putId(view, o, 'CONT');
  o += 4;
  view.setInt32(o, n); o += 4; // psize
  for (let i = 0; i < 3; i += 1) { view.setInt32(o, 0); o += 4; } // flags, time, surf
  for (const pick of picks) {
    for (const v of imodPointOf(pick.position)) { view.setFloat32(o, v); o += 4; }
  }
  putId(view, o, 'IEOF');
  return bytes;
}

/**
 * The text point2model reads to make the same model: `object contour x y z` per line, 1-based object and contour
 * (point2model's default), coordinates exactly as in the .mod (point2model stores them unchanged). Run
 * `point2model -scat -sphere R picks.txt picks.mod`.
 */
export function formatPoint2ModelText(picks: readonly ExportPick[]): string {
  return picks.map((p) => {
    const [x, y, z] = imodPointOf(p.position);
    return `1 1 ${fixed(x, 3)} ${fixed(y, 3)} ${fixed(z, 3)}\n`;
  }).join('');
}
