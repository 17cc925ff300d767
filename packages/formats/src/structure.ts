import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import type { CifFrame } from 'molstar/lib/commonjs/mol-io/reader/cif';
import { ioReason } from './binary-file';
import { messagePackProblem } from './msgpack-check';
import { TmeError, invalidOption } from './errors';
import type { Zyx } from './volume';

/** Atoms as a structure of arrays; coordinates in Å in the file's frame. Index i is one atom across all arrays. */
export interface Structure {
  /** What the content was: PDB text, mmCIF text or BinaryCIF. */
  format: 'pdb' | 'mmcif' | 'bcif';
  atomCount: number;
  x: Float64Array;
  y: Float64Array;
  z: Float64Array;
  /** Element symbol as written (e.g. "C", "FE"), or guessed from the atom name when the file has none. */
  element: string[];
  occupancy: Float32Array;
  /** Isotropic B-factor in Å². */
  bFactor: Float32Array;
  /** Author chain id (auth_asym_id; label_asym_id when absent). */
  chain: string[];
  residueName: string[];
  /** Author residue number (auth_seq_id; label_seq_id when absent). */
  residueNumber: Int32Array;
  insertionCode: string[];
  atomName: string[];
  /** 1 for HETATM records. */
  isHetatm: Uint8Array;
  /** Alternate location id of each kept atom ("" for none). */
  altLoc: string[];
  /** Number of models in the file. */
  models: number;
  /** Model numbers in file order. */
  modelNumbers: number[];
  /** The model number the atoms come from, or 'all'. */
  model: number | 'all';
}

export interface ReadStructureOptions {
  /** Model number to keep (as in MODEL / pdbx_PDB_model_num), or 'all'. Default: the first model in the file. */
  model?: number | 'all';
  /** 'first' (default): for each residue keep atoms without an alternate location or with the first one met;
   * 'all': keep every alternate location. */
  altLoc?: 'first' | 'all';
}

/** Above this (after gunzip) a text file would not fit one JavaScript string. */
const MAX_TEXT_BYTES = 512 * 1024 * 1024 - 64;

function fmtError(file: string, problem: string, cause?: unknown): TmeError {
  return new TmeError('ERR_TME_FORMAT', problem.replace(/\s*\n\s*/g, ' '), { file, cause });
}

function loadBytes(path: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(path);
  } catch (err) {
    throw new TmeError('ERR_TME_IO', `cannot read: ${ioReason(err)}`, { file: path, cause: err });
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return zlib.gunzipSync(raw, { maxOutputLength: MAX_TEXT_BYTES });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ERR_BUFFER_TOO_LARGE') throw new TmeError('ERR_TME_UNSUPPORTED', `unpacks to more than ${MAX_TEXT_BYTES} bytes`, { file: path, cause: err });
      throw fmtError(path, `broken gzip data: ${e.message}`, err);
    }
  }
  return raw;
}

type Kind = 'pdb' | 'mmcif' | 'bcif';

function detect(bytes: Uint8Array, path: string): Kind {
  const b0 = bytes[0];
  // BinaryCIF is MessagePack whose top level is a map (fixmap 0x80–0x8f, map16 0xde, map32 0xdf).
  if (b0 !== undefined && ((b0 >= 0x80 && b0 <= 0x8f) || b0 === 0xde || b0 === 0xdf)) return 'bcif';
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 1 << 20)).toString('latin1');
  if (head.includes('\0')) throw fmtError(path, 'neither PDB nor mmCIF: binary content');
  for (const line of head.split('\n')) {
    const t = line.trimStart();
    if (t === '' || t.startsWith('#')) continue;
    if (/^data_/i.test(t)) return 'mmcif';
    break;
  }
  if (/^(ATOM  |HETATM)/m.test(head) || /^(HEADER|CRYST1|MODEL |REMARK|COMPND|TITLE )/m.test(head)) return 'pdb';
  throw fmtError(path, 'neither PDB nor mmCIF: no data_ block and no ATOM/HETATM records');
}

/** Mol*'s text CIF parser console.logs the offending token before returning its error; keep stdout clean. */
async function quietly<T>(run: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = (): void => undefined;
  try {
    return await run();
  } finally {
    console.log = log;
  }
}

/** Mol* is loaded on first use only (~0.4 s, tens of MB): volume-only users of @tme/formats never pay for it. */
async function molstar() {
  const [cif, pdb, toCif] = await Promise.all([
    import('molstar/lib/commonjs/mol-io/reader/cif'),
    import('molstar/lib/commonjs/mol-io/reader/pdb/parser'),
    import('molstar/lib/commonjs/mol-model-formats/structure/pdb/to-cif'),
  ]);
  return { CIF: cif.CIF, parsePDB: pdb.parsePDB, pdbToMmCif: toCif.pdbToMmCif };
}

// Mol*'s text CIF parser takes time quadratic in a loop's column count (40,000 columns: 1.6 s, found by the fuzzer);
// real mmCIF loops have tens of columns.
const MAX_LOOP_COLUMNS = 2000;

