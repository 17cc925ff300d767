// Priors per position end to end: a filament-like tomogram (every particle's template z axis within 5° of one
// direction, any spin about it) searched with and without priors made from the truth 10° off. The prior matches a
// fraction of the rotations and finds every particle the whole search finds; a particle whose prior points the other
// way is not picked with its true (out-of-cone) orientation; refinement keeps every pick inside its cone.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readStructure, writeMrc, type Zyx } from '@tme/formats';
import { generateSyntheticTomogram, scorePicks, type OrientedPosition } from '@tme/example';
import { parseOrientationsTsv } from '@tme/peaks';
import { multiply, pytmeEulerToMatrix, rotationFromZ, rotationZ, seededRandom } from '@tme/rotations';
import { bundledModelPath, prepareTemplate, simulateDensity } from '@tme/template';
import { runTme, tempDir } from './helpers';

jest.setTimeout(300_000);
const DEG = Math.PI / 180;
const CONE = 30;
const STEP = 20;
/** The particle whose prior points the other way (one the whole search orients right: at this step 1TII's pseudo-
 *  symmetry flips the axes of three of the eight, 0, 1 and 7). */
const FLIPPED = 3;

let dir: string;
const f = (name: string): string => path.join(dir, name);
let truth: OrientedPosition[];
let priors: Array<{ at: Zyx; v: Zyx }>;

const unit = (v: readonly number[]): Zyx => { const n = Math.hypot(...v); return [v[0]! / n, v[1]! / n, v[2]! / n]; };
const angle = (a: readonly number[], b: readonly number[]): number => Math.acos(Math.max(-1, Math.min(1, a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!))) / DEG;
/** The template's z axis turned by R, (x, y, z). */
const zAxis = (r: Float64Array): Zyx => [r[2]!, r[5]!, r[8]!];
/** `v` tilted by `deg` towards a random side. */
function tilted(v: Zyx, deg: number, random: () => number): Zyx {
  const r = multiply(rotationFromZ(v), multiply(rotationZ(360 * random()), rotationFromZ(unit([Math.sin(deg * DEG), 0, Math.cos(deg * DEG)]))));
  return zAxis(r);
}

