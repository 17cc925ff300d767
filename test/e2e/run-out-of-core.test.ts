/**
 * `tme run` on a tomogram larger than memory (forced with --memory on a small one): matched out of core, peaks called
 * slab by slab, each pick refined and cut for RELION from its own box read by region. Picks, refined angles and scores,
 * and the RELION subtomograms equal the in-memory run's, byte for byte; with a target filter too (refinement reads the
 * search's own filtered tomogram, kept on disk until then: scores within 1e-6, see below). Particles sit at the faces, so
 * refinement's and the export's boxes cross them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createVolume, type Volume, type Zyx } from '@tme/formats';
import { nativeAddonBuilt, rotateBox } from '@tme/engine';
import { relionEulerToMatrix } from '@tme/rotations';
import { blobTemplate, listTree, noisyTarget, runTme, tempDir, writeVolume } from './helpers';

jest.setTimeout(300_000);

let dir: string;
const f = (name: string): string => path.resolve(dir, name);
// 48×80×80 voxels: matching in memory needs 167 MiB, calling peaks on the maps held whole 165 MiB: with 164 MiB the
// search goes out of core and the peaks slab by slab.
const OUT_OF_CORE = ['--memory', '164M'];
const search = (...extra: string[]): string[] => [
  '--target', f('target.mrc'), '--template', f('template.mrc'), '--angular-step', '40', '--device', 'cpu', '--threads', '1', '--tile', '32,44,44', ...extra,
];
const base = (...extra: string[]): string[] => search('--number', '8', '--min-distance', '8', ...extra);
// Particle centres (z, y, x), 1–3 voxels from faces (their 12³ boxes cross them) and inside, each turned off the
// 40° search grid, so that refinement moves them.
const CENTRES: Zyx[] = [[2, 20, 60], [45, 60, 18], [20, 1, 30], [30, 78, 70], [10, 50, 2], [24, 40, 40]];
const ANGLES: Array<[number, number, number]> = [[15, 20, -10], [-25, 12, 30], [60, 35, 5], [10, -18, 100], [0, 14, 17], [33, 22, -40]];

/** The template turned by each RELION rotation and added at its centre (its voxel box//2 there), cut at the faces. */
function plant(target: Volume, template: Volume, centres: readonly Zyx[]): Volume {
  const [nz, ny, nx] = target.shape;
  const [tz, ty, tx] = template.shape;
  const data = Float32Array.from(target.data);
  for (const [k, c] of centres.entries()) {
    const [rot, tilt, psi] = ANGLES[k] as [number, number, number];
    const turned = rotateBox(template.data, template.shape, relionEulerToMatrix(rot, tilt, psi), 'linear');
    for (let z = 0; z < tz; z++) for (let y = 0; y < ty; y++) for (let x = 0; x < tx; x++) {
      const [iz, iy, ix] = [c[0] + z - (tz >> 1), c[1] + y - (ty >> 1), c[2] + x - (tx >> 1)];
      if (iz < 0 || iy < 0 || ix < 0 || iz >= nz || iy >= ny || ix >= nx) continue;
      data[(iz * ny + iy) * nx + ix] = (data[(iz * ny + iy) * nx + ix] as number) + (turned[(z * ty + y) * tx + x] as number);
    }
  }
  return createVolume(data, target.shape, target.voxelSize, target.origin);
}

