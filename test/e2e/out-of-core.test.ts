/**
 * A tomogram larger than memory (forced with --memory on a small one): `tme match` reads it tile by tile from the MRC
 * and writes the maps tile by tile, and gives the maps and picks of the in-memory run, with the target's filter too
 * (applied to the whole tomogram by passes over temporary files); what needs the whole tomogram and what
 * is not built out of core (several templates, priors, tile shards) is refused in one line. A job killed between
 * tiles (SIGKILL) resumes from its per-tile checkpoint to the maps of an uninterrupted run, byte for byte.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createVolume, readMrc, writeMrc } from '@tme/formats';
import { nativeAddonBuilt } from '@tme/engine';
import { blobTemplate, listTree, noisyTarget, runTme, startTme, tempDir, writeVolume } from './helpers';

jest.setTimeout(300_000);

let dir: string;
const f = (name: string): string => path.resolve(dir, name);
// 48×80×80 voxels: in memory needs tme's 160 MiB and 20 bytes a voxel (166 MiB); 165 MiB forces out of core.
const OUT_OF_CORE = ['--memory', '165M'];
// Tiles that split z, y and x (cores of 21×33×33 voxels: 3 × 3 × 3 tiles).
const base = (score: string): string[] => [
  '--target', f('target.mrc'), '--template', f('template.mrc'), '--angular-step', '40', '--device', 'cpu', '--threads', '1',
  '--tile', '32,44,44', '--score', score,
];

beforeAll(() => {
  dir = tempDir('ooc');
  const template = blobTemplate(12);
  writeVolume(f('template.mrc'), template);
  writeVolume(f('target.mrc'), noisyTarget([48, 80, 80], template, 5));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

(nativeAddonBuilt() ? describe : describe.skip)('out of core', () => {
  test('tme estimate says which path, and why', async () => {
    const ooc = await runTme(['estimate', ...base('flc-sphere'), ...OUT_OF_CORE, '--calibration', '0']);
    expect(ooc.stderr).toBe('');
    expect(ooc.stdout).toMatch(/^path: out of core \(in memory would need 167 MiB but --memory allows 165 MiB\)/m);
    expect(ooc.stdout).toMatch(/CPU \(FFTW3f\): 27 tiles of 40×40×27/);
    const inMemory = await runTme(['estimate', ...base('flc-sphere'), '--calibration', '0']);
    expect(inMemory.stdout).toMatch(/^path: in memory /m);
  });

  test.each(['flc-sphere', 'flc'])('%s: maps equal the in-memory run (≤ 1e-6, rotations exact), picks identical', async (score) => {
    const a = await runTme(['match', ...base(score), '-o', f(`${score}-memory`)]);
    expect(a.code).toBe(0);
    const b = await runTme(['match', ...base(score), ...OUT_OF_CORE, '-o', f(`${score}-disk`)]);
    expect({ code: b.code, stderr: b.stderr }).toEqual({ code: 0, stderr: '' });
    expect(b.stdout).toMatch(/× 27 tiles on CPU \(FFTW3f\) in [\d.]+ s \(out of core\)/);
    expect(JSON.parse(fs.readFileSync(path.join(f(`${score}-disk`), 'job.json'), 'utf8')).outOfCore).toBe(true);
    const memory = readMrc(path.join(f(`${score}-memory`), 'scores.mrc'));
    const disk = readMrc(path.join(f(`${score}-disk`), 'scores.mrc'));
    let worst = 0;
    for (let i = 0; i < memory.data.length; i++) worst = Math.max(worst, Math.abs((memory.data[i] as number) - (disk.data[i] as number)));
    expect(worst).toBeLessThanOrEqual(1e-6);
    expect(memory.data.reduce((m, v) => Math.max(m, v), -Infinity)).toBeGreaterThan(0.2);
    expect(readMrc(path.join(f(`${score}-disk`), 'rotations.mrc')).data).toEqual(readMrc(path.join(f(`${score}-memory`), 'rotations.mrc')).data);
    // Picks: the same voxels and angles (scores to 1e-6).
    const picks = async (job: string): Promise<string[][]> => {
      const out = path.join(f(job), 'picks.tsv');
      const r = await runTme(['peaks', f(job), '-o', out, '--number', '20']);
      expect(r.code).toBe(0);
      return fs.readFileSync(out, 'utf8').trim().split('\n').slice(1).map((line) => line.split('\t'));
    };
    const pm = await picks(`${score}-memory`);
    const pd = await picks(`${score}-disk`);
    expect(pd.length).toBeGreaterThan(0);
    expect(pd.map((row) => row.slice(0, 6))).toEqual(pm.map((row) => row.slice(0, 6)));
    pd.forEach((row, k) => expect(Math.abs(Number(row[6]) - Number(pm[k]?.[6]))).toBeLessThanOrEqual(1e-6));
  });

  test('SIGKILLed after a tile and resumed: maps byte-identical, statistics and picks equal; a damaged checkpoint refused; --force starts over', async () => {
    const args = (out: string, ...extra: string[]): string[] => ['match', ...base('flc-sphere'), ...OUT_OF_CORE, '--quiet', '-o', f(out), ...extra];
    const whole = await runTme(args('whole'));
    expect({ code: whole.code, stderr: whole.stderr }).toEqual({ code: 0, stderr: '' });
    expect(listTree(f('whole'))).toEqual(['angles.tsv', 'job.json', 'rotations.mrc', 'scores.mrc']);
    // Killed as soon as its first tile's checkpoint is on the disk (1–2 of 27 tiles done).
    const killAfterTile = async (out: string): Promise<number> => {
      const running = startTme(args(out));
      let exited = false;
      void running.done.then(() => { exited = true; });
      const checkpoint = path.join(f(out), 'checkpoint.bin');
      const end = Date.now() + 60_000;
      while (!exited && !fs.existsSync(checkpoint) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(exited).toBe(false); // still running, or this proves nothing
      running.child.kill('SIGKILL');
      expect((await running.done).signal).toBe('SIGKILL');
      return running.child.pid as number;
    };
    const same = (out: string): void => {
      for (const map of ['scores.mrc', 'rotations.mrc']) expect(fs.readFileSync(path.join(f(out), map)).equals(fs.readFileSync(path.join(f('whole'), map)))).toBe(true);
      const stats = (job: string): unknown => JSON.parse(fs.readFileSync(path.join(f(job), 'job.json'), 'utf8')).statistics;
      expect(stats(out)).toEqual(stats('whole'));
    };
    const pid = await killAfterTile('killed');
    const left = listTree(f('killed'));
    expect(left).toEqual(expect.arrayContaining(['checkpoint.bin', 'rotations.mrc.part', 'scores.mrc.part']));
    expect(left).not.toContain('scores.mrc');
    // A kill during the checkpoint's write leaves its temporary file (and the previous checkpoint): the next run
    // removes the one and resumes from the other.
    const torn = path.join(f('killed'), `.checkpoint.bin.${pid}.9.tmp`);
    fs.writeFileSync(torn, fs.readFileSync(path.join(f('killed'), 'checkpoint.bin')).subarray(0, 100));
    const resumed = await runTme(args('killed', '--resume').filter((a) => a !== '--quiet'));
    expect({ code: resumed.code, stderr: resumed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(resumed.stdout).toMatch(/ \(resumed\) \(out of core\)/);
    expect(listTree(f('killed'))).toEqual(['angles.tsv', 'job.json', 'rotations.mrc', 'scores.mrc']);
    same('killed');
    expect(JSON.parse(fs.readFileSync(path.join(f('killed'), 'job.json'), 'utf8')).resumed).toBe(true);
    // Picks from the resumed job: the uninterrupted job's, byte for byte.
    const picks = async (job: string): Promise<string> => {
      const r = await runTme(['peaks', f(job), '-o', path.join(f(job), 'picks.tsv'), '--number', '20']);
      expect(r.code).toBe(0);
      return fs.readFileSync(path.join(f(job), 'picks.tsv'), 'utf8');
    };
    expect(await picks('killed')).toBe(await picks('whole'));

    // A checkpoint damaged on the disk (one byte of its sums) is refused in one line, and nothing is removed.
    await killAfterTile('damaged');
    const file = path.join(f('damaged'), 'checkpoint.bin');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0x40;
    fs.writeFileSync(file, bytes);
    const refused = await runTme(args('damaged', '--resume'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/^tme: .*checkpoint\.bin: not a tme checkpoint: its sums do not match their digest \(damaged\)\n$/);
    // A partial map cut short is refused the same way.
    fs.writeFileSync(file, bytes.map((b, i) => (i === bytes.length - 5 ? b ^ 0x40 : b)));
    fs.truncateSync(path.join(f('damaged'), 'scores.mrc.part'), 4096);
    const short = await runTme(args('damaged', '--resume'));
    expect(short.stderr).toMatch(/^tme: .*scores\.mrc\.part: not this job's partial map: 4096 bytes, expected \d+\n$/);
    expect(listTree(f('damaged'))).toEqual(expect.arrayContaining(['checkpoint.bin', 'rotations.mrc.part', 'scores.mrc.part']));
    // --force starts over: the maps of an uninterrupted run, no partial map or checkpoint left.
    const forced = await runTme(args('damaged', '--force'));
    expect({ code: forced.code, stderr: forced.stderr }).toEqual({ code: 0, stderr: '' });
    expect(listTree(f('damaged'))).toEqual(['angles.tsv', 'job.json', 'rotations.mrc', 'scores.mrc']);
    same('damaged');
  });

  test('tme peaks --memory below the maps: slab by slab, the in-memory call\'s picks, details and report byte for byte (slabs thinner than the minimum distance too); --refine reads each pick\'s box by region', async () => {
    const job = f('slabs');
    const m = await runTme(['match', ...base('flc-sphere'), '--quiet', '-o', job]);
    expect(m.code).toBe(0);
    const call = async (name: string, ...extra: string[]): Promise<{ stdout: string; files: string[] }> => {
      const r = await runTme(['peaks', job, '-o', path.join(job, `${name}.tsv`), '--subvoxel', '--z-score', '4', ...extra]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const files = ['tsv', 'details.tsv', 'report.json'].map((e) => fs.readFileSync(path.join(job, `${name}.${e}`), 'utf8'));
      return { stdout: r.stdout, files };
    };
    const whole = await call('whole');
    expect(whole.files[0]?.trim().split('\n').length).toBeGreaterThan(3);
    // 80×80 sections; a halo of 11 (the report's histogram blocks of 64 Ki voxels); 21 bytes a voxel of a slab read.
    const section = 1.04 * 21 * 80 * 80;
    for (const [sections, slabs] of [[1, 48], [4, 12], [7, 7], [12, 4]] as const) {
      const memory = Math.ceil(160 * 2 ** 20 + section * (sections + 22)) + 16;
      const slab = await call(`slab${sections}`, '--memory', String(memory));
      expect(slab.stdout).toMatch(new RegExp(`called slab by slab: ${slabs} slabs of ${sections} sections? \\(and 11 each side\\)`));
      expect(slab.files[0]).toBe(whole.files[0]);
      expect(slab.files[1]).toBe(whole.files[1]);
      expect(slab.files[2]?.replace(/"job": .*/, '')).toBe(whole.files[2]?.replace(/"job": .*/, ''));
    }
    // --refine slab by slab: the tomogram does not fit either, so each pick's box is read by region; the same refined
    // orientations and scores as refining with the tomogram held whole.
    const refinedWhole = await call('refined-whole', '--refine');
    const refinedSlabs = await call('refined-slabs', '--refine', '--memory', String(Math.ceil(160 * 2 ** 20 + section * (4 + 22)) + 16));
    expect(refinedSlabs.stdout).toMatch(/called slab by slab: 12 slabs of 4 sections/);
    expect(refinedSlabs.stdout).toMatch(/^tme peaks: refined \d+ orientations: median change [1-9]/m);
    expect(refinedSlabs.files[0]).toBe(refinedWhole.files[0]);
    expect(refinedSlabs.files[1]).toBe(refinedWhole.files[1]);
  });

  test('what needs the whole tomogram is refused in one line naming the flag or command', async () => {
    // Beyond tme, the tomogram and its maps (160 MiB and 16 bytes a voxel: 525 MiB here, a sparse file) a search that
    // needs the whole tomogram is refused; below that it stays in memory.
    const big = f('big.mrc');
    const header = Buffer.from(fs.readFileSync(f('target.mrc')).subarray(0, 1024));
    for (const [at, v] of [[0, 160], [4, 160], [8, 900], [28, 160], [32, 160], [36, 900]] as const) header.writeInt32LE(v, at);
    for (const [at, v] of [[40, 1600], [44, 1600], [48, 9000]] as const) header.writeFloatLE(v, at);
    fs.writeFileSync(big, header);
    fs.truncateSync(big, 1024 + 4 * 160 * 160 * 900);
    const onBig = (score: string): string[] => base(score).map((a) => (a === f('target.mrc') ? big : a));
    const lcc = await runTme(['match', ...onBig('lcc'), ...OUT_OF_CORE, '-o', f('lcc')]);
    expect(lcc.stderr).toMatch(/^tme: --score lcc is not available for a tomogram matched out of core/);
    const interval = await runTme(['match', ...base('flc-sphere'), ...OUT_OF_CORE, '--checkpoint-interval', '5', '-o', f('interval')]);
    expect(interval.stderr).toMatch(/^tme: Expected no --checkpoint-interval for a tomogram matched out of core \(it checkpoints after each tile\) but received 5\n$/);
    // Not built out of core: several templates in one pass, priors per position, tile shards.
    const several = await runTme(['match', ...onBig('flc-sphere'), ...OUT_OF_CORE, '--template', f('template.mrc'), '-o', f('several')]);
    expect(several.code).not.toBe(0);
    expect(several.stderr).toMatch(/^tme: --template given 2 times is not available for a tomogram matched out of core \(larger than memory\): .*\n$/);
    fs.writeFileSync(f('priors.tsv'), 'x\ty\tz\tvx\tvy\tvz\n40\t40\t24\t0\t0\t1\n');
    const priors = await runTme(['match', ...onBig('flc-sphere'), ...OUT_OF_CORE, '--priors', f('priors.tsv'), '--prior-cone', '20', '--prior-radius', '25', '-o', f('priors')]);
    expect(priors.code).not.toBe(0);
    expect(priors.stderr).toMatch(/^tme: --priors is not available for a tomogram matched out of core \(larger than memory\): .*\n$/);
    const shard = await runTme(['match', ...onBig('flc-sphere'), ...OUT_OF_CORE, '--shard', '0/2', '--shard-by', 'tiles', '-o', f('shard')]);
    expect(shard.code).not.toBe(0);
    expect(shard.stderr).toMatch(/^tme: --shard-by tiles is not available for a tomogram matched out of core \(larger than memory\): .*\n$/);
    // Fourier-space rotation filters the whole tomogram by the template's filter (a tile filtered alone would wrap the
    // filter's spread around it, and the picks would depend on the tiling).
    const fourier = await runTme(['match', ...onBig('flc-sphere'), ...OUT_OF_CORE, '--rotation-mode', 'fourier', '--tilt-range', '-60,60', '-o', f('fourier')]);
    expect(fourier.code).not.toBe(0);
    expect(fourier.stderr).toMatch(/^tme: --rotation-mode fourier with a template filter is not available for a tomogram matched out of core \(larger than memory\): the whole tomogram is filtered by the template's filter first \(real-space rotation, the default, has no such limit\); bin or crop the tomogram, or give more --memory\n$/);
    for (const out of ['lcc', 'interval', 'several', 'priors', 'shard', 'fourier']) expect(fs.existsSync(f(out))).toBe(false);
  });

  test('with the target filter (--tilt-range, --lowpass, --whiten): maps equal the in-memory run (≤ 1e-5 of the best score, rotations exact), picks identical, no temporary file left', async () => {
    const filters = ['--tilt-range', '-60,60', '--lowpass', '30', '--whiten'];
    const estimate = await runTme(['estimate', ...base('flc-sphere'), ...OUT_OF_CORE, ...filters, '--calibration', '0']);
    expect(estimate.stdout).toMatch(/^path: out of core /m);
    expect(estimate.stdout).toMatch(/^target filter out of core: the whole tomogram on a \d+×\d+×\d+ FFT grid, by passes over [\d.]+ MiB of temporary files in the job folder .*, ≈ [\d.]+ MiB in memory \(slabs of \d+ planes, blocks of \d+ rows\)$/m);
    const a = await runTme(['match', ...base('flc-sphere'), ...filters, '-o', f('filter-memory')]);
    expect(a.code).toBe(0);
    const b = await runTme(['match', ...base('flc-sphere'), ...filters, ...OUT_OF_CORE, '-o', f('filter-disk')]);
    expect({ code: b.code, stderr: b.stderr }).toEqual({ code: 0, stderr: '' });
    expect(b.stdout).toMatch(/\(out of core\)/);
    expect(fs.readdirSync(f('filter-disk')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const memory = readMrc(path.join(f('filter-memory'), 'scores.mrc'));
    const disk = readMrc(path.join(f('filter-disk'), 'scores.mrc'));
    const best = memory.data.reduce((m, v) => Math.max(m, v), -Infinity);
    expect(best).toBeGreaterThan(0.2);
    let worst = 0;
    for (let i = 0; i < memory.data.length; i++) worst = Math.max(worst, Math.abs((memory.data[i] as number) - (disk.data[i] as number)));
    expect(worst).toBeLessThanOrEqual(1e-5 * best);
    expect(readMrc(path.join(f('filter-disk'), 'rotations.mrc')).data).toEqual(readMrc(path.join(f('filter-memory'), 'rotations.mrc')).data);
    const picks = async (job: string): Promise<string[][]> => {
      const out = path.join(f(job), 'picks.tsv');
      const r = await runTme(['peaks', f(job), '-o', out, '--number', '20']);
      expect(r.code).toBe(0);
      return fs.readFileSync(out, 'utf8').trim().split('\n').slice(1).map((line) => line.split('\t'));
    };
    const pm = await picks('filter-memory');
    const pd = await picks('filter-disk');
    expect(pd.length).toBeGreaterThan(0);
    expect(pd.map((row) => row.slice(0, 6))).toEqual(pm.map((row) => row.slice(0, 6)));
    pd.forEach((row, k) => expect(Math.abs(Number(row[6]) - Number(pm[k]?.[6]))).toBeLessThanOrEqual(1e-5 * best));
  });
});

test('tme peaks on maps it cannot hold (a sparse 4096×4096×2000 job: 520 GiB to hold) calls them slab by slab, or refuses in one line what even one slab needs', async () => {
  const job = path.join(dir, 'huge-job');
  fs.mkdirSync(job);
  const [nx, ny, nz] = [4096, 4096, 2000];
  const small = path.join(dir, 'one.mrc');
  writeMrc(small, createVolume(new Float32Array(1), [1, 1, 1], 10));
  const header = Buffer.from(fs.readFileSync(small).subarray(0, 1024));
  for (const [at, v] of [[0, nx], [4, ny], [8, nz], [28, nx], [32, ny], [36, nz]] as const) header.writeInt32LE(v, at);
  for (const name of ['scores.mrc', 'rotations.mrc']) {
    const file = path.join(job, name);
    fs.writeFileSync(file, header);
    fs.truncateSync(file, 1024 + 4 * nx * ny * nz);
  }
  fs.writeFileSync(path.join(job, 'angles.tsv'), 'index\trot\ttilt\tpsi\n0\t0\t0\t0\n');
  fs.writeFileSync(path.join(job, 'job.json'), JSON.stringify({ format: 'tme-job/1', parameters: { templateShape: [24, 24, 24] } }));
  // A halo of 12 sections (half the template box) each side: one slab needs 25 sections of 16 Mi voxels (8.7 GiB).
  const r = await runTme(['peaks', job, '-o', path.join(job, 'picks.tsv'), '--memory', '4G']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/^tme: .*scores\.mrc: the score and rotation maps \(4096×4096×2000 voxels, ≈ 520\.\d GiB to hold\) do not fit the 4\.0 GiB --memory allows and are called slab by slab, but slabs of one section with their halo of 12 need 8\.7 GiB\n$/);
  const refine = await runTme(['peaks', job, '-o', path.join(job, 'picks.tsv'), '--memory', '4G', '--refine']);
  expect(refine.stderr).toBe(r.stderr);
  expect(fs.readdirSync(job).sort()).toEqual(['angles.tsv', 'job.json', 'rotations.mrc', 'scores.mrc']);
  fs.rmSync(job, { recursive: true });
});
