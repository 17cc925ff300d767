/**
 * The sign of the tilt angle, proven against a reconstruction (issue 21, part 5). Copies of the bundled protein
 * (1TII), placed off-centre at random rotations, are projected at an asymmetric −40°…+60° series in IMOD's
 * geometry and reconstructed by weighted back-projection the way IMOD's `tilt` and eTomo's default reorientation
 * do (./wbp.ts, a test helper: no tomographic reconstruction program is packaged in Debian 12). The
 * reconstruction holds no energy where a −40…60 series samples nothing; tme's wedges (the continuous one, the
 * per-tilt one read from a .tlt file, and the export's subtomogram mask) must put their missing region there, and
 * the mirrored wedge (angles negated) must not.
 *
 * Measured: the continuous wedge (and the export's mask, the same geometry) throws away 3.4 % of the
 * reconstruction's power (its edges cut each tilt's ~10°-wide slab of a finite box), 3.8 % inside the two zones a
 * sign error swaps (45…55° either side), 96 % there when mirrored; the per-tilt wedge 0.04 %, 0.14 %, mirrored 50 %.
 * Flipping the sign in wedge.ts and wedge-mask.ts once made both filter tests fail. A search of the noisy
 * reconstruction (10 copies, 20° step, noise 15× the reconstruction's RMS): mean score at the true positions 0.348
 * with the .tlt as written vs 0.295 with its angles negated; recall 1.0 vs 0.5 (10 picks each).
 */
import { isMeasured } from '@tme/export';
import { bundledModelPath, buildTilts, continuousWedgeFilter, halfSpectrumAxes, parseTiltAngles, prepareTemplate, rfftn, simulateDensity, tiltWeightingFilter } from '@tme/template';
import { rotateBox } from '@tme/engine';
import { quaternionToMatrix, randomQuaternion, seededRandom } from '@tme/rotations';
import { scorePicks } from '@tme/example';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createVolume, readMrc, readStructure, writeMrc, type Zyx } from '@tme/formats';
import { pytmeEulerToMatrix } from '@tme/rotations';
import { runTme, tempDir } from './helpers';
import { imodTiltSeries, imodWeightedBackProjection } from './wbp';

jest.setTimeout(300_000);

const SHAPE: Zyx = [40, 64, 96];
const VOXEL = 10;
const PARTICLES = 10;
const ANGLES = Array.from({ length: 34 }, (_, i) => -40 + 3 * i).filter((a) => a <= 60);

interface Reconstruction {
  tomogram: Float32Array;
  template: ReturnType<typeof prepareTemplate>;
  truth: { position: Zyx; rotation: Float64Array }[];
  templateShape: Zyx;
}

async function reconstruct(): Promise<Reconstruction> {
  const model = await readStructure(bundledModelPath());
  const sim = simulateDensity(model, { voxelSize: VOXEL, lowpassAngstrom: 20, marginAngstrom: 6 });
  const template = prepareTemplate(sim.volume, { center: false });
  const t = template.shape;
  const [nz, ny, nx] = SHAPE;
  const random = seededRandom(21);
  const object = new Float32Array(nz * ny * nx);
  // Off-centre and away from the x edges, so that every view sees every copy whole (no truncation at −40°).
  const truth: { position: Zyx; rotation: Float64Array }[] = [];
  while (truth.length < PARTICLES) {
    const position: Zyx = [Math.floor(10 + 20 * random()), Math.floor(t[1] / 2 + (ny - t[1]) * random()), Math.floor(14 + (nx - 28) * random())];
    if (truth.every((q) => Math.hypot(...q.position.map((v, i) => v - (position[i] as number))) > Math.max(...t))) {
      truth.push({ position, rotation: quaternionToMatrix(randomQuaternion(random)) });
    }
  }
  for (const { position, rotation } of truth) {
    const r = rotateBox(template.data, t, rotation, 'cubic');
    for (let z = 0; z < t[0]; z++) for (let y = 0; y < t[1]; y++) for (let x = 0; x < t[2]; x++) {
      const i = ((position[0] - (t[0] >> 1) + z) * ny + (position[1] - (t[1] >> 1) + y)) * nx + (position[2] - (t[2] >> 1) + x);
      object[i] = (object[i] as number) + (r[(z * t[1] + y) * t[2] + x] as number);
    }
  }
  const views = imodTiltSeries(object, SHAPE, ANGLES);
  return { tomogram: imodWeightedBackProjection(views, ANGLES, SHAPE), template, truth, templateShape: t };
}