beforeAll(() => {
  dir = tempDir('ooc-run');
  const template = blobTemplate(12);
  writeVolume(f('template.mrc'), template);
  writeVolume(f('target.mrc'), plant(noisyTarget([48, 80, 80], template, 7), template, CENTRES));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The files a run wrote after its match, relative, with their bytes. */
function outputs(job: string): Map<string, Buffer> {
  const files = listTree(job).filter((n) => /^(picks\.tsv|picks\.details\.tsv|imod\/.*\.(mod|txt)|relion\/.*\.(star|mrc))$/.test(n));
  return new Map(files.map((n) => [n, fs.readFileSync(path.join(job, n))]));
}

(nativeAddonBuilt() ? describe : describe.skip)('tme run out of core', () => {
  test('picks, refined orientations and RELION subtomograms equal the in-memory run byte for byte; boxes at the faces', async () => {
    const memory = await runTme(['run', ...base(), '--quiet', '-o', f('memory')]);
    expect({ code: memory.code, stderr: memory.stderr }).toEqual({ code: 0, stderr: '' });
    const disk = await runTme(['run', ...base(), ...OUT_OF_CORE, '-o', f('disk')]);
    expect({ code: disk.code, stderr: disk.stderr }).toEqual({ code: 0, stderr: '' });
    expect(disk.stdout).toMatch(/\(out of core\)/);
    expect(disk.stdout).toMatch(/^tme run: the score and rotation maps \(80×80×48 voxels, ≈ 165 MiB to hold\) do not fit the 164 MiB --memory allows and are called slab by slab: \d+ slabs? of \d+ sections?/m);
    expect(disk.stdout).toMatch(/^tme run: report .*report\.html \(\d/m);
    expect(disk.stdout).toMatch(/^tme run: refined \d+ orientations/m);
    const a = outputs(f('memory'));
    const b = outputs(f('disk'));
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [name, bytes] of a) expect({ name, same: bytes.equals(b.get(name) as Buffer) }).toEqual({ name, same: true });
    // The report page, its maps and tomogram read a run of sections at a time: the same previews, histogram and picks.
    const page = (job: string): Record<string, unknown> => {
      const m = /<script type="application\/json" id="tme-report-data">([\s\S]*?)<\/script>/.exec(fs.readFileSync(path.join(job, 'report.html'), 'utf8'));
      return JSON.parse((m as RegExpExecArray)[1] as string) as Record<string, unknown>;
    };
    const [pageMemory, pageDisk] = [page(f('memory')), page(f('disk'))];
    for (const key of ['shape', 'tomogram', 'scores', 'picks']) expect({ key, value: pageDisk[key] }).toEqual({ key, value: pageMemory[key] });
    // The histogram too; its threshold and false-positive curve come from the search's statistics, summed tile by
    // tile in another order out of core (the last bits).
    type Histogram = { threshold: number; falsePositiveCurve: Array<[number, number]> } & Record<string, unknown>;
    const { threshold: thresholdDisk, falsePositiveCurve: curveDisk, ...histogramDisk } = pageDisk['histogram'] as Histogram;
    const { threshold: thresholdMemory, falsePositiveCurve: curveMemory, ...histogramMemory } = pageMemory['histogram'] as Histogram;
    expect(histogramDisk).toEqual(histogramMemory);
    expect(thresholdDisk).toBeCloseTo(thresholdMemory, 6);
    expect(curveDisk).toHaveLength(curveMemory.length);
    curveDisk.forEach(([e, n], k) => {
      expect(e).toBe(curveMemory[k]![0]);
      expect(Math.abs(n - curveMemory[k]![1]) / Math.max(1, curveMemory[k]![1])).toBeLessThan(1e-6);
    });
    // Every planted particle picked, faces included, and their boxes cross the faces.
    const rows = fs.readFileSync(f('disk/picks.details.tsv'), 'utf8').trim().split('\n');
    const header = (rows[0] as string).split('\t');
    const col = (name: string): number => header.indexOf(name);
    const picked = rows.slice(1).map((r) => r.split('\t')).map((c) => [Number(c[col('z')]), Number(c[col('y')]), Number(c[col('x')])]);
    for (const c of CENTRES) expect(picked.some((p) => p.every((v, a) => Math.abs(v - (c[a] as number)) <= 1))).toBe(true);
    expect(rows.slice(1).filter((r) => Number(r.split('\t')[col('relion_box_outside')]) > 0).length).toBeGreaterThanOrEqual(4);
    // Refinement moved the orientations (the particles lie off the search's grid).
    expect(rows.slice(1).filter((r) => Number(r.split('\t')[col('refined_angle_change')]) > 5).length).toBeGreaterThanOrEqual(4);
    expect(listTree(f('disk')).filter((n) => /\.(tmp|part)$/.test(n))).toEqual([]);
  });

  test('with a target filter: refinement reads the search\'s filtered tomogram (not filtered again); the same picks and refined angles, scores within 1e-6', async () => {
    // 165 MiB: room for the filter's passes (the maps then fit for the peak call; refinement and export still read boxes).
    const filters = ['--tilt-range', '-60,60', '--lowpass', '30', '--whiten'];
    const memory = await runTme(['run', ...base(...filters), '--formats', 'tsv,relion', '--quiet', '-o', f('filter-memory')]);
    expect({ code: memory.code, stderr: memory.stderr }).toEqual({ code: 0, stderr: '' });
    const disk = await runTme(['run', ...base(...filters), '--memory', '165M', '--formats', 'tsv,relion', '-o', f('filter-disk')]);
    expect({ code: disk.code, stderr: disk.stderr }).toEqual({ code: 0, stderr: '' });
    expect(disk.stdout).toMatch(/\(out of core\)/);
    expect(disk.stdout).toMatch(/^tme run: refined \d+ orientations: .* \(on the search's filtered tomogram, not filtered again\)$/m);
    const table = (job: string): string[][] => fs.readFileSync(path.join(f(job), 'picks.details.tsv'), 'utf8').trim().split('\n').map((r) => r.split('\t'));
    const a = table('filter-memory');
    const b = table('filter-disk');
    const header = a[0] as string[];
    expect(b[0]).toEqual(header);
    expect(b.length).toBe(a.length);
    expect(a.length).toBeGreaterThan(CENTRES.length);
    // The filtered target on disk differs from the one in memory by float order only (≤ 1.2e-7 of its largest value,
    // volume-filter.ts): positions and angles are the same, scores differ in their last digits.
    const scores = new Set(['score', 'z_score', 'search_sigmas', 'local_snr', 'refined_score']);
    a.slice(1).forEach((row, k) => row.forEach((v, c) => {
      const w = (b[k + 1] as string[])[c] as string;
      if (scores.has(header[c] as string)) expect(Math.abs(Number(v) - Number(w))).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(Number(v))));
      else expect({ column: header[c], value: w }).toEqual({ column: header[c], value: v });
    }));
    expect(a.slice(1).filter((r) => Number(r[header.indexOf('refined_angle_change')]) > 5).length).toBeGreaterThanOrEqual(4);
    // The subtomograms are cut from the tomogram itself: byte for byte.
    const subtomograms = listTree(f('filter-memory/relion/Subtomograms'));
    expect(subtomograms.length).toBe(a.length); // each pick's, and the missing wedge's
    for (const n of subtomograms) expect(fs.readFileSync(f(`filter-disk/relion/Subtomograms/${n}`)).equals(fs.readFileSync(f(`filter-memory/relion/Subtomograms/${n}`)))).toBe(true);
    // The filter's temporary volume (the search's, which refinement read) is gone.
    expect(listTree(f('filter-disk')).filter((n) => /\.(tmp|part)$/.test(n))).toEqual([]);
  });

  test('a search that needs the whole tomogram, with less memory than it and its maps need, is refused naming the flag', async () => {
    // 48×80×80 with lcc: tme itself and 16 bytes a voxel come to 164.9 MiB; it used to fall back to memory and then
    // fail saying to match out of core, which lcc cannot.
    const r = await runTme(['match', ...search('--score', 'lcc'), '--memory', '164M', '-o', f('lcc')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^tme: --score lcc is not available for a tomogram matched out of core \(larger than memory\): its preprocessing acts on the whole tomogram; bin or crop the tomogram, or give more --memory\n$/);
    expect(fs.existsSync(f('lcc'))).toBe(false);
    // With room for it and its maps, it runs in memory.
    const roomy = await runTme(['match', ...search('--score', 'lcc'), '--memory', '180M', '--quiet', '-o', f('lcc-memory')]);
    expect({ code: roomy.code, stderr: roomy.stderr }).toEqual({ code: 0, stderr: '' });
  });

  test('partial maps of an out-of-core run killed before its first checkpoint are removed by a --resume that matches in memory; nothing else is', async () => {
    // What a SIGKILL before the first tile's checkpoint leaves (out-of-core.test.ts kills runs for real): the partial
    // maps and no checkpoint. A file of the user's beside them stays.
    const job = f('killed');
    fs.mkdirSync(job);
    const header = fs.readFileSync(f('target.mrc')).subarray(0, 1024);
    for (const name of ['scores.mrc.part', 'rotations.mrc.part']) fs.writeFileSync(path.join(job, name), header);
    fs.writeFileSync(path.join(job, 'notes.part'), 'mine\n');
    const r = await runTme(['run', ...base(), '--formats', 'tsv', '--resume', '-o', job]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^tme: warning: .*killed: no checkpoint to resume \(the earlier run stopped before writing one\); starting from the first rotation\n$/);
    expect(r.stdout).not.toMatch(/out of core/);
    expect(listTree(job)).toEqual(['angles.tsv', 'job.json', 'notes.part', 'picks.details.tsv', 'picks.report.json', 'picks.tsv', 'rotations.mrc', 'scores.mrc']);
    expect(fs.readFileSync(path.join(job, 'notes.part'), 'utf8')).toBe('mine\n');
  });

  test('the in-memory target filter\'s peak counts in the choice: a search that fits in memory without its filter goes out of core with it', async () => {
    // 48×80×80: 167 MiB in memory; the filter (its 72×105×108-voxel grid at 12 B a voxel, beside the target) makes it 171.
    const est = async (...extra: string[]): Promise<string> => {
      const r = await runTme(['estimate', ...search(), '--memory', '169M', '--calibration', '0', ...extra]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      return r.stdout;
    };
    expect(await est()).toMatch(/^path: in memory \(the tomogram, its maps and room for tiles ≈ 167 MiB; --memory allows 169 MiB\)$/m);
    expect(await est('--lowpass', '30')).toMatch(/^path: out of core \(in memory would need 171 MiB but --memory allows 169 MiB\)/m);
    // With room for the filter it stays in memory, and says what it holds.
    const roomy = await runTme(['estimate', ...search(), '--memory', '185M', '--calibration', '0', '--lowpass', '30']);
    expect(roomy.stdout).toMatch(/^path: in memory \(the tomogram, its maps and room for tiles ≈ 171 MiB; --memory allows 185 MiB\)$/m);
    // And the match follows the choice.
    const m = await runTme(['match', ...search(), '--memory', '169M', '--lowpass', '30', '-o', f('filter-choice')]);
    expect({ code: m.code, stderr: m.stderr }).toEqual({ code: 0, stderr: '' });
    expect(m.stdout).toMatch(/\(out of core\)/);
  });
});
