import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatStar } from '@tme/formats';
import { matrixToRelionEuler } from '@tme/rotations';
import type { ExportPick } from '../src/pick';
import { exportStopgap } from '../src/export-stopgap';
import { exportWarp } from '../src/export-warp';
import { formatStopgapMotl, stopgapMotlRows } from '../src/stopgap-motl';
import { warpMatchingTable, warpStarFile } from '../src/warp-table';
import { relionEulerAngles2Matrix } from './helpers/relion-euler';
import { identityRotation, makePicks, maxAbsDiff } from './helpers/picks';

const PYTHON = '/usr/bin/python3';
const hasScipy = fs.existsSync(PYTHON) && (() => {
  try { execFileSync(PYTHON, ['-c', 'import scipy']); return true; } catch { return false; }
})();

// ---- Independent readers: written from the consumers' code, sharing nothing with the writers. ----

type Table = { labels: string[]; rows: string[][] };

/**
 * STOPGAP's stopgap_star_read (sg_toolbox): labels are the lines starting with `_` (text after `#` dropped,
 * trimmed), data are the non-empty lines from the SECOND line after the last label on, split on whitespace.
 */
function readStopgapLikeStopgap(text: string): Table & { block: string } {
  const lines = text.split('\n');
  const dataLines = lines.filter((l) => l.startsWith('data_'));
  expect(dataLines).toHaveLength(1);
  expect(lines.filter((l) => l.startsWith('loop_'))).toHaveLength(1);
  const labelIdx = lines.flatMap((l, i) => (l.startsWith('_') ? [i] : []));
  const labels = labelIdx.map((i) => lines[i]!.replace(/#.*/, '').trim().slice(1));
  const last = Math.max(...labelIdx);
  const rows = lines.filter((l, i) => i > last + 1 && l.trim() !== '').map((l) => l.trim().split(/\s+/));
  return { block: dataLines[0]!.trim(), labels, rows };
}

/** Warp's Star(path) constructor: skip to `loop_`, labels `_name #n` (n 1-based column), rows until one does not split into as many fields. */
function readWarpLikeWarp(text: string): Table {
  const lines = text.split('\n');
  let i = lines.findIndex((l) => l.includes('loop_')) + 1;
  const index = new Map<string, number>();
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.length === 0) continue;
    if (l[0] !== '_') break;
    const parts = l.split(/[ \t]+/).filter((p) => p !== '');
    index.set(parts[0]!.slice(1), parts.length > 1 ? Number(parts[1]!.slice(1)) - 1 : index.size);
  }
  const labels = [...index.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k);
  const rows: string[][] = [];
  for (; i < lines.length; i++) {
    const parts = lines[i]!.trim().split(/\s+/).filter((p) => p !== '');
    if (parts.length !== labels.length) break;
    rows.push(parts);
  }
  return { labels, rows };
}

const deg = Math.PI / 180;
const rz = (a: number): number[] => [Math.cos(a * deg), -Math.sin(a * deg), 0, Math.sin(a * deg), Math.cos(a * deg), 0, 0, 0, 1];
const rx = (a: number): number[] => [1, 0, 0, 0, Math.cos(a * deg), -Math.sin(a * deg), 0, Math.sin(a * deg), Math.cos(a * deg)];
const mul = (a: number[], b: number[]): number[] => Array.from({ length: 9 }, (_, k) => {
  const r = Math.floor(k / 3); const c = k % 3;
  return a[3 * r]! * b[c]! + a[3 * r + 1]! * b[3 + c]! + a[3 * r + 2]! * b[6 + c]!;
});
/** STOPGAP's sg_euler2matrix(phi, psi, the) as written there: Rz(psi)·Rx(the)·Rz(phi). */
const sgEuler2Matrix = (phi: number, psi: number, the: number): number[] => mul(rz(psi), mul(rx(the), rz(phi)));

const STOPGAP_LABELS = ['motl_idx', 'tomo_num', 'object', 'subtomo_num', 'halfset', 'orig_x', 'orig_y', 'orig_z', 'score',
  'x_shift', 'y_shift', 'z_shift', 'phi', 'psi', 'the', 'class'];
const WARP_LABELS = ['rlnCoordinateX', 'rlnCoordinateY', 'rlnCoordinateZ', 'rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi',
  'rlnMicrographName', 'rlnAutopickFigureOfMerit'];

