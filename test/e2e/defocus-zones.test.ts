/**
 * CTF zones along the defocus gradient (issue 21.3), end to end: a thick lamella (3 Å voxels, 600 Å thick, 576 Å
 * across the tilt axis) whose particles are imaged through a −60…60° series with the CTF at their own defocus in
 * each tilt, Δf + h·(x·sin θ − z·cos θ) with h = 1 (@tme/example's `tiltSeries`: the defocus is computed there, not
 * by the matcher's filter), searched by the CLI with a .tlt, a dose file and an IMOD .defocus file. Noise-free, so
 * the score at a true position is the agreement of the data's CTFs and the template's alone; `--highpass 10` keeps
 * the detail a defocus error spoils. The right hand (zones) must score the particles higher than the wrong hand, and
 * no lower than one CTF for the tomogram. (test/accuracy/zones.js measures the same on larger lamellae, with noise.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMrc, readStructure, writeMrc, type Zyx } from '@tme/formats';
import { generateSyntheticTomogram } from '@tme/example';
import { bundledModelPath, prepareTemplate, simulateDensity } from '@tme/template';
import { seededRandom } from '@tme/rotations';
import { runTme, tempDir } from './helpers';

jest.setTimeout(120_000);

const VOXEL = 3;
const SHAPE: Zyx = [200, 36, 192];
const ANGLES = Array.from({ length: 41 }, (_, i) => -60 + 3 * i);

let dir: string;
beforeAll(() => {
  dir = tempDir('zones');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the right defocus hand scores the particles of a thick tilted lamella higher than the wrong one, and no lower than one CTF', async () => {
  const model = await readStructure(bundledModelPath());
  const template = prepareTemplate(simulateDensity(model, { voxelSize: VOXEL, lowpassAngstrom: 2 * VOXEL, marginAngstrom: 6 }).volume, { center: false });
  const random = seededRandom(2111);
  // Dose-symmetric from 0°, 3 e⁻/Å² per tilt; 1 µm ± 0.1 µm (the CTF's spread at Nyquist then stays in the mask).
  const order = ANGLES.map((a, i) => [Math.abs(a), i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const doses = new Array<number>(ANGLES.length).fill(0);
  order.forEach(([, i], rank) => { doses[i] = 3 * rank; });
  const defoci = ANGLES.map(() => 10000 + 1000 * (2 * random() - 1));
  const tilts = ANGLES.map((angle, i) => ({ angle, dose: doses[i] as number, ctf: { defocus: defoci[i] as number, voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.07 } }));
  const made = generateSyntheticTomogram(template, {
    shape: SHAPE, particles: 6, snr: 0, seed: 2112, tiltRange: null, minSeparation: 1, tiltSeries: { tilts, defocusHandedness: 1 },
  });
  writeMrc(path.join(dir, 'lamella.mrc'), made.tomogram);
  writeMrc(path.join(dir, 'template.mrc'), template);
  fs.writeFileSync(path.join(dir, 'series.tlt'), ANGLES.map((a) => `${a}\n`).join(''));
  fs.writeFileSync(path.join(dir, 'dose.txt'), doses.map((d) => `${d}\n`).join(''));
  fs.writeFileSync(path.join(dir, 'series.defocus'), ANGLES.map((a, i) => `${i + 1} ${i + 1} ${a} ${a} ${((defoci[i] as number) / 10).toFixed(1)}${i === 0 ? ' 2' : ''}\n`).join(''));
  // The particles' own rotations: the scores at the truth compare the filters, not the angular sampling.
  fs.writeFileSync(path.join(dir, 'rotations.txt'), made.truth.map((t) => `${Array.from(t.rotation, (v) => v.toFixed(8)).join(' ')}\n`).join(''));

  const score: Record<string, number[]> = {};
  for (const hand of [1, 0, -1]) {
    const out = path.join(dir, `h${hand}`);
    const r = await runTme(['run', '--target', path.join(dir, 'lamella.mrc'), '--template', path.join(dir, 'template.mrc'),
      '--tilt-angles', path.join(dir, 'series.tlt'), '--dose', path.join(dir, 'dose.txt'), '--defocus', path.join(dir, 'series.defocus'),
      '--rotations', path.join(dir, 'rotations.txt'), '--rotations-convention', 'matrix', '--highpass', '10', '--defocus-handedness', String(hand),
      '--device', 'cpu', '--no-refine', '--formats', 'tsv', '--quiet', '-o', out], { timeoutMs: 110_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const scores = readMrc(path.join(out, 'scores.mrc'));
    score[hand] = made.truth.map(({ position: [z, y, x] }) => scores.data[(z * SHAPE[1] + y) * SHAPE[2] + x] as number);
  }
  const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
  const [right, one, wrong] = [score[1] as number[], score[0] as number[], score[-1] as number[]];
  // eslint-disable-next-line no-console
  console.log(`mean score at the truth: zones ${mean(right).toFixed(4)}, one CTF ${mean(one).toFixed(4)}, wrong hand ${mean(wrong).toFixed(4)}`);
  expect(mean(right)).toBeGreaterThan(0.3);
  expect(mean(right)).toBeGreaterThan(1.02 * mean(wrong));
  expect(mean(right)).toBeGreaterThanOrEqual(mean(one));
});
