import type { Command } from 'commander';
import * as nodePath from 'node:path';
import {
  TmeError, VolumeStatistics, mergeStatistics, readEm, readMrcHeader, readMrcSlab, readStructure,
  structureBounds, structureChains, volumeFormatOf, volumeStatistics,
} from '@tme/formats';

/** Per-axis values for display, in the x, y, z order users read. */
interface Xyz { x: number; y: number; z: number }
const xyz = (zyx: readonly number[]): Xyz => ({ x: zyx[2]!, y: zyx[1]!, z: zyx[0]! });

export interface VolumeInfo {
  file: string;
  format: 'mrc' | 'em';
  /** MRC mode, or EM data-type code. */
  mode: number;
  dataType: string;
  byteOrder: 'little' | 'big';
  shape: Xyz;
  /** Å. */
  voxelSize: Xyz;
  /** Å. */
  origin: Xyz;
  nstart?: Xyz;
  extendedHeaderSize: number;
  isImageStack: boolean;
  labels: string[];
  /** Computed from the data (never taken from the header). */
  statistics: { min: number; max: number; mean: number; std: number };
  warnings: string[];
}

export interface StructureInfo {
  file: string;
  format: 'pdb' | 'mmcif' | 'bcif';
  atoms: number;
  chains: string[];
  models: number;
  /** Model whose atoms are counted (the first). */
  model: number | 'all';
  hetatms: number;
  /** Å, axis-aligned box of the atoms. */
  boundingBox: { min: Xyz; max: Xyz; size: Xyz };
}

const STRUCTURE_EXT = /\.(pdb|ent|cif|mmcif|bcif)(\.gz)?$/i;
/** z-sections per slab when streaming statistics: ~64 MiB of float32 at a time. */
const SLAB_BYTES = 64 << 20;

function volumeInfo(file: string, format: 'mrc' | 'em'): VolumeInfo {
  if (format === 'mrc') {
    const h = readMrcHeader(file);
    const [nz, ny, nx] = h.shape;
    const step = Math.max(1, Math.floor(SLAB_BYTES / (4 * nx * ny)));
    let stats: VolumeStatistics | undefined;
    for (let z = 0; z < nz; z += step) {
      const slab = readMrcSlab(file, z, Math.min(step, nz - z));
      const s = volumeStatistics(slab.data);
      stats = stats === undefined ? s : mergeStatistics(stats, s);
    }
    const { min, max, mean, std } = stats!;
    return {
      file, format, mode: h.mode, dataType: h.dataType, byteOrder: h.byteOrder, shape: xyz(h.shape),
      voxelSize: xyz(h.voxelSize), origin: xyz(h.origin), nstart: xyz(h.nstart), extendedHeaderSize: h.extendedHeaderSize,
      isImageStack: h.isImageStack, labels: h.labels, statistics: { min, max, mean, std }, warnings: h.warnings,
    };
  }
  const v = readEm(file);
  const { min, max, mean, std } = volumeStatistics(v.data);
  return {
    file, format, mode: v.header.dataTypeCode, dataType: v.header.dataType, byteOrder: v.header.byteOrder,
    shape: xyz(v.shape), voxelSize: xyz(v.voxelSize), origin: xyz(v.origin), extendedHeaderSize: 0,
    isImageStack: false, labels: v.header.comment ? [v.header.comment] : [], statistics: { min, max, mean, std },
    warnings: v.header.warnings,
  };
}

async function structureInfo(file: string): Promise<StructureInfo> {
  const s = await readStructure(file);
  const b = structureBounds(s);
  const min = xyz(b.min);
  const max = xyz(b.max);
  let hetatms = 0;
  for (let i = 0; i < s.atomCount; i++) hetatms += s.isHetatm[i]!;
  return {
    file, format: s.format, atoms: s.atomCount, chains: structureChains(s), models: s.models, model: s.model, hetatms,
    boundingBox: { min, max, size: { x: max.x - min.x, y: max.y - min.y, z: max.z - min.z } },
  };
}