describe('STOPGAP motive list', () => {
  const shape = [50, 60, 70] as const;
  const picks = makePicks(30, shape);
  const text = formatStopgapMotl(stopgapMotlRows(picks, { tomogramNumber: 4, firstIndex: 11 }));
  const t = readStopgapLikeStopgap(text);
  const col = (row: string[], label: string): string => row[t.labels.indexOf(label)]!;

  it('has STOPGAP\'s block and exactly its 16 columns in order, and every row survives STOPGAP\'s reader', () => {
    expect(t.block).toBe('data_stopgap_motivelist');
    expect(t.labels).toEqual(STOPGAP_LABELS);
    expect(t.rows).toHaveLength(picks.length);
    for (const r of t.rows) expect(r).toHaveLength(16);
  });

  it('round-trips positions (1-based orig + shift) to 1e-3 voxel and R through sg_euler2matrix to 1e-6', () => {
    t.rows.forEach((r, i) => {
      const p = picks[i]!;
      const n = (label: string): number => Number(col(r, label));
      // STOPGAP is 1-based: the 0-based tme position is orig + shift − 1; orig is the integer voxel it cuts on.
      expect(Math.abs(n('orig_x') + n('x_shift') - 1 - p.position[2])).toBeLessThan(1e-3);
      expect(Math.abs(n('orig_y') + n('y_shift') - 1 - p.position[1])).toBeLessThan(1e-3);
      expect(Math.abs(n('orig_z') + n('z_shift') - 1 - p.position[0])).toBeLessThan(1e-3);
      for (const a of ['orig_x', 'orig_y', 'orig_z']) expect(Number.isInteger(n(a))).toBe(true);
      for (const a of ['x_shift', 'y_shift', 'z_shift']) expect(Math.abs(n(a))).toBeLessThanOrEqual(0.5);
      expect(maxAbsDiff(sgEuler2Matrix(n('phi'), n('psi'), n('the')), p.rotation)).toBeLessThan(1e-6);
      expect(n('score')).toBeCloseTo(p.score, 6);
      expect([n('motl_idx'), n('subtomo_num'), n('tomo_num'), n('object')]).toEqual([11 + i, 11 + i, 4, 1]);
      expect(col(r, 'halfset')).toBe((11 + i) % 2 === 1 ? 'A' : 'B');
      expect(n('class')).toBe(p.detail! + 1);
    });
  });

  it('1-based positions: voxel (0, 0, 0) is orig 1 1 1, and a .5 rest rounds the box centre up', () => {
    const one = (position: [number, number, number]): string[] => stopgapMotlRows([{ position, rotation: identityRotation(), score: 0.5 }])[0]!;
    const r0 = one([0, 0, 0]);
    expect(r0.slice(5, 8)).toEqual(['1', '1', '1']);
    expect(r0.slice(9, 12).map(Number)).toEqual([0, 0, 0]);
    const r1 = one([2.25, 5.75, 7.5]); // (z, y, x)
    expect(r1.slice(5, 8)).toEqual(['9', '7', '3']); // x: round(7.5) + 1, y: round(5.75) + 1, z: round(2.25) + 1
    expect(r1.slice(9, 12).map(Number)).toEqual([-0.5, -0.25, 0.25]);
  });

  it('hand-computed angles: 90° about z → phi 90, psi 0, the 0; 90° about y → (−90, 90, 90)', () => {
    // Rz(psi)·Rx(the)·Rz(phi) = Rz(90): the = 0 and phi + psi = 90; tme puts a gimbal-locked turn in phi.
    // Ry(90) = Rz(90)·Rx(90)·Rz(−90) (a turn about Rz(90)·x = y): psi = 90, the = 90, phi = −90.
    const angles = (rotation: number[]): number[] => stopgapMotlRows([{ position: [5, 5, 5], rotation: Float64Array.from(rotation), score: 1 }])[0]!.slice(12, 15).map(Number);
    expect(angles(rz(90))).toEqual([90, 0, 0]);
    expect(angles([0, 0, 1, 0, 1, 0, -1, 0, 0])).toEqual([-90, 90, 90]);
  });

  (hasScipy ? it : it.skip)('agrees with cryoCAT\'s RELION → STOPGAP conversion (scipy), starting from tme\'s RELION angles', () => {
    // cryoCAT RelionMotl.convert_angles_from_relion: zxz = from_euler('ZYZ', [rot, tilt, psi]).as_euler('zxz');
    // phi = −zxz[2], the = −zxz[1], psi = −zxz[0]; StopgapMotl copies phi/psi/theta into the motl unchanged.
    const relion = picks.map((p) => [...matrixToRelionEuler(p.rotation)]);
    const out = execFileSync(PYTHON, ['-c', [
      'import json,sys',
      'from scipy.spatial.transform import Rotation',
      'a=json.loads(sys.stdin.read())',
      'z=Rotation.from_euler("ZYZ",a,degrees=True).as_euler("zxz",degrees=True)',
      'print(json.dumps([[-r[2],-r[0],-r[1]] for r in z.tolist()]))',
    ].join('\n')], { input: JSON.stringify(relion) }).toString();
    const cryocat = JSON.parse(out) as [number, number, number][];
    t.rows.forEach((r, i) => {
      const [phi, psi, the] = cryocat[i]!;
      const ours = sgEuler2Matrix(Number(col(r, 'phi')), Number(col(r, 'psi')), Number(col(r, 'the')));
      expect(maxAbsDiff(ours, sgEuler2Matrix(phi, psi, the))).toBeLessThan(1e-6);
    });
  });

  it('refuses a tomogram number below 1', () => {
    expect(() => stopgapMotlRows(picks, { tomogramNumber: 0 })).toThrow(/tomogramNumber/);
  });
});

