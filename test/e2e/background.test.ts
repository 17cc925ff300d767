/**
 * --background: the per-voxel rotation statistics (rotation-stats) are the same however the search is split — tiles,
 * devices, rotation shards joined by tme merge — and the normalised map is (best − mean) / σ of the maps written;
 * random-phase's corrected map is scores minus the random-phase search's; combinations that are not built are refused
 * in one line naming the flag.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMrc } from '@tme/formats';
import { blobTemplate, noisyTarget, runTme, tempDir, writeVolume } from './helpers';

let dir: string;
const f = (name: string): string => path.resolve(dir, name);
const matchArgs = (out: string, ...extra: string[]): string[] => [
  'match', '--target', f('target.mrc'), '--template', f('template.mrc'), '--angular-step', '30', '--tilt-range', '-60,60',
  '--device', 'cpu', '--quiet', '-o', f(out), ...extra,
];
const map = (job: string, file: string): Float32Array => readMrc(f(`${job}/${file}`)).data;

function worstDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

beforeAll(async () => {
  dir = tempDir('background');
  const template = blobTemplate(10);
  writeVolume(f('template.mrc'), template);
  writeVolume(f('target.mrc'), noisyTarget([32, 40, 40], template, 5));
  const stats = ['--background', 'rotation-stats'];
  for (const args of [
    matchArgs('whole', ...stats), matchArgs('tiled', ...stats, '--tile', '24,28,28'), matchArgs('two', ...stats, '--device', 'cpu,cpu', '--threads', '1'),
    matchArgs('shard0', ...stats, '--shard', '0/2'), matchArgs('shard1', ...stats, '--shard', '1/2'),
    matchArgs('phase', '--background', 'random-phase'), matchArgs('plain'),
  ]) {
    const r = await runTme(args, { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }
}, 120_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('rotation-stats writes the mean, σ and normalised maps, scores.mrc stays the plain best score', () => {
  expect(fs.readFileSync(f('whole/scores.mrc')).equals(fs.readFileSync(f('plain/scores.mrc')))).toBe(true);
  const best = map('whole', 'scores.mrc');
  const mean = map('whole', 'rotation-mean.mrc');
  const std = map('whole', 'rotation-std.mrc');
  const z = map('whole', 'scores-normalised.mrc');
  let spread = 0;
  for (let i = 0; i < z.length; i++) {
    const s = std[i] as number;
    // The best score is one of the scores: mean ≤ best, and σ > 0 wherever the scores vary.
    expect(mean[i] as number).toBeLessThanOrEqual((best[i] as number) + 1e-6);
    if (s > 0) {
      spread++;
      expect(Math.abs((z[i] as number) - ((best[i] as number) - (mean[i] as number)) / s)).toBeLessThan(1e-3 * Math.max(1, Math.abs(z[i] as number)));
    }
  }
  expect(spread).toBeGreaterThan(0.99 * z.length);
  const job = JSON.parse(fs.readFileSync(f('whole/job.json'), 'utf8')) as { background: { kind: string; peakMap: string } };
  expect(job.background).toMatchObject({ kind: 'rotation-stats', peakMap: 'scores-normalised.mrc' });
});

test.each([['tiled', 'tiles'], ['two', 'two workers (--device cpu,cpu)']])('%s: the statistics equal the whole search (%s)', (job) => {
  for (const file of ['rotation-mean.mrc', 'rotation-std.mrc', 'scores-normalised.mrc']) {
    // z = (best − mean) / σ magnifies the sums' float32 rounding (summed in another order) by 1/σ.
    const scale = file === 'scores-normalised.mrc' ? 100 : 1;
    expect(worstDiff(map(job, file), map('whole', file))).toBeLessThan(1e-5 * scale);
  }
});

test('two rotation shards merged by tme merge give the whole search\'s statistics', async () => {
  const r = await runTme(['merge', f('shard1'), f('shard0'), '-o', f('merged')]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  // Each shard alone has its own mean: the merge is not a copy of one.
  expect(worstDiff(map('shard0', 'rotation-mean.mrc'), map('whole', 'rotation-mean.mrc'))).toBeGreaterThan(1e-3);
  expect(worstDiff(map('merged', 'rotation-mean.mrc'), map('whole', 'rotation-mean.mrc'))).toBeLessThan(1e-6);
  expect(worstDiff(map('merged', 'rotation-std.mrc'), map('whole', 'rotation-std.mrc'))).toBeLessThan(1e-5);
  expect(worstDiff(map('merged', 'scores-normalised.mrc'), map('whole', 'scores-normalised.mrc'))).toBeLessThan(1e-3);
  // Slab by slab (maps larger than --memory): the same files as the merge that holds them, background maps too.
  const slabs = await runTme(['merge', f('shard1'), f('shard0'), '--memory', '1M', '-o', f('merged-slabs')]);
  expect(slabs.stderr).toBe('');
  expect(slabs.stdout).toMatch(/2 shards merged slab by slab/);
  for (const file of ['scores.mrc', 'rotations.mrc', 'angles.tsv', 'rotation-mean.mrc', 'rotation-std.mrc', 'scores-normalised.mrc']) {
    expect({ file, same: fs.readFileSync(f(`merged-slabs/${file}`)).equals(fs.readFileSync(f(`merged/${file}`))) }).toEqual({ file, same: true });
  }
  const record = (job: string): Record<string, unknown> => JSON.parse(fs.readFileSync(f(`${job}/job.json`), 'utf8')) as Record<string, unknown>;
  expect(record('merged-slabs')['background']).toEqual(record('merged')['background']);
  expect(record('merged-slabs')['statistics']).toEqual(record('merged')['statistics']);
});

test('tme peaks calls peaks on the normalised map with the z-score noise model, or on scores.mrc with --plain-scores', async () => {
  const p = await runTme(['peaks', f('whole'), '-o', f('z-picks.tsv')]);
  expect(p.code).toBe(0);
  expect(p.stdout).toContain('on scores-normalised.mrc');
  expect(p.stdout).toMatch(/threshold [\d.]+ \(false-alarm\)/);
  const plain = await runTme(['peaks', f('whole'), '--plain-scores', '-o', f('plain-picks.tsv')]);
  expect(plain.code).toBe(0);
  expect(plain.stdout).not.toContain('scores-normalised.mrc');
});

test('random-phase: scores-corrected.mrc is scores.mrc minus the random-phase search\'s best scores', () => {
  expect(fs.readFileSync(f('phase/scores.mrc')).equals(fs.readFileSync(f('plain/scores.mrc')))).toBe(true);
  const best = map('phase', 'scores.mrc');
  const noise = map('phase', 'random-phase-scores.mrc');
  const corrected = map('phase', 'scores-corrected.mrc');
  expect(worstDiff(noise, best)).toBeGreaterThan(0.05);
  expect(worstDiff(corrected, best.map((v, i) => v - (noise[i] as number)))).toBeLessThan(1e-6);
});

test.each([
  ['an unknown kind', ['--background', 'zscore'], /Expected none, rotation-stats, random-phase for --background but received/],
  ['random-phase with --shard', ['--background', 'random-phase', '--shard', '0/2'], /with --shard .* for --background but received/],
  ['random-phase with --resume', ['--background', 'random-phase', '--resume'], /with --resume .* for --background but received/],
])('refuses %s in one line', async (_what, extra, message) => {
  const r = await runTme(matchArgs('refused', ...extra));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
});