/** The reconstruction's power spectrum (tapered), computed once. */
function powerSpectrum(tomogram: Float32Array): Float64Array {
  const [nz, ny, nx] = SHAPE;
  // Periodic taper: the box edges must not put energy on the axes (kz is in the missing wedge).
  const tapered = new Float64Array(tomogram.length);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    const i = (z * ny + y) * nx + x;
    tapered[i] = (tomogram[i] as number) * Math.sin((Math.PI * (z + 0.5)) / nz) ** 2 * Math.sin((Math.PI * (y + 0.5)) / ny) ** 2 * Math.sin((Math.PI * (x + 0.5)) / nx) ** 2;
  }
  const spec = rfftn(tapered, SHAPE);
  return Float64Array.from(spec.re, (re, i) => re * re + (spec.im[i] as number) ** 2);
}

/**
 * The fraction of the reconstruction's power that falls where a filter is 0 (its missing region), over the Fourier
 * voxels 0.15 < |k| < 0.45 cycles/voxel whose (kx, kz) direction φ = atan(kz/kx) is in `zone`. A tomogram's
 * spectrum is centrosymmetric: the half spectrum holds it all.
 */
function powerLost(power: Float64Array, weight: (i: number, kz: number, kx: number) => number, zone: (phi: number) => boolean): number {
  const { half, fz, fy, fx } = halfSpectrumAxes(SHAPE, [1, 1, 1]);
  let lost = 0, total = 0;
  for (let z = 0, i = 0; z < half[0]; z++) for (let y = 0; y < half[1]; y++) for (let x = 0; x < half[2]; x++, i++) {
    const kz = fz[z] as number, kx = fx[x] as number;
    const r = Math.hypot(kz, fy[y] as number, kx);
    if (r < 0.15 || r > 0.45 || !zone(kx === 0 ? 90 : (Math.atan(kz / kx) * 180) / Math.PI)) continue;
    total += power[i] as number;
    if (weight(i, kz, kx) === 0) lost += power[i] as number;
  }
  return lost / total;
}

/** The two zones a sign error swaps: −60…−40° is sampled only by the mirrored series, 40…60° only by the right one. */
const DISPUTED = (phi: number): boolean => Math.abs(Math.abs(phi) - 50) <= 5;
const ALL = (): boolean => true;

let rec: Reconstruction;
let power: Float64Array;
beforeAll(async () => {
  rec = await reconstruct();
  power = powerSpectrum(rec.tomogram);
});

describe('tilt-angle sign against an IMOD-geometry weighted back-projection of a −40…60° series', () => {
  const voxel: Zyx = [VOXEL, VOXEL, VOXEL];
  /** Power lost: [right sign, everywhere; right sign, disputed zones; mirrored, disputed zones]. */
  const ratios = (weightOf: (sign: 1 | -1) => (i: number, kz: number, kx: number) => number) =>
    [powerLost(power, weightOf(1), ALL), powerLost(power, weightOf(1), DISPUTED), powerLost(power, weightOf(-1), DISPUTED)] as const;

  const report = (what: string, [all, right, mirrored]: readonly [number, number, number]): void => {
    const pct = (v: number): string => `${(100 * v).toFixed(2)} %`;
    // eslint-disable-next-line no-console
    console.log(`${what}: throws away ${pct(all)} of the reconstruction's power (${pct(right)} in the ±45…55° zones; mirrored: ${pct(mirrored)} there)`);
    expect(all).toBeLessThan(0.05);
    expect(right).toBeLessThan(0.05);
    // The per-tilt wedge's slabs are a Fourier voxel thick, so at low |k| they reach past the range: 34 %, not 95 %.
    expect(mirrored).toBeGreaterThan(0.25);
    expect(mirrored).toBeGreaterThan(10 * right);
  };

  test('the continuous wedge (--tilt-range) has its missing region where the reconstruction has none', () => {
    report('continuous wedge', ratios((sign) => {
      const w = continuousWedgeFilter(SHAPE, voxel, { tiltRange: sign === 1 ? [-40, 60] : [-60, 40] });
      return (i) => w[i] as number;
    }));
  });

  test('so do the per-tilt wedge of the series\' .tlt file and the export\'s subtomogram mask', () => {
    const tlt = ANGLES.map((a) => `${a.toFixed(2)}\n`).join('');
    const fromFile = buildTilts({ angles: parseTiltAngles(tlt, { file: 'series.tlt' }) });
    expect(fromFile.map((t) => t.angle)).toEqual(ANGLES);
    report('per-tilt wedge', ratios((sign) => {
      const w = tiltWeightingFilter(SHAPE, voxel, { tilts: fromFile.map((t) => ({ angle: sign * t.angle })), slabWidth: 'spacing' });
      return (i) => w[i] as number;
    }));
    report('export mask', ratios((sign) => (_i, kz, kx) => (isMeasured(kx, kz, sign === 1 ? [-40, 60] : [-60, 40]) ? 1 : 0)));
  });
});