/** Up to 6 significant digits, no exponent for ordinary magnitudes. */
function num(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(6)));
}
const triple = (t: Xyz, unit = ''): string => `x ${num(t.x)}, y ${num(t.y)}, z ${num(t.z)}${unit}`;

export function formatVolumeInfo(i: VolumeInfo): string {
  const rows: [string, string][] = [
    ['file', i.file],
    ['format', i.format === 'mrc' ? `MRC, mode ${i.mode} (${i.dataType}), ${i.byteOrder}-endian` : `EM, type ${i.mode} (${i.dataType}), ${i.byteOrder}-endian`],
    ['shape', `${triple(i.shape)}${i.isImageStack ? ' (image stack)' : ''}`],
    ['voxel size', triple(i.voxelSize, ' Å')],
    ['origin', triple(i.origin, ' Å')],
  ];
  if (i.nstart) rows.push(['nstart', triple(i.nstart)]);
  rows.push(['ext. header', `${i.extendedHeaderSize} bytes`]);
  const s = i.statistics;
  rows.push(['statistics', `min ${num(s.min)}, max ${num(s.max)}, mean ${num(s.mean)}, std ${num(s.std)} (from the data)`]);
  i.labels.forEach((l, k) => rows.push([k === 0 ? 'labels' : '', l]));
  i.warnings.forEach((w, k) => rows.push([k === 0 ? 'warnings' : '', w]));
  return rows.map(([k, v]) => `${k.padEnd(12)}${v}`).join('\n');
}

export function formatStructureInfo(i: StructureInfo): string {
  const b = i.boundingBox;
  return [
    ['file', i.file],
    ['format', i.format === 'pdb' ? 'PDB' : i.format === 'mmcif' ? 'mmCIF' : 'BinaryCIF'],
    ['atoms', `${i.atoms}${i.hetatms ? ` (${i.hetatms} HETATM)` : ''}${i.models > 1 ? ` in model ${i.model}` : ''}`],
    ['chains', `${i.chains.length} (${i.chains.join(', ')})`],
    ['models', String(i.models)],
    ['bounding box', `${triple(b.min)} to ${triple(b.max)} Å`],
    ['size', triple(b.size, ' Å')],
  ].map(([k, v]) => `${k!.padEnd(13)}${v}`).join('\n');
}

/** What `tme info` does; exported for tests. Prints to stdout. */
export async function runInfo(file: string, flags: { json?: boolean }): Promise<VolumeInfo | StructureInfo> {
  const volume = volumeFormatOf(file);
  let info: VolumeInfo | StructureInfo;
  let text: string;
  if (volume !== undefined) {
    const v = volumeInfo(file, volume);
    info = v;
    text = formatVolumeInfo(v);
  } else if (STRUCTURE_EXT.test(file)) {
    const s = await structureInfo(file);
    info = s;
    text = formatStructureInfo(s);
  } else {
    throw new TmeError('ERR_TME_UNSUPPORTED',
      `unknown file type "${nodePath.extname(file)}"; tme info reads .mrc .map .mrcs .rec .st .ccp4 .em and .pdb .ent .cif .mmcif .bcif (optionally .gz)`, { file });
  }
  process.stdout.write(`${flags.json ? JSON.stringify(info, null, 2) : text}\n`);
  return info;
}

export function register(program: Command): void {
  program
    .command('info')
    .description('Describe a volume (MRC/EM: shape, voxel size, origin, mode, statistics) or an atomic model (PDB/mmCIF: atoms, chains, models, bounding box)')
    .argument('<file>', 'a .mrc/.map/.mrcs/.rec/.st/.ccp4/.em volume or a .pdb/.cif (optionally .gz) model')
    .option('--json', 'print JSON instead of text')
    .action(async (file: string, flags: { json?: boolean }) => { await runInfo(file, flags); });
}