beforeAll(async () => {
  dir = tempDir('priors');
  const model = await readStructure(bundledModelPath());
  const template = prepareTemplate(simulateDensity(model, { voxelSize: 5, lowpassAngstrom: 10, marginAngstrom: 6 }).volume, { center: false });
  const filament = unit([1, 0.4, 0.25]);
  // A filament's subunits: the z axis within 5° of the filament's, any spin about it.
  const orient = (random: () => number): Float64Array => multiply(rotationFromZ(tilted(filament, 5 * random(), random)), rotationZ(360 * random()));
  const made = generateSyntheticTomogram(template, { shape: [48, 96, 96], particles: 8, snr: 0.1, seed: 3, tiltRange: [-60, 60], orient });
  truth = made.truth;
  writeMrc(f('tomogram.mrc'), made.tomogram);
  writeMrc(f('template.mrc'), template);
  // Priors from the truth: 10° off, positions up to 2 voxels off; particle FLIPPED's points the opposite way.
  const random = seededRandom(9);
  priors = truth.map((t, i) => {
    const v = tilted(zAxis(t.rotation), 10, random);
    const [z, y, x] = t.position;
    const jitter = (c: number): number => c + 4 * (random() - 0.5);
    return { at: [jitter(z), jitter(y), jitter(x)] as Zyx, v: i === FLIPPED ? [-v[0], -v[1], -v[2]] as Zyx : v };
  });
  fs.writeFileSync(f('priors.tsv'), `x\ty\tz\tvx\tvy\tvz\n${priors.map((p) => [p.at[2], p.at[1], p.at[0], ...p.v].map((c) => c.toFixed(5)).join('\t')).join('\n')}\n`);
  const base = ['run', '--target', f('tomogram.mrc'), '--template', f('template.mrc'), '--angular-step', String(STEP), '--tilt-range', '-60,60',
    '--device', 'cpu', '--formats', 'tsv', '--quiet'];
  for (const args of [
    [...base, '-o', f('plain')],
    [...base, '-o', f('prior'), '--priors', f('priors.tsv'), '--prior-cone', String(CONE), '--prior-radius', '25'],
  ]) {
    const r = await runTme(args, { timeoutMs: 240_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const picksOf = (job: string): OrientedPosition[] => parseOrientationsTsv(fs.readFileSync(f(`${job}/picks.tsv`), 'utf8'))
  .map((r) => ({ position: r.position, rotation: r.rotation ?? pytmeEulerToMatrix(0, 0, 0) }));
const job = (name: string): { priors?: { rotationsMatched: number; rotationsWithout: number }; timings: { matchMs: number }; search: Record<string, unknown> } =>
  JSON.parse(fs.readFileSync(f(`${name}/job.json`), 'utf8'));

test('the prior matches a fraction of the rotations and loses none of the particles the whole search finds', () => {
  const inCone = truth.filter((_t, i) => i !== FLIPPED);
  const plain = scorePicks(picksOf('plain'), inCone, 3);
  const prior = scorePicks(picksOf('prior'), inCone, 3);
  const counts = job('prior').priors!;
  // Rotation·tile steps: the cones of seven priors along one direction hold a small part of the set.
  expect(counts.rotationsMatched / counts.rotationsWithout).toBeLessThan(0.25);
  expect(plain.matched).toBeGreaterThanOrEqual(6);
  expect(prior.matched).toBeGreaterThanOrEqual(plain.matched);
  expect(job('prior').search).toMatchObject({ priors: f('priors.tsv'), priorCone: CONE, priorRadius: 25, priorAxis: 'z' });
  // Measured here (noisy, shared machine): what the prior saved.
  process.stdout.write(`priors: ${counts.rotationsMatched} of ${counts.rotationsWithout} rotations matched, match ${job('prior').timings.matchMs} ms `
    + `vs ${job('plain').timings.matchMs} ms; recall ${prior.recall.toFixed(2)} vs ${plain.recall.toFixed(2)} of the in-cone particles, `
    + `angular errors ${prior.pairs.map((p) => p[3].toFixed(0)).join(',')} vs ${plain.pairs.map((p) => p[3].toFixed(0)).join(',')}°\n`);
});

test('every pick (refined) turns the template z axis into its nearest prior\'s cone; the particle outside it is not picked as it is', () => {
  const picks = picksOf('prior');
  expect(picks.length).toBeGreaterThan(0);
  for (const p of picks) {
    const near = priors.reduce((best, q) => (Math.hypot(...q.at.map((c, a) => c - p.position[a]!)) < Math.hypot(...best.at.map((c, a) => c - p.position[a]!)) ? q : best));
    expect(angle(zAxis(p.rotation), near.v)).toBeLessThanOrEqual(CONE + 1e-6);
  }
  // Particle FLIPPED's true axis is 170° from its prior: a pick there, if any, points the other way.
  const flipped = truth[FLIPPED]!;
  for (const p of picks) {
    if (Math.hypot(...p.position.map((c, a) => c - flipped.position[a]!)) > 3) continue;
    expect(angle(zAxis(p.rotation), zAxis(flipped.rotation))).toBeGreaterThan(180 - 10 - CONE - 1e-6);
  }
  // Without the prior the same particle is found with its own orientation: the prior, not the noise, changed it.
  const plain = scorePicks(picksOf('plain'), [flipped], 3);
  expect(plain.matched).toBe(1);
  expect(plain.medianAngularError).toBeLessThan(STEP);
});

test('a bad prior file is refused in one line naming the file and the line', async () => {
  fs.writeFileSync(f('bad.tsv'), 'x\ty\tz\tvx\tvy\tvz\n10\t10\t10\t0\t0\t1\n12\t12\t12\t0\t0\t0\n');
  const r = await runTme(['match', '--target', f('tomogram.mrc'), '--template', f('template.mrc'), '--angular-step', '30', '--device', 'cpu',
    '-o', f('bad'), '--priors', f('bad.tsv'), '--prior-cone', '20', '--prior-radius', '20']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toBe(`tme: ${f('bad.tsv')}: line 3: the vector has zero length (a prior needs a direction)\n`);
  expect(fs.existsSync(f('bad/job.json'))).toBe(false);
});

test('a search with priors split into shards and merged is the search run whole, byte for byte', async () => {
  const match = (out: string, ...extra: string[]): string[] => ['match', '--target', f('tomogram.mrc'), '--template', f('template.mrc'),
    '--angular-step', String(STEP), '--tilt-range', '-60,60', '--device', 'cpu', '--quiet', '-o', f(out),
    '--priors', f('priors.tsv'), '--prior-cone', String(CONE), '--prior-radius', '25', ...extra];
  for (const args of [match('pwhole'), match('pshard0', '--shard', '0/2'), match('pshard1', '--shard', '1/2'), ['merge', f('pshard1'), f('pshard0'), '-o', f('pmerged')]]) {
    const r = await runTme(args, { timeoutMs: 240_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }
  for (const file of ['scores.mrc', 'rotations.mrc', 'angles.tsv']) {
    expect(fs.readFileSync(f(`pmerged/${file}`)).equals(fs.readFileSync(f(`pwhole/${file}`)))).toBe(true);
  }
  // Each shard matched part of what the priors allow: the two parts add up to the whole search's count.
  const [whole, a, b] = [job('pwhole'), job('pshard0'), job('pshard1')];
  expect(a.priors!.rotationsMatched + b.priors!.rotationsMatched).toBe(whole.priors!.rotationsMatched);
  expect(a.priors!.rotationsMatched).toBeGreaterThan(0);
  expect(b.priors!.rotationsMatched).toBeGreaterThan(0);
});