describe('an asymmetric-tilt search', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('tilt-sign');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('finds the particles better with the .tlt as written than with its angles negated', async () => {
    // The reconstruction plus white noise; the template is the one the copies were made of.
    const random = seededRandom(5);
    let sumSq = 0;
    let n = 0;
    for (const v of rec.tomogram) if (v !== 0) (sumSq += v * v), n++;
    const std = Math.sqrt(sumSq / n) * 15;
    const noisy = Float32Array.from(rec.tomogram, (v) => {
      let u = 0;
      while (u === 0) u = random();
      return v + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    });
    const target = path.join(dir, 'tomogram.mrc');
    writeMrc(target, createVolume(noisy, SHAPE, [VOXEL, VOXEL, VOXEL]));
    const template = path.join(dir, 'template.mrc');
    writeMrc(template, rec.template);
    const results: Record<string, { recall: number; score: number; ms: number }> = {};
    for (const [name, sign] of [['as written', 1], ['negated', -1]] as const) {
      const tlt = path.join(dir, `${name.replace(' ', '-')}.tlt`);
      fs.writeFileSync(tlt, ANGLES.map((a) => `${(sign * a).toFixed(2)}\n`).join(''));
      const out = path.join(dir, name.replace(' ', '-'));
      const r = await runTme(['run', '--target', target, '--template', template, '--tilt-angles', tlt, '--angular-step', '20',
        '--device', 'cpu', '--no-refine', '--formats', 'tsv', '--number', String(rec.truth.length), '-o', out, '--quiet'], { timeoutMs: 280_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const rows = fs.readFileSync(path.join(out, 'picks.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').map(Number));
      const picks = rows.map((c) => ({ position: [c[2], c[1], c[0]] as Zyx, rotation: pytmeEulerToMatrix(c[3] as number, c[4] as number, c[5] as number) }));
      const score = scorePicks(picks, rec.truth, 2);
      const scores = readMrc(path.join(out, 'scores.mrc'));
      const [, ny, nx] = SHAPE;
      const atTruth = rec.truth.map(({ position: [z, y, x] }) => scores.data[(z * ny + y) * nx + x] as number);
      results[name] = { recall: score.recall, score: atTruth.reduce((a, b) => a + b, 0) / atTruth.length, ms: r.ms };
    }
    // eslint-disable-next-line no-console
    console.log(`search: ${JSON.stringify(results)}`);
    const right = results['as written'] as { recall: number; score: number };
    const flipped = results.negated as { recall: number; score: number };
    expect(right.score).toBeGreaterThan(1.05 * flipped.score);
    expect(right.recall).toBeGreaterThanOrEqual(flipped.recall);
  });

  test('tme estimate says how many CTF zones the defocus gradient needs: off by default, --defocus-handedness 1 follows it', async () => {
    // 2 Å voxels, 512 Å across x: a ±60° series spans 443 Å of defocus across x, 200 Å along z; a zone may hold 406 Å.
    const target = path.join(dir, 'thick.mrc');
    writeMrc(target, createVolume(new Float32Array(100 * 64 * 256).map((_, i) => Math.sin(i)), [100, 64, 256], [2, 2, 2]));
    const template = path.join(dir, 'small.mrc');
    writeMrc(template, createVolume(new Float32Array(16 ** 3).map((_, i) => Math.cos(i)), [16, 16, 16], [2, 2, 2]));
    const tlt = path.join(dir, 'sixty.tlt');
    fs.writeFileSync(tlt, Array.from({ length: 41 }, (_, i) => `${-60 + 3 * i}\n`).join(''));
    const args = ['estimate', '--target', target, '--template', template, '--angular-step', '30', '--tilt-angles', tlt, '--defocus', '3um', '--calibration', '0', '--device', 'cpu'];
    const on = await runTme([...args, '--defocus-handedness', '1']);
    expect(on.stderr).toBe('');
    expect(on.stdout).toMatch(/CTF zones: 3 \(3×1×1, x×y×z\): the defocus changes by up to 643 Å over the tomogram, a zone may hold 406 Å/);
    expect(on.stdout).toMatch(/3 tiles of/);
    const off = await runTme(args);
    expect(off.stderr).toBe('');
    expect(off.stdout).toMatch(/CTF zones: 1 \(one defocus for the whole tomogram, the default; --defocus-handedness 1 or -1 would make 3 \(3×1×1, x×y×z\): the defocus changes by up to 643 Å/);
    expect(off.stdout).toMatch(/1 tile of/);
    const wrong = await runTme([...args.slice(0, 7), '--calibration', '0', '--device', 'cpu', '--tilt-range', '-60,60', '--defocus-handedness', '1']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/--defocus-handedness/);
  });
});
