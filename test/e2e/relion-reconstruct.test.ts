/**
 * End-to-end proof of `--format relion` through the real relion_reconstruct (RELION 3.1.3 in Debian): copies of an
 * asymmetric template are placed in a synthetic tomogram at known positions and rotations, exported with
 * @tme/export, and reconstructed with `relion_reconstruct --3d_rot`. If tme's angles, origins, box centre and
 * STAR layout are what RELION means, the reconstruction is the template again.
 *
 * The template is a compact asymmetric set of Gaussian blobs; a copy turned by R is drawn by moving each blob
 * centre to c + R·offset, which is the exact active rotation about box//2 (round blobs need no interpolation).
 * Measured with RELION 3.1.3 (NCC with the template over the 40³ box): noise-free 0.99988 (transposed angles 0.597),
 * sub-voxel positions 0.99987 (origin sign flipped 0.9931), pyTME TSV through the tme binary 0.99988 (pyTME's
 * angles copied into the STAR 0.616), noise σ 0.1 + ±60° wedge with --ctf 0.790 (no --ctf 0.727, wedge turned to
 * kx 0.506), boxes crossing 1–3 faces (filled, normalised over their inside) 0.99977. `tme run --invert-contrast` on
 * a tomogram with dark particles: 0.973 (the same subtomograms not inverted, as tme run exported them before: −0.973).
 * The assertions keep a margin below these.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVolume, formatStar, parseStar, readMrc, writeMrc, type Volume } from '@tme/formats';
import { exportRelion, isMeasured, type ExportPick, type TomogramGeometry } from '@tme/export';
import { matrixToPytmeEuler, sampleRotations, transpose } from '@tme/rotations';
import { rng } from './helpers';

const RELION = 'relion_reconstruct';
/** The built `tme` binary (turbo builds @tme/cli before this package's tests). */
const TME = path.join(__dirname, '..', '..', 'apps', 'cli', 'dist', 'main.js');
const hasRelion = spawnSync('which', [RELION]).status === 0;
const describeRelion = hasRelion ? describe : describe.skip;
if (!hasRelion) {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED relion-reconstruct e2e: ${RELION} is not on PATH (Debian: apt-get install relion)`);
}

const N = 128; // tomogram edge, voxels
const VOXEL = 10; // Å
const BOX = 40; // even subtomogram box

/** The asymmetric "molecule": Gaussian blobs (σ 1.5 voxels) at these (x, y, z) offsets from the template centre. */
const BLOBS: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 0, 1.0], [7, 0, 0, 0.8], [0, 4, 0, 0.6], [0, 0, 10, 1.2], [-3, -5, 2, 0.7], [4, 6, -6, 0.9],
];
const SIGMA = 1.5;
const NOISE = Number(process.env.TME_E2E_NOISE ?? 0.1); // σ of the added noise (blob peaks are 0.6–1.2)

function randomRotation(next: () => number): Float64Array {
  let q: number[];
  let n: number;
  do { q = [0, 0, 0, 0].map(() => next() * 2 - 1); n = Math.hypot(...q); } while (n < 0.1 || n > 1);
  const [w, x, y, z] = q.map((v) => v / n) as [number, number, number, number];
  return Float64Array.from([
    1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
    2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
    2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
  ]);
}

/**
 * Adds the molecule turned ACTIVELY by R about its centre, the centre at `centre` (z, y, x voxels): blob k lands
 * at centre + R·offset_k. Gaussian blobs are round, so this is the exact rotated template (no interpolation).
 */
function addMolecule(
  data: Float32Array, shape: readonly [number, number, number], centre: readonly [number, number, number], r: Float64Array,
  blobs: typeof BLOBS = BLOBS, sign = 1,
): void {
  const [nz, ny, nx] = shape;
  for (const [ox, oy, oz, amp] of blobs) {
    const px = centre[2] + r[0]! * ox + r[1]! * oy + r[2]! * oz;
    const py = centre[1] + r[3]! * ox + r[4]! * oy + r[5]! * oz;
    const pz = centre[0] + r[6]! * ox + r[7]! * oy + r[8]! * oz;
    const reach = Math.ceil(4 * SIGMA);
    for (let z = Math.max(0, Math.floor(pz) - reach); z <= Math.min(nz - 1, Math.ceil(pz) + reach); z += 1) {
      for (let y = Math.max(0, Math.floor(py) - reach); y <= Math.min(ny - 1, Math.ceil(py) + reach); y += 1) {
        for (let x = Math.max(0, Math.floor(px) - reach); x <= Math.min(nx - 1, Math.ceil(px) + reach); x += 1) {
          const d2 = (x - px) ** 2 + (y - py) ** 2 + (z - pz) ** 2;
          data[(z * ny + y) * nx + x]! += sign * amp * Math.exp(-d2 / (2 * SIGMA * SIGMA));
        }
      }
    }
  }
}

/** The unrotated template in a BOX³ box, centre at box//2. */
function templateBox(): Float32Array {
  const t = new Float32Array(BOX ** 3);
  addMolecule(t, [BOX, BOX, BOX], [BOX / 2, BOX / 2, BOX / 2], Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]));
  return t;
}

function ncc(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ma = 0; let mb = 0;
  for (let i = 0; i < a.length; i += 1) { ma += a[i]!; mb += b[i]!; }
  ma /= a.length; mb /= b.length;
  let ab = 0; let aa = 0; let bb = 0;
  for (let i = 0; i < a.length; i += 1) { const x = a[i]! - ma; const y = b[i]! - mb; ab += x * y; aa += x * x; bb += y * y; }
  return ab / Math.sqrt(aa * bb);
}

/** In-place radix-2 complex FFT of one line (twiddles cos/sin precomputed for the sign: −1 forward, +1 inverse). */
function fft1(re: Float64Array, im: Float64Array, cos: Float64Array, sin: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i += 1) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const tr = re[i]!; re[i] = re[j]!; re[j] = tr;
      const ti = im[i]!; im[i] = im[j]!; im[j] = ti;
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const step = n / len;
    const half = len / 2;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < half; k += 1) {
        const wr = cos[k * step]!; const wi = sin[k * step]!;
        const a = i + k; const b = a + half;
        const xr = re[b]! * wr - im[b]! * wi; const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr; im[b] = im[a]! - xi; re[a] = re[a]! + xr; im[a] = im[a]! + xi;
      }
    }
  }
}

/** 3D FFT of an n³ complex volume (x fastest), one axis at a time; unnormalised. */
function fft3(re: Float64Array, im: Float64Array, n: number, sign: number): void {
  const cos = new Float64Array(n / 2); const sin = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k += 1) { cos[k] = Math.cos((2 * Math.PI * k) / n); sin[k] = sign * Math.sin((2 * Math.PI * k) / n); }
  const lr = new Float64Array(n); const li = new Float64Array(n);
  for (const stride of [1, n, n * n]) {
    for (let a = 0; a < n; a += 1) for (let b = 0; b < n; b += 1) {
      const base = stride === 1 ? (a * n + b) * n : stride === n ? a * n * n + b : a * n + b;
      for (let k = 0; k < n; k += 1) { lr[k] = re[base + k * stride]!; li[k] = im[base + k * stride]!; }
      fft1(lr, li, cos, sin);
      for (let k = 0; k < n; k += 1) { re[base + k * stride] = lr[k]!; im[base + k * stride] = li[k]!; }
    }
  }
}

/** Removes the missing wedge of a ±`maxTilt` tilt series (tilt axis y, beam z) from an n³ tomogram. */
function applyWedge(data: Float32Array, n: number, maxTilt: number): void {
  const re = Float64Array.from(data); const im = new Float64Array(data.length);
  fft3(re, im, n, -1);
  const f = (k: number): number => (k <= n / 2 ? k : k - n);
  for (let z = 0; z < n; z += 1) for (let y = 0; y < n; y += 1) for (let x = 0; x < n; x += 1) {
    if (!isMeasured(f(x), f(z), [-maxTilt, maxTilt])) { const i = (z * n + y) * n + x; re[i] = 0; im[i] = 0; }
  }
  fft3(re, im, n, 1);
  for (let i = 0; i < data.length; i += 1) data[i] = re[i]! / data.length;
}

interface Scene { tomogram: Volume; picks: ExportPick[] }

/** 8 copies on a 2×2×2 grid (64 voxels apart), random rotations; `jitter` adds known sub-voxel offsets. */
function makeScene(seed: number, jitter: boolean): Scene {
  const next = rng(seed);
  const data = new Float32Array(N ** 3);
  const picks: ExportPick[] = [];
  for (const z of [32, 96]) for (const y of [32, 96]) for (const x of [32, 96]) {
    const off = (): number => (jitter ? Math.round((next() - 0.5) * 8) / 10 : 0); // −0.4 … +0.4
    const position = [z + off(), y + off(), x + off()] as const;
    const rotation = randomRotation(next);
    addMolecule(data, [N, N, N], position, rotation);
    picks.push({ position, rotation, score: 1 });
  }
  return { tomogram: createVolume(data, [N, N, N], VOXEL), picks };
}

const geometry: TomogramGeometry = { shape: [N, N, N], voxelSize: VOXEL, name: 'synth' };

function reconstruct(dir: string, extra: string[] = [], star = 'particles.star', box = BOX): Float32Array {
  const r = spawnSync(RELION, ['--i', star, '--o', 'rec.mrc', '--3d_rot', ...extra], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${RELION} failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  // RELION read our optics table (an optics table it rejects is dropped silently, relion-imod.md §1).
  expect(r.stdout).toMatch(/Taking angpix from the first optics group: 10\b/);
  // The only complaints allowed: RELION 3.1 predates rlnTomoName (a RELION 4 label) and does not know tme's
  // tmeBoxOutsideFraction; it keeps both unread ("will ignore (but maintain) values for the unknown label").
  const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /WARNING|ERROR/.test(l));
  expect(complaints.filter((l) => !/will ignore \(but maintain\) values for the unknown label: (rlnTomoName|tmeBoxOutsideFraction)$/.test(l.trim()))).toEqual([]);
  const rec = readMrc(path.join(dir, 'rec.mrc'));
  expect(rec.shape).toEqual([box, box, box]);
  expect(rec.voxelSize[2]).toBeCloseTo(VOXEL, 3); // RELION took the pixel size from our optics table
  return rec.data;
}

describeRelion('relion_reconstruct --3d_rot on tme’s --format relion export', () => {
  let work: string;
  const template = templateBox();
  const measured: Record<string, number> = {};

  beforeAll(() => { work = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-relion-e2e-')); });
  afterAll(() => {
    fs.rmSync(work, { recursive: true, force: true });
    // eslint-disable-next-line no-console
    console.log(`relion_reconstruct NCC with the template: ${JSON.stringify(measured)}`);
  });

  it('noise-free, integer positions: the reconstruction is the template (NCC ≥ 0.9); transposed angles are not', () => {
    const { tomogram, picks } = makeScene(1, false);
    const dir = path.join(work, 'clean');
    const summary = exportRelion(picks, tomogram, geometry, { outDir: dir, box: BOX });
    expect(summary).toMatchObject({ written: 8, padded: 0, skipped: 0 });
    const clean = reconstruct(dir);
    measured.clean = ncc(clean, template);
    expect(measured.clean).toBeGreaterThanOrEqual(0.9);
    // tme's own column is read past: without it RELION reconstructs the very same map.
    const star = parseStar(fs.readFileSync(path.join(dir, 'particles.star'), 'utf8'));
    const loop = star.blocks.find((b) => b.name === 'particles')!.loops[0]!;
    const col = loop.labels.indexOf('tmeBoxOutsideFraction');
    expect(col).toBeGreaterThan(0);
    loop.labels.splice(col, 1);
    for (const row of loop.rows) row.splice(col, 1);
    fs.writeFileSync(path.join(dir, 'without-column.star'), formatStar(star));
    expect(Array.from(reconstruct(dir, [], 'without-column.star'))).toEqual(Array.from(clean));

    const dirT = path.join(work, 'transposed');
    exportRelion(picks.map((p) => ({ ...p, rotation: transpose(p.rotation) })), tomogram, geometry, { outDir: dirT, box: BOX });
    measured.transposed = ncc(reconstruct(dirT), template);
    expect(measured.transposed).toBeLessThan(measured.clean - 0.2);
  });

  (fs.existsSync(TME) ? it : it.skip)('a pyTME orientations TSV through the `tme export --format relion` binary reconstructs the template', () => {
    const { tomogram, picks } = makeScene(4, false);
    const target = path.join(work, 'target.mrc');
    writeMrc(target, tomogram);
    // pyTME's layout: x y z, its extrinsic zyz angles (NOT RELION's), score, detail.
    const tsv = ['x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail', ...picks.map((p) => {
      const e = matrixToPytmeEuler(p.rotation).map((a) => Math.fround(a));
      return [p.position[2], p.position[1], p.position[0], ...e, 0.5, 0].join('\t');
    })].join('\n');
    const tsvPath = path.join(work, 'picks.tsv');
    fs.writeFileSync(tsvPath, `${tsv}\n`);
    const dir = path.join(work, 'cli');
    const run = spawnSync(process.execPath, [TME, 'export', tsvPath, '--format', 'relion', '--target', target, '--box', String(BOX),
      '--tilt-range', '-60,60', '-o', dir], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^tme export: 8 picks \(0 boxes cross a face; 0 skipped\)/);
    measured.pytmeTsvViaCli = ncc(reconstruct(dir), template);
    expect(measured.pytmeTsvViaCli).toBeGreaterThanOrEqual(0.9);

    // pyTME's own export copies its angles into rlnAngleRot/Tilt/Psi unconverted: RELION then misplaces them.
    const star = parseStar(fs.readFileSync(path.join(dir, 'particles.star'), 'utf8'));
    const loop = star.blocks.find((b) => b.name === 'particles')!.loops[0]!;
    const cols = ['rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi'].map((l) => loop.labels.indexOf(l));
    loop.rows.forEach((row, i) => {
      const e = matrixToPytmeEuler(picks[i]!.rotation);
      cols.forEach((c, k) => { row[c] = String(e[k]); });
    });
    fs.writeFileSync(path.join(dir, 'copied.star'), formatStar(star));
    measured.pytmeAnglesCopied = ncc(reconstruct(dir, [], 'copied.star'), template);
    expect(measured.pytmeAnglesCopied).toBeLessThan(measured.pytmeTsvViaCli - 0.2);
  });

  it('boxes that cross a tomogram face are kept, filled with 0 after normalisation, marked, and reconstruct the template', () => {
    // Copies 16 voxels from the faces: every 40-voxel box reaches 4 voxels past one to three faces, the molecule
    // (±13 voxels) stays inside the tomogram.
    const next = rng(5);
    const data = new Float32Array(N ** 3);
    const picks: ExportPick[] = [];
    for (const z of [16, 111]) for (const y of [16, 111]) for (const x of [16, 64]) {
      const rotation = randomRotation(next);
      addMolecule(data, [N, N, N], [z, y, x], rotation);
      picks.push({ position: [z, y, x], rotation, score: 1 });
    }
    const dir = path.join(work, 'faces');
    const summary = exportRelion(picks, createVolume(data, [N, N, N], VOXEL), geometry, { outDir: dir, box: BOX });
    expect(summary).toMatchObject({ written: 8, padded: 8, skipped: 0 });
    // Box at 16: −4…35, 36 of 40 inside; at 111: 91…130, 37 inside; at 64: all 40.
    const inside = (c: number): number => (c === 16 ? 36 : c === 111 ? 37 : 40);
    const want = picks.map((p) => 1 - (inside(p.position[0]) * inside(p.position[1]) * inside(p.position[2])) / BOX ** 3);
    summary.outsideFractions!.forEach((f, i) => expect(f).toBeCloseTo(want[i]!, 12));
    const first = readMrc(path.join(dir, 'Subtomograms', 'synth_000001.mrc')).data;
    expect(first[0]).toBe(0); // voxel (−4, −4, −4) of the tomogram
    measured.faces = ncc(reconstruct(dir), template);
    expect(measured.faces).toBeGreaterThanOrEqual(0.9);
  });

  it('sub-voxel positions: the origins re-centre them (flipping their sign scores lower)', () => {
    const { tomogram, picks } = makeScene(2, true);
    const dir = path.join(work, 'jitter');
    exportRelion(picks, tomogram, geometry, { outDir: dir, box: BOX });
    measured.subvoxel = ncc(reconstruct(dir), template);
    expect(measured.subvoxel).toBeGreaterThanOrEqual(0.9);

    const star = parseStar(fs.readFileSync(path.join(dir, 'particles.star'), 'utf8'));
    const loop = star.blocks.find((b) => b.name === 'particles')!.loops[0]!;
    const cols = ['rlnOriginXAngst', 'rlnOriginYAngst', 'rlnOriginZAngst'].map((l) => loop.labels.indexOf(l));
    for (const row of loop.rows) for (const c of cols) row[c] = String(-Number(row[c]));
    fs.writeFileSync(path.join(dir, 'flipped.star'), formatStar(star));
    measured.subvoxelOriginFlipped = ncc(reconstruct(dir, [], 'flipped.star'), template);
    expect(measured.subvoxelOriginFlipped).toBeLessThan(measured.subvoxel - 0.003);
  });

  it('noise + ±60° missing wedge, inverted contrast: the wedge volume (rlnCtfImage, --ctf) recovers the template', () => {
    const { tomogram, picks } = makeScene(3, false);
    applyWedge(tomogram.data, N, 60);
    const next = rng(99);
    for (let i = 0; i < tomogram.data.length; i += 1) {
      const g = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
      tomogram.data[i] = -tomogram.data[i]! + NOISE * g; // dark protein, as in cryo-ET
    }
    const dir = path.join(work, 'wedge');
    const summary = exportRelion(picks, tomogram, geometry, { outDir: dir, box: BOX, tiltRange: [-60, 60], invert: true });
    expect(summary.files).toContain(path.join(dir, 'Subtomograms', 'synth_wedge.mrc'));
    measured.wedgeNoiseCtf = ncc(reconstruct(dir, ['--ctf']), template);
    measured.wedgeNoiseNoCtf = ncc(reconstruct(dir), template);
    // The same weights with the wedge around kx instead of kz (z ↔ x swapped): RELION must read our layout as meant.
    const wedgePath = path.join(dir, 'Subtomograms', 'synth_wedge.mrc');
    const w = readMrc(wedgePath);
    const swapped = new Float32Array(w.data.length);
    for (let z = 0; z < BOX; z += 1) for (let y = 0; y < BOX; y += 1) for (let x = 0; x < BOX; x += 1) {
      swapped[(z * BOX + y) * BOX + x] = w.data[(x * BOX + y) * BOX + z]!;
    }
    writeMrc(wedgePath, createVolume(swapped, [BOX, BOX, BOX], VOXEL));
    measured.wedgeNoiseWrongAxisCtf = ncc(reconstruct(dir, ['--ctf']), template);
    // Measured with RELION 3.1.3 (noise σ 0.1): --ctf 0.790, no --ctf 0.727, wedge around kx 0.506; floors keep a margin.
    expect(measured.wedgeNoiseCtf).toBeGreaterThanOrEqual(0.7);
    expect(measured.wedgeNoiseCtf).toBeGreaterThan(measured.wedgeNoiseNoCtf + 0.03);
    expect(measured.wedgeNoiseWrongAxisCtf).toBeLessThan(measured.wedgeNoiseCtf - 0.05);
  });
});

/** A smaller molecule for searches the CLI runs in seconds: the same asymmetric layout, about half the size. */
const SMALL_BLOBS: typeof BLOBS = [[0, 0, 0, 1.0], [4, 0, 0, 0.8], [0, 3, 0, 0.6], [0, 0, 6, 1.2], [-2, -3, 1, 0.7], [3, 4, -4, 0.9]];

(fs.existsSync(TME) ? describeRelion : describe.skip)('tme run --invert-contrast → relion_reconstruct', () => {
  let work: string;
  const measured: Record<string, number> = {};
  beforeAll(() => { work = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-relion-invert-')); });
  afterAll(() => {
    fs.rmSync(work, { recursive: true, force: true });
    // eslint-disable-next-line no-console
    console.log(`dark particles, relion_reconstruct NCC with the bright template: ${JSON.stringify(measured)}`);
  });

  it('a tomogram with DARK particles: the exported subtomograms average to the bright template (NCC ≥ 0.8), and the job folder exports the same', () => {
    const n = 96;
    const tbox = 24;
    const step = 30;
    // Rotations from the search's own set: the search can find each one exactly, so the test is about contrast.
    const rotations = sampleRotations({ angularStep: step, measure: false }).matrices;
    const next = rng(11);
    const data = new Float32Array(n ** 3);
    for (const z of [24, 72]) for (const y of [24, 72]) for (const x of [24, 72]) {
      const k = Math.floor(next() * (rotations.length / 9));
      addMolecule(data, [n, n, n], [z, y, x], rotations.subarray(9 * k, 9 * k + 9), SMALL_BLOBS, -1); // dark protein
    }
    const noise = rng(12);
    for (let i = 0; i < data.length; i += 1) data[i] = data[i]! + 0.05 * Math.sqrt(-2 * Math.log(1 - noise())) * Math.cos(2 * Math.PI * noise());
    const target = path.join(work, 'dark.mrc');
    writeMrc(target, createVolume(data, [n, n, n], VOXEL));
    const t = new Float32Array(tbox ** 3);
    addMolecule(t, [tbox, tbox, tbox], [tbox / 2, tbox / 2, tbox / 2], Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), SMALL_BLOBS);
    const templateFile = path.join(work, 'template.mrc');
    writeMrc(templateFile, createVolume(t, [tbox, tbox, tbox], VOXEL));

    const out = path.join(work, 'run');
    const run = spawnSync(process.execPath, [TME, 'run', '--target', target, '--template', templateFile, '--angular-step', String(step),
      '--invert-contrast', '--device', 'cpu', '--number', '8', '-o', out], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, CI: '1' } });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/RELION: 8 subtomograms \(inverted: bright protein\), 0 boxes cross a face; 0 skipped/);
    const box = 36; // defaultBoxSize(24): the even fast size ≥ 1.5 × 24
    const reference = new Float32Array(box ** 3);
    addMolecule(reference, [box, box, box], [box / 2, box / 2, box / 2], Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), SMALL_BLOBS);
    const details = fs.readFileSync(path.join(out, 'picks.details.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    const outside = details[0]!.indexOf('relion_box_outside');
    expect(details.slice(1).map((row) => row[outside])).toEqual(new Array(8).fill('0')); // every box inside the tomogram
    const relionDir = path.join(out, 'relion');
    const star = parseStar(fs.readFileSync(path.join(relionDir, 'particles.star'), 'utf8'));
    const particles = star.blocks.find((b) => b.name === 'particles')!.loops[0]!;
    expect(particles.rows[0]![particles.labels.indexOf('rlnMicrographName')]).toBe(target);
    measured.runInverted = ncc(reconstruct(relionDir, [], 'particles.star', box), reference);
    expect(measured.runInverted).toBeGreaterThanOrEqual(0.8);

    // tme export from the job folder takes the job's box, target and contrast; --no-invert shows what was wrong before.
    const again = spawnSync(process.execPath, [TME, 'export', path.join(out, 'picks.tsv'), '--format', 'relion', '-o', path.join(work, 'again')], { encoding: 'utf8', timeout: 60_000 });
    expect(again.stderr).toBe('');
    measured.exportFromJob = ncc(reconstruct(path.join(work, 'again'), [], 'particles.star', box), reference);
    expect(measured.exportFromJob).toBeCloseTo(measured.runInverted, 6);
    const plain = spawnSync(process.execPath, [TME, 'export', path.join(out, 'picks.tsv'), '--format', 'relion', '--no-invert', '-o', path.join(work, 'plain')], { encoding: 'utf8', timeout: 60_000 });
    expect(plain.stderr).toBe('');
    measured.notInverted = ncc(reconstruct(path.join(work, 'plain'), [], 'particles.star', box), reference);
    expect(measured.notInverted).toBeLessThan(-0.5);
  });
});