describe('Warp template-matching table', () => {
  const geometry = { shape: [64, 200, 180] as [number, number, number], voxelSize: 10.2, name: 'TS_05' };
  const picks = makePicks(30, geometry.shape, 3);
  const text = formatStar(warpStarFile([warpMatchingTable(picks, geometry)]));
  const t = readWarpLikeWarp(text);

  it('has Warp\'s 8 columns in order under a nameless data_ block, one row per pick', () => {
    expect(t.labels).toEqual(WARP_LABELS);
    expect(text).toMatch(/^\s*data_\s*\n\s*loop_/);
    expect(t.rows).toHaveLength(picks.length);
    for (const r of t.rows) expect(r[6]).toBe('TS_05.tomostar');
  });

  it('round-trips positions (normalised, × voxels) to 1e-3 voxel and R through RELION\'s Euler_angles2matrix to 1e-6', () => {
    t.rows.forEach((r, i) => {
      const p = picks[i]!;
      const v = r.map(Number);
      // Warp's matcher: index · pixel / (N · pixel); 0-based, no half-voxel offset.
      expect(Math.abs(v[0]! * geometry.shape[2] - p.position[2])).toBeLessThan(1e-3);
      expect(Math.abs(v[1]! * geometry.shape[1] - p.position[1])).toBeLessThan(1e-3);
      expect(Math.abs(v[2]! * geometry.shape[0] - p.position[0])).toBeLessThan(1e-3);
      for (const k of [0, 1, 2]) expect(v[k]! >= 0 && v[k]! < 1).toBe(true);
      expect(maxAbsDiff(relionEulerAngles2Matrix(v[3]!, v[4]!, v[5]!), p.rotation)).toBeLessThan(1e-6);
      expect(v[7]).toBeCloseTo(p.score, 6);
    });
  });

  it('voxel 0 is 0 and the centre voxel N/2 is 0.5', () => {
    const rows = warpMatchingTable([
      { position: [0, 0, 0], rotation: identityRotation(), score: 1 },
      { position: [32, 100, 90], rotation: identityRotation(), score: 1 },
    ], geometry).rows;
    expect(rows[0]!.slice(0, 3).map(Number)).toEqual([0, 0, 0]);
    expect(rows[1]!.slice(0, 3).map(Number)).toEqual([0.5, 0.5, 0.5]);
  });
});

describe('exportStopgap / exportWarp', () => {
  let dir: string;
  beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-motl-')); });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const picks: ExportPick[] = makePicks(4, [20, 20, 20]);

  it('write OUTDIR/stopgap.star and OUTDIR/warp.star, and refuse to replace them without force', () => {
    const a = exportStopgap(picks, { outDir: dir });
    const b = exportWarp(picks, { shape: [20, 20, 20], voxelSize: 8, name: 'T1' }, { outDir: dir });
    expect(a.files).toEqual([path.join(dir, 'stopgap.star')]);
    expect(b.files).toEqual([path.join(dir, 'warp.star')]);
    expect(readStopgapLikeStopgap(fs.readFileSync(a.files[0]!, 'utf8')).rows).toHaveLength(4);
    expect(readWarpLikeWarp(fs.readFileSync(b.files[0]!, 'utf8')).rows).toHaveLength(4);
    expect(() => exportStopgap(picks, { outDir: dir })).toThrow(/exists/);
    expect(exportWarp(picks, { shape: [20, 20, 20], voxelSize: 8, name: 'T1' }, { outDir: dir, force: true }).written).toBe(4);
  });
});
