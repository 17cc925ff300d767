/**
 * A search split over jobs (`tme match --shard i/n`, e.g. SLURM array tasks) and joined by `tme merge` is the search
 * one uninterrupted run does: scores.mrc, rotations.mrc and angles.tsv byte for byte, the score statistics (which
 * set the false-alarm threshold) to the last bit, and so the same picks. Shards of other searches, and sets that
 * miss rotations, are refused in one line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { blobTemplate, noisyTarget, runTme, startTme, tempDir, writeVolume } from './helpers';

let dir: string;
const f = (name: string): string => path.resolve(dir, name);
const matchArgs = (out: string, ...extra: string[]): string[] => [
  'match', '--target', f('target.mrc'), '--template', f('template.mrc'), '--angular-step', '25', '--tilt-range', '-60,60',
  '--device', 'cpu', '--quiet', '-o', f(out), ...extra,
];

beforeAll(async () => {
  dir = tempDir('shards');
  const template = blobTemplate(10);
  writeVolume(f('template.mrc'), template);
  writeVolume(f('target.mrc'), noisyTarget([40, 48, 48], template, 11));
  for (const args of [matchArgs('whole'), ...[0, 1, 2].map((i) => matchArgs(`shard${i}`, '--shard', `${i}/3`)), matchArgs('other2', '--shard', '2/3', '--score', 'cc')]) {
    const r = await runTme(args, { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }
}, 300_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Statistics { mean: number; std: number; count: number; perRotationMax: number[]; perRotationMean: number[]; perRotationStd: number[] }
const statistics = (job: string): Statistics => (JSON.parse(fs.readFileSync(f(`${job}/job.json`), 'utf8')) as { statistics: Statistics }).statistics;

test('three shards merged in any order equal the whole search, file for file and bit for bit', async () => {
  const r = await runTme(['merge', f('shard2'), f('shard0'), f('shard1'), '-o', f('merged')]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/3 shards merged \(\d+ rotations\)/);
  for (const file of ['scores.mrc', 'rotations.mrc', 'angles.tsv']) {
    expect(fs.readFileSync(f(`merged/${file}`)).equals(fs.readFileSync(f(`whole/${file}`)))).toBe(true);
  }
  // Each shard searched a third of the rotations: its maps alone differ from the whole.
  expect(fs.readFileSync(f('shard0/scores.mrc')).equals(fs.readFileSync(f('whole/scores.mrc')))).toBe(false);
  const [whole, merged] = [statistics('whole'), statistics('merged')];
  for (const k of ['mean', 'std', 'count', 'perRotationMax', 'perRotationMean', 'perRotationStd'] as const) expect(merged[k]).toEqual(whole[k]);

  // The same picks, thresholded by the same statistics.
  for (const job of ['whole', 'merged']) {
    const p = await runTme(['peaks', f(job), '--false-alarms', '1', '-o', f(`${job}-picks.tsv`)]);
    expect(p.code).toBe(0);
  }
  expect(fs.readFileSync(f('merged-picks.tsv'), 'utf8')).toBe(fs.readFileSync(f('whole-picks.tsv'), 'utf8'));
  // Again into the same folder: tme merge offers --force (it has no --resume).
  const again = await runTme(['merge', f('shard2'), f('shard0'), f('shard1'), '-o', f('merged')]);
  expect(again.code).toBe(1);
  expect(again.stderr).toBe(`tme: ${f('merged')}: output folder exists; use --force to overwrite it\n`);
}, 120_000);

test('maps that do not fit --memory at once are merged slab by slab: the same files and statistics', async () => {
  // 40×48×48 voxels: every shard's maps at once need 36 bytes a voxel (3.2 MiB); 1 MiB leaves slabs of a few sections.
  const r = await runTme(['merge', f('shard1'), f('shard2'), f('shard0'), '--memory', '1M', '-o', f('merged-slabs')]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/3 shards merged slab by slab \(every shard's maps at once need 4 MiB, 1 MiB --memory allows\) \(\d+ rotations\)/);
  for (const file of ['scores.mrc', 'rotations.mrc', 'angles.tsv']) {
    expect({ file, same: fs.readFileSync(f(`merged-slabs/${file}`)).equals(fs.readFileSync(f(`whole/${file}`))) }).toEqual({ file, same: true });
  }
  const [whole, merged] = [statistics('whole'), statistics('merged-slabs')];
  for (const k of ['mean', 'std', 'count', 'perRotationMax', 'perRotationMean', 'perRotationStd'] as const) expect(merged[k]).toEqual(whole[k]);
  const p = await runTme(['peaks', f('merged-slabs'), '--false-alarms', '1', '-o', f('merged-slabs-picks.tsv')]);
  expect(p.code).toBe(0);
  const w = await runTme(['peaks', f('whole'), '--false-alarms', '1', '-o', f('whole-slabs-picks.tsv')]);
  expect(w.code).toBe(0);
  expect(fs.readFileSync(f('merged-slabs-picks.tsv'), 'utf8')).toBe(fs.readFileSync(f('whole-slabs-picks.tsv'), 'utf8'));
}, 120_000);

/** `tme merge` of these shards fails with one line matching `message` and writes nothing. */
async function expectMergeRefused(shards: string[], message: RegExp): Promise<void> {
  const out = f(`refused-${shards.join('-')}`);
  const r = await runTme(['merge', ...shards.map(f), '-o', out]);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  expect(fs.existsSync(out)).toBe(false);
}