/** The loop with the most column names (`_category.field` lines right after `loop_`), one linear pass. */
function widestLoop(text: string): { columns: number; line: number } {
  let widest = { columns: 0, line: 0 };
  let inHeader = false;
  let count = 0;
  let start = 0;
  let line = 0;
  for (let i = 0; i < text.length; ) {
    const end = text.indexOf('\n', i);
    const stop = end < 0 ? text.length : end;
    line++;
    let a = i;
    while (a < stop && (text[a] === ' ' || text[a] === '\t')) a++;
    const startsLoop = text.startsWith('loop_', a);
    if (startsLoop) { inHeader = true; count = 0; start = line; }
    else if (inHeader && text[a] === '_') count++;
    else if (inHeader && a < stop) inHeader = false;
    if (count > widest.columns) widest = { columns: count, line: start };
    i = stop + 1;
  }
  return widest;
}

async function frameOf(bytes: Uint8Array, kind: Kind, path: string): Promise<CifFrame> {
  const { CIF, parsePDB, pdbToMmCif } = await molstar();
  if (kind === 'pdb') {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    const parsed = await parsePDB(text, path).run();
    if (parsed.isError) throw fmtError(path, `PDB line ${parsed.line}: ${parsed.message}`);
    return pdbToMmCif(parsed.result);
  }
  if (kind === 'bcif') {
    const problem = messagePackProblem(bytes);
    if (problem !== undefined) throw fmtError(path, `not BinaryCIF: ${problem}`);
  }
  const text = kind === 'bcif' ? '' : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (kind !== 'bcif') {
    const wide = widestLoop(text);
    if (wide.columns > MAX_LOOP_COLUMNS) {
      throw fmtError(path, `mmCIF line ${wide.line}: a loop of ${wide.columns} columns (files have tens; more than ${MAX_LOOP_COLUMNS} is refused)`);
    }
  }
  const parsed = kind === 'bcif'
    ? await CIF.parseBinary(bytes).run()
    : await quietly(() => CIF.parseText(text).run());
  if (parsed.isError) throw fmtError(path, `${kind === 'bcif' ? 'BinaryCIF' : 'mmCIF line ' + parsed.line}: ${parsed.message}`);
  const block = parsed.result.blocks.find((b) => b.categoryNames.includes('atom_site')) ?? parsed.result.blocks[0];
  if (block === undefined) throw fmtError(path, 'mmCIF without data blocks');
  return block;
}

/** Element from an atom name when the file gives none: a whole-name two-letter ion ("FE", "ZN"), else the
 * first letter ("CA" stays carbon alpha: calcium files carry their element column). */
const TWO_LETTER_IONS = new Set(['FE', 'ZN', 'MG', 'CL', 'NA', 'MN', 'CU', 'BR', 'NI', 'CO', 'SE', 'CD', 'HG']);
function guessElement(atomName: string): string {
  const letters = atomName.replace(/[^A-Za-z]/g, '').toUpperCase();
  return TWO_LETTER_IONS.has(letters) ? letters : letters.slice(0, 1);
}

interface Col<T> { isDefined: boolean; value(row: number): T }

/**
 * Reads atoms from a PDB or mmCIF file (optionally gzipped; also BinaryCIF), chosen by content, through the
 * Mol* (molstar) parsers. First model and first alternate locations by default.
 */
export async function readStructure(path: string, options: ReadStructureOptions = {}): Promise<Structure> {
  const wantModel = options.model;
  if (wantModel !== undefined && wantModel !== 'all' && !(Number.isInteger(wantModel))) {
    throw invalidOption('model', "an integer model number or 'all'", wantModel, path);
  }
  const altMode = options.altLoc ?? 'first';
  if (altMode !== 'first' && altMode !== 'all') throw invalidOption('altLoc', "'first' or 'all'", altMode, path);

  const bytes = loadBytes(path);
  if (bytes.byteLength > MAX_TEXT_BYTES) throw new TmeError('ERR_TME_UNSUPPORTED', `${bytes.byteLength} bytes is more than tme reads as text`, { file: path });
  const kind = detect(bytes, path);
  try {
    return await atomsOf(await frameOf(bytes, kind, path), kind, path, wantModel, altMode);
  } catch (err) {
    if (err instanceof TmeError) throw err;
    // Mol* throws plain errors on some malformed input (e.g. broken MessagePack): still a format error of this file.
    throw fmtError(path, `cannot parse ${kind}: ${(err as Error)?.message ?? String(err)}`, err);
  }
}

