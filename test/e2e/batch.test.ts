/**
 * `tme batch`: tme run on every tomogram a manifest names (a list, a glob, a RELION 5 tomograms.star), one job folder
 * each, one particles STAR for the set that the real relion_reconstruct reads; a rerun skips finished tomograms and
 * redoes only what is missing; a manifest naming a missing tomogram is refused in one line before anything runs.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseStar, starBlock } from '@tme/formats';
import { blobTemplate, noisyTarget, runTme, tempDir, writeVolume } from './helpers';

let dir: string;
const f = (name: string): string => path.resolve(dir, name);
const names = ['TS_01', 'TS_02', 'TS_03'];
const batch = (manifest: string, out: string, ...extra: string[]): ReturnType<typeof runTme> => runTme([
  'batch', manifest, '--template', f('template.mrc'), '--angular-step', '30', '--device', 'cpu',
  '--number', '5', '--formats', 'tsv,relion', '-o', f(out), ...extra,
], { cwd: dir, timeoutMs: 240_000 });
const run = (manifest: string, out: string, ...extra: string[]): ReturnType<typeof runTme> => batch(manifest, out, '--tilt-range', '-60,60', ...extra);

beforeAll(() => {
  dir = tempDir('batch');
  const template = blobTemplate(10);
  writeVolume(f('template.mrc'), template);
  fs.mkdirSync(f('tomos'));
  names.forEach((n, i) => writeVolume(f(`tomos/${n}.mrc`), noisyTarget([32, 48, 48], template, 20 + i)));
  fs.writeFileSync(f('list.txt'), `# three tomograms\n${names.map((n) => `tomos/${n}.mrc`).join('\n')}\n`);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Loop { labels: string[]; rows: string[][] }
function particles(file: string): Loop {
  return starBlock(parseStar(fs.readFileSync(file, 'utf8')), 'particles')?.loops[0] as Loop;
}

test('a list: one job per tomogram and one particles STAR of all their particles', async () => {
  const r = await run('list.txt', 'out');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/tme batch: 3 of 3 tomograms finished; \d+ particles in .*particles\.star/);
  let total = 0;
  for (const n of names) {
    for (const file of ['job.json', 'picks.tsv', 'relion/particles.star']) expect(fs.existsSync(f(`out/${n}/${file}`))).toBe(true);
    total += particles(f(`out/${n}/relion/particles.star`)).rows.length;
  }
  const combined = particles(f('out/particles.star'));
  expect(combined.rows.length).toBe(total);
  const tomo = combined.labels.indexOf('rlnTomoName');
  const image = combined.labels.indexOf('rlnImageName');
  expect(new Set(combined.rows.map((row) => row[tomo]))).toEqual(new Set(names));
  for (const row of combined.rows) {
    expect(row[image]).toMatch(new RegExp(`^${row[tomo]}/relion/Subtomograms/`));
    expect(fs.existsSync(f(`out/${row[image]}`))).toBe(true);
  }
  // STOPGAP's motive list and Warp's table hold every tomogram's picks.tsv: tomo_num = place in the manifest.
  expect(r.stdout).toMatch(/\d+ picks of picks\.tsv in stopgap\.star \(STOPGAP\) and warp\.star \(Warp\)/);
  const tsvRows = names.map((n) => fs.readFileSync(f(`out/${n}/picks.tsv`), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').map(Number)));
  const motlLines = fs.readFileSync(f('out/stopgap.star'), 'utf8').split('\n');
  const motl = motlLines.slice(motlLines.indexOf('_class') + 2).filter((l) => l !== '').map((l) => l.split(' '));
  expect(motl.length).toBe(tsvRows.flat().length);
  let k = 0;
  tsvRows.forEach((rows, t) => rows.forEach((xyz) => {
    const m = motl[k]!;
    expect([Number(m[0]), Number(m[1])]).toEqual([k + 1, t + 1]); // motl_idx over the set, tomo_num per tomogram
    for (const a of [0, 1, 2]) expect(Math.abs(Number(m[5 + a]) + Number(m[9 + a]) - 1 - xyz[a]!)).toBeLessThan(1e-3); // 1-based
    k += 1;
  }));
  const warp = starBlock(parseStar(fs.readFileSync(f('out/warp.star'), 'utf8')), '')!.loops[0]!;
  expect(warp.rows.length).toBe(motl.length);
  expect([...new Set(warp.rows.map((row) => row[6]))]).toEqual(names.map((n) => `${n}.tomostar`));
  warp.rows.forEach((row, i) => expect(Math.abs(Number(row[0]) * 48 - tsvRows.flat()[i]![0]!)).toBeLessThan(1e-3)); // x / 48 voxels
  // RELION reads the combined STAR (subtomogram paths relative to the batch folder).
  if (spawnSync('which', ['relion_reconstruct']).status === 0) {
    const rec = spawnSync('relion_reconstruct', ['--i', 'particles.star', '--o', 'rec.mrc', '--3d_rot'], { cwd: f('out'), encoding: 'utf8', timeout: 120_000 });
    expect(rec.status).toBe(0);
    expect(fs.existsSync(f('out/rec.mrc'))).toBe(true);
  }
}, 300_000);

test('a rerun skips what is finished and redoes only what is missing', async () => {
  fs.rmSync(f('out/TS_02'), { recursive: true, force: true });
  const before = fs.statSync(f('out/TS_01/job.json')).mtimeMs;
  const r = await run('list.txt', 'out');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/1\/3 TS_01: done earlier, skipped/);
  expect(r.stdout).toMatch(/2\/3 TS_02: finished/);
  expect(r.stdout).toMatch(/3\/3 TS_03: done earlier, skipped/);
  expect(fs.statSync(f('out/TS_01/job.json')).mtimeMs).toBe(before);
  expect(fs.existsSync(f('out/TS_02/picks.tsv'))).toBe(true);
}, 300_000);

test('finished means every output asked for: with --formats relion alone (no picks.tsv) a rerun skips too', async () => {
  expect((await run('list.txt', 'relion-only', '--formats', 'relion', '--quiet')).code).toBe(0);
  expect(fs.existsSync(f('relion-only/TS_01/picks.tsv'))).toBe(false);
  const again = await run('list.txt', 'relion-only', '--formats', 'relion');
  expect(again.code).toBe(0);
  for (const [k, n] of names.entries()) expect(again.stdout).toContain(`${k + 1}/3 ${n}: done earlier, skipped`);
}, 300_000);

test('a glob names the same tomograms', async () => {
  const r = await run('tomos/TS_0?.mrc', 'globbed', '--quiet');
  expect(r.code).toBe(0);
  expect(fs.readdirSync(f('globbed')).filter((n) => n.startsWith('TS_')).sort()).toEqual(names);
}, 300_000);

test('a RELION 5 tomograms.star: each row\'s reconstructed tomogram, with its tilt series as metadata', async () => {
  // A project as RELION 5 lays it out: paths in the STAR are relative to the project folder.
  const job = f('project/Tomograms/job007');
  fs.mkdirSync(path.join(job, 'tilt_series'), { recursive: true });
  fs.mkdirSync(path.join(job, 'tomograms'), { recursive: true });
  const fixtures = path.join(__dirname, '..', '..', 'packages', 'template', '__tests__', 'fixtures');
  const star = fs.readFileSync(path.join(fixtures, 'tomograms.star'), 'utf8');
  fs.writeFileSync(path.join(job, 'tomograms.star'), star);
  for (const n of ['TS_01', 'TS_02']) {
    fs.copyFileSync(path.join(fixtures, 'TS_01.star'), path.join(job, 'tilt_series', `${n}.star`));
    fs.copyFileSync(f(`tomos/${n}.mrc`), path.join(job, 'tomograms', `rec_${n}.mrc`));
  }
  // The STAR gives the tilts: a typed range as well is refused once, before anything runs.
  const both = await run(path.join(job, 'tomograms.star'), 'relion5');
  expect(both.code).toBe(2);
  expect(both.stderr).toMatch(/tomograms\.star: Expected nothing: a tomograms\.star gives each tomogram's tilts and name for --tilt-range/);
  const r = await batch(path.join(job, 'tomograms.star'), 'relion5', '--quiet');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  for (const n of ['TS_01', 'TS_02']) {
    const record = JSON.parse(fs.readFileSync(f(`relion5/${n}/job.json`), 'utf8')) as { inputs: { target: string; tomoName: string; filters: { tiltAngles: string } } };
    expect(record.inputs.target).toBe(path.join(job, 'tomograms', `rec_${n}.mrc`));
    expect(record.inputs.tomoName).toBe(n);
    expect(record.inputs.filters.tiltAngles).toBe(path.join(job, 'tomograms.star'));
  }
  // (The tilt series' CTF is not the synthetic data's, so few particles pass the threshold: the rows add up.)
  const perTomogram = ['TS_01', 'TS_02'].map((n) => particles(f(`relion5/${n}/relion/particles.star`)).rows.length);
  const sum = perTomogram.reduce((a, b) => a + b, 0);
  if (sum > 0) expect(particles(f('relion5/particles.star')).rows.length).toBe(sum);
}, 300_000);

test('a manifest naming a missing tomogram is refused in one line, before anything runs', async () => {
  fs.writeFileSync(f('bad.txt'), 'tomos/TS_01.mrc\ntomos/missing.mrc\n');
  const r = await run('bad.txt', 'bad-out');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^tme: bad\.txt: names .*tomos\/missing\.mrc, which does not exist\n$/);
  expect(fs.existsSync(f('bad-out'))).toBe(false);
});