test.each([
  ['a missing shard', ['shard0', 'shard2'], /shard2: rotations \d+–\d+ of \d+ are in no shard given|rotations \d+–\d+ of \d+ are in no shard given/],
  ['a shard repeated', ['shard0', 'shard1', 'shard1', 'shard2'], /shard1: its rotations \d+–\d+ overlap another shard's/],
  ['a shard of another search', ['shard0', 'shard1', 'other2'], /other2: is a shard of another search than .*shard0: parameters\.score, parameters\.backendScore(, parameters\.supportShape)? differ/],
  ['a whole search among shards', ['shard0', 'whole'], /whole: is a whole search, not a shard/],
])('refuses %s in one line and writes nothing', async (_name, shards, message) => {
  await expectMergeRefused(shards, message);
});

test('--shard outside 0 ≤ i < n is a usage error', async () => {
  const r = await runTme(matchArgs('bad', '--shard', '3/3'));
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/Expected i\/n with 0 ≤ i < n .* for --shard but received "3\/3"/);
});

// Tiles: --tile 20,24,24 (the FFT shape of a tile) plans dozens of tiles of the 40×48×48 target; three shards split them.
const TILE = ['--tile', '20,24,24'];
const tileCount = (job: string): number => (JSON.parse(fs.readFileSync(f(`${job}/job.json`), 'utf8')) as { tilePlan: { tiles: unknown[] } }).tilePlan.tiles.length;
const third = (i: number, n: number): number => Math.floor((i * n) / 3);
describe.each([['flc-sphere'], ['flc']])('tile shards (%s)', (score) => {
  const tileArgs = (out: string, ...extra: string[]): string[] => matchArgs(`${score}-${out}`, '--score', score, ...TILE, ...extra);
  beforeAll(async () => {
    for (const args of [tileArgs('whole'), ...[0, 1, 2].map((i) => tileArgs(`tiles${i}`, '--shard', `${i}/3`, '--shard-by', 'tiles'))]) {
      const r = await runTme(args, { timeoutMs: 120_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
  }, 300_000);

  test('three tile shards merged equal the whole search, bit for bit, statistics too', async () => {
    const tiles = tileCount(`${score}-whole`);
    expect(tiles).toBeGreaterThanOrEqual(8);
    const ranges = [0, 1, 2].map((i) => (JSON.parse(fs.readFileSync(f(`${score}-tiles${i}/job.json`), 'utf8')) as { parameters: { tileRange: number[] } }).parameters.tileRange);
    expect(ranges).toEqual([0, 1, 2].map((i) => [third(i, tiles), third(i + 1, tiles)]));
    const r = await runTme(['merge', f(`${score}-tiles1`), f(`${score}-tiles2`), f(`${score}-tiles0`), '-o', f(`${score}-tiles-merged`)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const file of ['scores.mrc', 'rotations.mrc', 'angles.tsv']) {
      expect(fs.readFileSync(f(`${score}-tiles-merged/${file}`)).equals(fs.readFileSync(f(`${score}-whole/${file}`)))).toBe(true);
    }
    expect(fs.readFileSync(f(`${score}-tiles0/scores.mrc`)).equals(fs.readFileSync(f(`${score}-whole/scores.mrc`)))).toBe(false);
    const [whole, merged] = [statistics(`${score}-whole`), statistics(`${score}-tiles-merged`)];
    for (const k of ['mean', 'std', 'count', 'perRotationMax', 'perRotationMean', 'perRotationStd'] as const) expect(merged[k]).toEqual(whole[k]);
    // Slab by slab (maps larger than --memory): each slab takes the cores' sections of the shards that hold them.
    const slabs = await runTme(['merge', f(`${score}-tiles2`), f(`${score}-tiles0`), f(`${score}-tiles1`), '--memory', '1M', '-o', f(`${score}-tiles-slabs`)]);
    expect(slabs.stderr).toBe('');
    expect(slabs.stdout).toMatch(/3 shards merged slab by slab/);
    for (const file of ['scores.mrc', 'rotations.mrc', 'angles.tsv']) {
      expect({ file, same: fs.readFileSync(f(`${score}-tiles-slabs/${file}`)).equals(fs.readFileSync(f(`${score}-whole/${file}`))) }).toEqual({ file, same: true });
    }
    const bySlabs = statistics(`${score}-tiles-slabs`);
    for (const k of ['mean', 'std', 'count', 'perRotationMax', 'perRotationMean', 'perRotationStd'] as const) expect(bySlabs[k]).toEqual(whole[k]);
  }, 120_000);
});

test('refuses tile and rotation shards together, and a missing tile shard, in one line', async () => {
  const n = tileCount('flc-sphere-whole');
  for (const [shards, message] of [
    [['flc-sphere-tiles0', 'shard1'], /shard1: is a shard of the rotations, .*flc-sphere-tiles0 one of the tiles: merge the shards of one split \(--shard-by\)/],
    [['flc-sphere-tiles0', 'flc-sphere-tiles2'], new RegExp(`tiles ${third(1, n)}–${third(2, n) - 1} of ${n} are in no shard given`)],
  ] as Array<[string[], RegExp]>) await expectMergeRefused(shards, message);
});

test('a tile shard killed after some of its tiles resumes from its checkpoint, and the merge is still the whole search', async () => {
  // A checkpoint after every batch; killed once one holds a finished tile's sums (kept per tile in its header).
  const args = matchArgs('flc-sphere-killed1', '--score', 'flc-sphere', ...TILE, '--shard', '1/3', '--shard-by', 'tiles', '--checkpoint-interval', '0');
  const running = startTme(args, { timeoutMs: 120_000 });
  const checkpoint = f('flc-sphere-killed1/checkpoint.bin');
  const header = (): string => { try { return fs.readFileSync(checkpoint).subarray(0, 4096).toString('latin1'); } catch { return ''; } };
  const end = Date.now() + 100_000;
  while (!header().includes('"tileSums":[{"tile"') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  running.child.kill('SIGKILL');
  expect((await running.done).signal).toBe('SIGKILL');
  expect(fs.existsSync(f('flc-sphere-killed1/job.json'))).toBe(false);
  const resumed = await runTme([...args.filter((a) => a !== '--quiet'), '--resume', '--quiet'], { timeoutMs: 120_000 });
  expect(resumed.stderr).toBe('');
  expect(resumed.code).toBe(0);
  expect((JSON.parse(fs.readFileSync(f('flc-sphere-killed1/job.json'), 'utf8')) as { resumed: boolean }).resumed).toBe(true);
  const r = await runTme(['merge', f('flc-sphere-tiles0'), f('flc-sphere-killed1'), f('flc-sphere-tiles2'), '-o', f('flc-sphere-killed-merged')]);
  expect(r.code).toBe(0);
  for (const file of ['scores.mrc', 'rotations.mrc']) {
    expect(fs.readFileSync(f(`flc-sphere-killed-merged/${file}`)).equals(fs.readFileSync(f(`flc-sphere-whole/${file}`)))).toBe(true);
  }
  const [whole, merged] = [statistics('flc-sphere-whole'), statistics('flc-sphere-killed-merged')];
  for (const k of ['mean', 'std', 'count', 'perRotationMax', 'perRotationMean', 'perRotationStd'] as const) expect(merged[k]).toEqual(whole[k]);
}, 240_000);

test('tile shards of two different jobs are refused in one line, nothing written', async () => {
  // The same split of another search (lcc instead of flc-sphere).
  const r0 = await runTme(matchArgs('lcc-tiles1', '--score', 'lcc', ...TILE, '--shard', '1/3', '--shard-by', 'tiles'), { timeoutMs: 120_000 });
  expect(r0.code).toBe(0);
  const out = f('refused-other-tiles');
  const r = await runTme(['merge', f('flc-sphere-tiles0'), f('lcc-tiles1'), f('flc-sphere-tiles2'), '-o', out]);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/lcc-tiles1: is a shard of another search than .*flc-sphere-tiles0: parameters\.score/);
  expect(fs.existsSync(out)).toBe(false);
}, 120_000);

test('a tile shard index past the tiles, or --shard-by without --shard, is refused in one line, nothing written', async () => {
  const n = tileCount('flc-sphere-whole');
  const r = await runTme(matchArgs('bad-tiles', ...TILE, '--shard', `${n}/${n + 1}`, '--shard-by', 'tiles'), { timeoutMs: 60_000 });
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(new RegExp(`Expected at most as many parts as the search has tiles \\(${n}; --tile sets them\\) for --shard with --shard-by tiles but received "${n}/${n + 1}"`));
  expect(fs.existsSync(f('bad-tiles'))).toBe(false);
  const by = await runTme(matchArgs('bad-by', '--shard-by', 'tiles'));
  expect(by.code).toBe(2);
  expect(by.stderr).toMatch(/Expected a shard to split by \(--shard i\/n\) for --shard-by but received "?tiles"?/);
  const what = await runTme(matchArgs('bad-what', '--shard', '0/2', '--shard-by', 'voxels'));
  expect(what.code).toBe(2);
  expect(what.stderr).toMatch(/Expected rotations or tiles for --shard-by but received "?voxels"?/);
  for (const d of ['bad-by', 'bad-what']) expect(fs.existsSync(f(d))).toBe(false);
}, 120_000);