async function atomsOf(
  frame: CifFrame, kind: Kind, path: string, wantModel: number | 'all' | undefined, altMode: 'first' | 'all',
): Promise<Structure> {
  const db = (await molstar()).CIF.schema.mmCIF(frame);
  const site = db.atom_site;
  const n = site._rowCount;
  if (n === 0) throw fmtError(path, `no atoms (no ATOM/HETATM records or atom_site rows)`);
  for (const c of ['Cartn_x', 'Cartn_y', 'Cartn_z'] as const) {
    if (!site[c].isDefined) throw fmtError(path, `atom_site has no ${c} column`);
  }

  const either = <T>(a: Col<T>, b: Col<T>): Col<T> => (a.isDefined ? a : b);
  const chainCol = either<string>(site.auth_asym_id, site.label_asym_id);
  const resNameCol = either<string>(site.auth_comp_id, site.label_comp_id);
  const resNumCol = either<number>(site.auth_seq_id, site.label_seq_id);
  const atomCol = either<string>(site.auth_atom_id, site.label_atom_id);
  const modelCol = site.pdbx_PDB_model_num as Col<number>;
  const modelOf = (i: number): number => (modelCol.isDefined ? modelCol.value(i) : 1);

  const modelNumbers: number[] = [];
  const seenModels = new Set<number>();
  for (let i = 0; i < n; i++) {
    const m = modelOf(i);
    if (!seenModels.has(m)) { seenModels.add(m); modelNumbers.push(m); }
  }
  const model: number | 'all' = wantModel ?? modelNumbers[0]!;
  if (model !== 'all' && !seenModels.has(model)) {
    throw invalidOption('model', `one of the file's models (${modelNumbers.join(', ')})`, model, path);
  }

  // Alternate locations: the first id met in each residue wins.
  const firstAlt = new Map<string, string>();
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const m = modelOf(i);
    if (model !== 'all' && m !== model) continue;
    const alt = site.label_alt_id.value(i);
    if (altMode === 'first' && alt !== '' && alt !== '.' && alt !== '?') {
      const key = `${m}|${chainCol.value(i)}|${resNumCol.value(i)}|${site.pdbx_PDB_ins_code.value(i)}`;
      const first = firstAlt.get(key);
      if (first === undefined) firstAlt.set(key, alt);
      else if (first !== alt) continue;
    }
    keep.push(i);
  }

  const count = keep.length;
  const s: Structure = {
    format: kind, atomCount: count,
    x: new Float64Array(count), y: new Float64Array(count), z: new Float64Array(count),
    element: new Array<string>(count), occupancy: new Float32Array(count), bFactor: new Float32Array(count),
    chain: new Array<string>(count), residueName: new Array<string>(count), residueNumber: new Int32Array(count),
    insertionCode: new Array<string>(count), atomName: new Array<string>(count), isHetatm: new Uint8Array(count),
    altLoc: new Array<string>(count), models: modelNumbers.length, modelNumbers, model,
  };
  const occDefined = site.occupancy.isDefined;
  const bDefined = site.B_iso_or_equiv.isDefined;
  keep.forEach((i, k) => {
    s.x[k] = site.Cartn_x.value(i);
    s.y[k] = site.Cartn_y.value(i);
    s.z[k] = site.Cartn_z.value(i);
    const name = atomCol.value(i);
    s.atomName[k] = name;
    const el = site.type_symbol.value(i);
    s.element[k] = el !== '' && el !== '.' && el !== '?' ? el : guessElement(name);
    s.occupancy[k] = occDefined ? site.occupancy.value(i) : 1;
    s.bFactor[k] = bDefined ? site.B_iso_or_equiv.value(i) : 0;
    s.chain[k] = chainCol.value(i);
    s.residueName[k] = resNameCol.value(i);
    s.residueNumber[k] = resNumCol.value(i);
    s.insertionCode[k] = site.pdbx_PDB_ins_code.value(i);
    s.isHetatm[k] = site.group_PDB.value(i) === 'HETATM' ? 1 : 0;
    const alt = site.label_alt_id.value(i);
    s.altLoc[k] = alt === '.' || alt === '?' ? '' : alt;
  });
  for (let k = 0; k < count; k++) {
    if (!Number.isFinite(s.x[k]!) || !Number.isFinite(s.y[k]!) || !Number.isFinite(s.z[k]!)) {
      throw fmtError(path, `atom ${k + 1} (${s.atomName[k]}) has non-numeric coordinates`);
    }
  }
  return s;
}

/** Axis-aligned bounds of the atoms in Å, (z, y, x) order like every tuple in tme. */
export function structureBounds(s: Structure): { min: Zyx; max: Zyx } {
  let minX = Infinity; let minY = Infinity; let minZ = Infinity;
  let maxX = -Infinity; let maxY = -Infinity; let maxZ = -Infinity;
  for (let i = 0; i < s.atomCount; i++) {
    const x = s.x[i]!; const y = s.y[i]!; const z = s.z[i]!;
    if (x < minX) minX = x; if (x > maxX) maxX = x;
    if (y < minY) minY = y; if (y > maxY) maxY = y;
    if (z < minZ) minZ = z; if (z > maxZ) maxZ = z;
  }
  return { min: [minZ, minY, minX], max: [maxZ, maxY, maxX] };
}

/** Distinct chain ids in order of appearance. */
export function structureChains(s: Structure): string[] {
  return [...new Set(s.chain)];
}
